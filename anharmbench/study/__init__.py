"""The benchmark study end to end (``anharmbench run [CONFIG]``).

* :mod:`~anharmbench.study.config` -- the typed YAML config (:func:`load_config`);
* :mod:`~anharmbench.study.profiles` -- ``quick`` and ``paper`` sizes;
* :mod:`~anharmbench.study.runner` -- stages keyed by a hash of their inputs;
* :mod:`~anharmbench.study.pipeline` -- :func:`run_study`, stage by stage;
* :mod:`~anharmbench.study.references` -- the reference: potential, crystal, DFT data;
* :mod:`~anharmbench.study.derivative_stages` -- one derivative set on one potential;
* :mod:`~anharmbench.study.dataset_stages` -- the IDMD and reference-MD datasets;
* :mod:`~anharmbench.study.models` -- training and deployment of each model kind;
* :mod:`~anharmbench.study.report` -- Table I, figures, ``report.html``.
"""

from anharmbench.study.config import ConfigError, StudyConfig, default_config, load_config
from anharmbench.study.pipeline import StudyResult, run_study

__all__ = [
    "ConfigError",
    "StudyConfig",
    "StudyResult",
    "default_config",
    "load_config",
    "run_study",
]
