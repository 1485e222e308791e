"""The project's error types: a user's mistake, said in one line by the CLI.

Every error that a user can cause by what they give us (a file, a number, a directory)
derives from :class:`AnharmbenchError`; the CLI prints its message on one line and exits
with status 2 (a traceback only with ``--debug``). Most are also ``ValueError`` so that
library callers can catch them the usual way.
"""

from __future__ import annotations


class AnharmbenchError(Exception):
    """Base of the errors that name a problem in the user's input and its fix."""


class InputError(AnharmbenchError, ValueError):
    """A number, option or file given by the user is not acceptable."""


class StructureError(InputError):
    """A crystal structure cannot be used (non-finite, overlapping, not periodic, ...)."""


class PlanDirectoryError(InputError):
    """A plan directory holds results of something else than what is asked of it."""
