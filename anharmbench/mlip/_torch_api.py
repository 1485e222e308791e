"""The private torch setting we change, in one place (tested against torch 2.13).

Exporting the BPNN with dynamic atom and edge counts needs
``torch.fx.experimental._config.use_duck_shape = False`` while tracing (with duck shapes
torch would tie the two dynamic sizes together when they happen to be equal in the example).
There is no public switch for it; :func:`no_duck_shapes` sets it for the ``with`` block
only and restores it, so the process-wide value is never left changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

#: torch versions this adapter was tested with (setup.cfg pins torch==2.13.0).
TESTED = "==2.13.*"


@contextmanager
def no_duck_shapes() -> Iterator[None]:
    """Trace with ``use_duck_shape`` off; the previous value is restored on exit."""
    from torch.fx.experimental import _config

    old = _config.use_duck_shape
    _config.use_duck_shape = False
    try:
        yield
    finally:
        _config.use_duck_shape = old
