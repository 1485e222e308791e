"""Phonon observables from irreducible derivatives (the paper's Figs. 2-5).

phonopy and phono3py compute whatever they already can (harmonic phonons, the bubble
diagram, the RTA conductivity) from our force constants; the fourth-order diagrams, which
they lack, are ours (:mod:`~anharmbench.observables.loop`,
:mod:`~anharmbench.observables.sunset`).

Entry points
------------
* :func:`load_derivative_set` / :class:`DerivativeSet` -- derivatives of one potential,
  keyed by order, each in its FTG (``derivatives.h5`` files;
  :class:`anharmbench.derivatives.DerivativeSet`, re-exported here);
* :func:`write_force_constants` -- phonopy/phono3py/phono4py files and our
  :class:`LatticeTensor` (real-space tensors of any order, :func:`lattice_tensor`);
* :func:`dispersion` (Fig. 2), :func:`bubble_gamma` / :func:`bubble_shift` (Fig. 3),
  :func:`loop_shift` (Fig. 4), :func:`sunset_gamma` (exact) and
  :func:`sampled_sunset_gamma` (with errors), :func:`thermal_conductivity` (Fig. 5);
* :func:`plot_dispersion`, :func:`plot_mode_data`, :func:`plot_kappa`,
  :func:`write_observable` / :func:`read_observable`;
* :func:`compute_observables` / :func:`make_figures` -- all of it for a set of potentials.
"""

from anharmbench.observables.bubble import bubble_gamma, bubble_shift, mesh_path
from anharmbench.observables.conductivity import (
    DEFAULT_TEMPERATURES,
    KappaResult,
    thermal_conductivity,
)
from anharmbench.observables.dispersion import Dispersion, dispersion
from anharmbench.observables.errors import (
    ImaginaryModeError,
    IncommensurateError,
    MissingOrderError,
    ObservableError,
)
from anharmbench.observables.force_constants import (
    DerivativeSet,
    LatticeTensor,
    lattice_tensor,
    load_derivative_set,
    write_force_constants,
)
from anharmbench.observables.harmonic import Mesh
from anharmbench.observables.io import read_observable, write_observable
from anharmbench.observables.loop import loop_shift, loop_shift_from_tensor
from anharmbench.observables.modes import PAPER_PATH, ModeData, QPath, band_path
from anharmbench.observables.plots import plot_dispersion, plot_kappa, plot_mode_data
from anharmbench.observables.sunset import SunsetTiming, sunset_gamma, sunset_gamma_from_tensor
from anharmbench.observables.sunset_sampled import (
    SunsetSampling,
    sampled_sunset_gamma,
    sampled_sunset_gamma_from_tensor,
)
from anharmbench.observables.workflow import (
    ObservableSet,
    ObservableSettings,
    compute_observables,
    load_observable_set,
    make_figures,
    summary,
)

__all__ = [
    "DEFAULT_TEMPERATURES",
    "PAPER_PATH",
    "DerivativeSet",
    "Dispersion",
    "ImaginaryModeError",
    "IncommensurateError",
    "KappaResult",
    "LatticeTensor",
    "Mesh",
    "MissingOrderError",
    "ModeData",
    "ObservableError",
    "ObservableSet",
    "ObservableSettings",
    "QPath",
    "SunsetSampling",
    "SunsetTiming",
    "band_path",
    "bubble_gamma",
    "bubble_shift",
    "compute_observables",
    "dispersion",
    "lattice_tensor",
    "load_derivative_set",
    "load_observable_set",
    "loop_shift",
    "loop_shift_from_tensor",
    "make_figures",
    "mesh_path",
    "plot_dispersion",
    "plot_kappa",
    "plot_mode_data",
    "read_observable",
    "summary",
    "sampled_sunset_gamma",
    "sampled_sunset_gamma_from_tensor",
    "sunset_gamma",
    "sunset_gamma_from_tensor",
    "thermal_conductivity",
    "write_force_constants",
    "write_observable",
]
