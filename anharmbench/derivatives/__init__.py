"""Irreducible derivatives by symmetry-adapted finite differences.

Data flows one way through these modules:

* :mod:`~anharmbench.derivatives.plan` -- :func:`build_plan`: displaced configurations
  (lone or bundled directions, forces or energies, several step sizes) for the bases of
  :func:`anharmbench.symmetry.irreducible_basis`, keyed by order;
* :mod:`~anharmbench.derivatives.results` -- :func:`measure` evaluates a plan through any
  batch evaluator, resumably (:class:`ResultStore`, HDF5);
* :mod:`~anharmbench.derivatives.fit` -- :func:`fit`: finite differences, quadratic error
  tails, extrapolation to zero step, uncertainties (:class:`DerivativeResult`);
* :mod:`~anharmbench.derivatives.steps` -- :func:`choose_steps`: automatic step windows;
* :mod:`~anharmbench.derivatives.workflow` -- jobs, plan directories of LAMMPS decks,
  collection, in-process evaluation and ``derivatives.h5``;
* :mod:`~anharmbench.derivatives.derivative_set` -- :class:`DerivativeSet`: the
  derivatives of one potential by order (values, uncertainties, labels, bases, FTGs) as
  every later stage takes them, read from and written to ``derivatives.h5``.

A polynomial surface with known derivatives (exact-recovery tests) is
:meth:`anharmbench.potentials.taylor_cartesian.TaylorTerms.from_irreducible`, evaluated in
batches by its ``energies_forces``.
"""

from anharmbench.derivatives.derivative_set import (
    DerivativeSet,
    DerivativeSetError,
    MissingOrderError,
)
from anharmbench.derivatives.fit import DerivativeResult, TailFitWarning, fit
from anharmbench.derivatives.plan import MeasurementPlan, build_plan, geometric_steps
from anharmbench.derivatives.results import Measurements, ResultStore, measure, measure_and_fit
from anharmbench.derivatives.steps import StepChoice, choose_steps
from anharmbench.derivatives.workflow import (
    DerivativeJob,
    choose_job_steps,
    collect,
    evaluate_in_process,
    fit_directory,
    load_derivatives,
    load_plan_directory,
    prepare,
    save_derivatives,
    write_plan_directory,
)

__all__ = [
    "DerivativeJob",
    "DerivativeResult",
    "DerivativeSet",
    "DerivativeSetError",
    "MeasurementPlan",
    "Measurements",
    "MissingOrderError",
    "ResultStore",
    "StepChoice",
    "TailFitWarning",
    "build_plan",
    "choose_job_steps",
    "choose_steps",
    "collect",
    "evaluate_in_process",
    "fit",
    "fit_directory",
    "geometric_steps",
    "load_derivatives",
    "load_plan_directory",
    "measure",
    "measure_and_fit",
    "prepare",
    "save_derivatives",
    "write_plan_directory",
]
