"""Command-line interface: ``anharmbench <command>`` (also ``python -m anharmbench.cli``).

:func:`main` runs the command and turns errors into one line and an exit status;
:func:`build_parser` assembles the commands, each family in its module:

* :mod:`~anharmbench.cli.study` -- ``doctor``, ``plugins``, ``run``, ``deck``;
* :mod:`~anharmbench.cli.derivatives` -- ``plan``, ``collect``, ``derivatives``, ``import``;
* :mod:`~anharmbench.cli.models` -- ``train``, ``convert``;
* :mod:`~anharmbench.cli.observables` -- ``observables``;
* :mod:`~anharmbench.cli.datasets` -- ``dataset idmd|refmd``;
* :mod:`~anharmbench.cli.dft` -- ``dft run``;
* :mod:`~anharmbench.cli.arguments` -- the shared argument types.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from anharmbench.cli.derivatives import add_derivative_commands, add_import_command
from anharmbench.cli.models import add_model_commands
from anharmbench.cli.observables import add_observables_command
from anharmbench.cli.study import add_study_commands

__all__ = ["EXIT_INTERNAL", "EXIT_USAGE", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``anharmbench`` parser; each command's handler is its ``func`` default."""
    parser = argparse.ArgumentParser(
        prog="anharmbench",
        description="Benchmark phonon anharmonicity of interatomic potentials.",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    add_study_commands(sub)
    add_derivative_commands(sub)
    add_model_commands(sub)
    add_import_command(sub)
    add_observables_command(sub)

    from anharmbench.cli.datasets import add_dataset_commands

    add_dataset_commands(sub)
    from anharmbench.cli.dft import add_dft_commands

    add_dft_commands(sub)
    return parser


#: Exit status of an ordinary mistake (bad input, refused directory), as argparse uses.
EXIT_USAGE = 2
#: Exit status of an unexpected failure (a bug, or an error of a library we call).
EXIT_INTERNAL = 3


def _user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an ordinary mistake whose message says what to do."""
    from anharmbench.errors import AnharmbenchError

    # ValueError and OSError: the project's older error types derive from them, and
    # those from the standard library (missing file, permission, h5py lock) are clear
    return isinstance(exc, AnharmbenchError | ValueError | OSError | RuntimeError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; ordinary mistakes give one line and exit status 2 (``--debug``: the
    traceback too)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line, not only before the command
    args = build_parser().parse_args([a for a in argv if a != "--debug"])
    args.debug = debug
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print(f"anharmbench {args.command}: interrupted; finished work is kept, run the same "
              "command again to resume", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        text = " ".join(str(exc).split("\n")[0:1]) or type(exc).__name__
        if _user_error(exc):
            print(f"anharmbench {args.command}: error: {str(exc) or text}", file=sys.stderr)
            return EXIT_USAGE
        print(f"anharmbench {args.command}: internal error ({type(exc).__name__}: {text}); "
              "rerun with --debug for the traceback and report it", file=sys.stderr)
        return EXIT_INTERNAL
