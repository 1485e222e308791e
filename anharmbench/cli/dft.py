"""``anharmbench dft run``: run a plan's DFT jobs on this machine."""

from __future__ import annotations

import argparse

from anharmbench.cli.arguments import int_at_least

__all__ = ["add_dft_commands"]


def _cmd_run(args: argparse.Namespace) -> int:
    from anharmbench.dft.runner import run_jobs

    report = run_jobs(args.plan, args.command, jobs=args.jobs, rerun_failed=args.rerun_failed,
                      only=args.only, output=args.output, output_format=args.output_format)
    print(report.summary())
    if not report.failed:
        print(f"next: anharmbench collect {args.plan} --outputs 'dft/job_*/OUTPUT', then "
              f"anharmbench derivatives {args.plan}")
    return 1 if report.failed else 0


def add_dft_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``dft run`` to ``sub``."""
    p = sub.add_parser("dft", help="run the DFT jobs of a plan here (plan --format FMT)")
    dsub = p.add_subparsers(dest="dft_command", required=True)
    r = dsub.add_parser("run", help="run a plan's DFT jobs here, several at a time, "
                        "resumable (a finished job is never run again)")
    r.add_argument("plan", help="plan directory written with --format (and --dft-settings)")
    r.add_argument("--command", default=None,
                   help="run in each job folder through bash -c (default: the code's own, "
                   "e.g. 'pw.x -in espresso.pwi > espresso.pwo' for espresso-in)")
    r.add_argument("--jobs", type=int_at_least(1), default=1,
                   help="jobs at once (default: %(default)s; each gets OMP_NUM_THREADS = "
                   "cores / jobs unless set)")
    r.add_argument("--rerun-failed", action="store_true",
                   help="run again the jobs an earlier run marked failed")
    r.add_argument("--only", type=int, nargs="+", default=None, metavar="INDEX",
                   help="job indices to run (default: all)")
    r.add_argument("--output", default=None,
                   help="output file of a job, checked complete and converged (default: "
                   "the format's, e.g. espresso.pwo)")
    r.add_argument("--output-format", default=None, help="ASE format of --output")
    r.set_defaults(func=_cmd_run)
