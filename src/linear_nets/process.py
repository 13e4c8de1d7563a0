"""Process set-up, in one place: what every ``kedro`` command of this project does first.

Kedro calls :func:`set_up` as this project's ``kedro.init`` plugin (``pyproject.toml``), before
it loads any other plugin, the project's settings or the pipelines; ``settings.py`` calls it
again (it is idempotent) for sessions that do not start from the CLI (a notebook, the tests).
It:

- defers garbage collections during start-up (:mod:`linear_nets.startup`);
- silences the warnings and log records a user cannot act on (:data:`WARNING_FILTERS`,
  :data:`LOG_FILTERS`; where a logger's level does it, that is in ``conf/logging.yml``);
- switches telemetry off unless the user opts in (``LINEAR_NETS_TELEMETRY=on``), through each
  tool's documented environment variable;
- sets MLflow's documented client settings the project relies on (:data:`MLFLOW_DEFAULTS`,
  and the bounded retries of :mod:`linear_nets.tracking.http_limits`).

Standard library only: the CLI imports this before anything heavy. A variable the user set
already is never overridden.
"""

from __future__ import annotations

import logging
import os
import re
import warnings

from linear_nets.terminal import DropMessages
from linear_nets.tracking.http_limits import apply_http_limits

OPT_IN = "LINEAR_NETS_TELEMETRY"
TELEMETRY_SWITCHES = {
    "MLFLOW_DISABLE_TELEMETRY": "true",  # MLflow's usage telemetry
    "KEDRO_DISABLE_TELEMETRY": "true",  # kedro-telemetry (also off through .telemetry)
    "DO_NOT_TRACK": "true",  # the cross-tool convention both of them honour
}
MLFLOW_DEFAULTS = {
    # MLflow copies uv.lock and pyproject.toml of the working folder into every logged model
    # by default; the model's environment is its pinned requirements.
    "MLFLOW_UV_AUTO_DETECT": "false",
    # `kedro mlflow ui` starts `mlflow ui`, which reads MLflow's own settings from the
    # environment: one web worker, not 4, and no job-execution processes (they run GenAI jobs
    # this project never starts), so the UI answers far sooner on two cores
    "MLFLOW_WORKERS": "1",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
}

# (logger, message regex) of each log record dropped where a logger level in
# conf/logging.yml would hide more (Kedro's logging.yml allows no custom filters), and why.
LOG_FILTERS: tuple[tuple[str, str], ...] = (
    # MLflow warns at the definition of any PythonModel whose `predict` has no type hints
    # (kedro-mlflow's own, imported by `kedro mlflow` commands), under its own "once" filter,
    # which overrides any warnings filter: it is dropped where Kedro logs captured warnings.
    ("py.warnings", r"Add type hints to the `predict` method"),
    # uv environments have no pip; MLflow then writes an unpinned `pip` into the model's
    # conda.yaml, which is what it should do. The warning asks nothing of the user.
    ("mlflow.utils.environment", r"^Failed to resolve installed pip version"),
    # Kedro logs a failing node's error before it propagates; `kedro run` prints it once, as
    # one short line, and writes the traceback to info.log.
    ("kedro.pipeline.node", r"^Node .* failed with error"),
)

# (message regex, category, module regex) of each warning silenced, and why.
WARNING_FILTERS: tuple[tuple[str, type[Warning], str], ...] = (
    # Kedro 1.7 and kedro-mlflow 2.0.3 still call OmegaConf's deprecated
    # register_new_resolver(); nothing in this project can change that.
    (r"register_new_resolver\(\) is deprecated", UserWarning, r"(kedro|kedro_mlflow)\."),
)

def telemetry_opted_in() -> bool:
    return os.environ.get(OPT_IN, "").lower() in {"1", "true", "on", "yes"}


def set_up() -> None:
    """Set this process up for the project (idempotent)."""
    from linear_nets.startup import defer_collections

    defer_collections()
    for message, category, module in WARNING_FILTERS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    for name, pattern in LOG_FILTERS:
        logger = logging.getLogger(name)
        known = {getattr(found, "pattern", None) for found in logger.filters}
        if re.compile(pattern) not in known:
            logger.addFilter(DropMessages(pattern))
    if not telemetry_opted_in():
        for name, value in TELEMETRY_SWITCHES.items():
            os.environ.setdefault(name, value)
    for name, value in MLFLOW_DEFAULTS.items():
        os.environ.setdefault(name, value)
    apply_http_limits()  # a dead tracking server fails a run within a minute
