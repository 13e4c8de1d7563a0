"""Log a models-from-code pyfunc model to the MLflow run, register it behind the gate, and load
the ``@champion`` version back (``boston_inference`` loads it with kedro-mlflow's
``MlflowModelRegistryDataset``, which takes the alias).

kedro-mlflow's ``MlflowModelTrackingDataset`` pickles a Python object and takes its
``input_example`` from the catalog YAML; this dataset logs the model file named by a
:class:`~linear_nets.serving.pyfunc.PyfuncPackage` with its weights (a ``state_dict`` file) and
its preprocessing (JSON) as plain artifacts, so loading it unpickles nothing.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from linear_nets.datasets.mlflow_deferred import log_when_done
from linear_nets.serving.pyfunc import PyfuncPackage, model_arguments
from linear_nets.terminal import stderr_notes_to_debug_log
from linear_nets.tracking.mlflow_checks import pins_read_from_this_environment

logger = logging.getLogger(__name__)

REQUIREMENTS = ("mlflow", "torch", "pandas", "numpy", "pydantic")
"""What the logged model imports, pinned from this environment (no slow inference)."""

UV_AUTO_DETECT = "MLFLOW_UV_AUTO_DETECT"
"""MLflow's switch (default on) that copies ``uv.lock`` and ``pyproject.toml`` of the working
directory into every model version; the model's environment is its pinned requirements."""


class MlflowPyfuncModelDataset(AbstractDataset[PyfuncPackage, Any]):
    """Save: log the package's model from code and register it as ``registered_model_name``
    when the registration gate passed (then maybe promote it to ``@champion``); otherwise tag
    the run with the reason. Load: the ``@champion`` version.

    Example catalog entry::

        boston_pyfunc_model:
          type: linear_nets.datasets.MlflowPyfuncModelDataset
          registered_model_name: boston_linear_regression
    """

    def __init__(
        self,
        *,
        registered_model_name: str,
        name: str = "model",
        pip_requirements: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._registered_model_name = registered_model_name
        self._name = name
        self._pip_requirements = pip_requirements
        self.metadata = metadata

    def save(self, data: PyfuncPackage) -> None:
        import mlflow

        from linear_nets.tracking import registry

        if not isinstance(data, PyfuncPackage):
            raise DatasetError(f"expected a PyfuncPackage to log, got {type(data).__name__}")
        if mlflow.active_run() is None:
            logger.warning("No active MLflow run: model %r not logged", self._registered_model_name)
            return
        candidate = data.candidate
        if candidate.refusal is not None:
            logger.warning("Model not registered: %s", candidate.refusal)
            log_when_done(lambda run_id: registry.record_refusal(run_id, candidate), phase="model")
            return
        registered: dict[str, str] = {}

        def log_and_register(run_id: str) -> None:
            version = registered["version"] = self._log(run_id, data)
            registry.tag_version(self._registered_model_name, version, run_id, candidate)

        def promote(run_id: str) -> None:
            registry.promote_run_model(run_id, self._registered_model_name, registered["version"])

        log_when_done(log_and_register, phase="model")
        log_when_done(promote, phase="promote")

    def _log(self, run_id: str, package: PyfuncPackage) -> str:
        import mlflow

        active = mlflow.active_run()
        if active is None or active.info.run_id != run_id:
            with mlflow.start_run(run_id=run_id):
                return self._log(run_id, package)
        pins = self._pip_requirements
        with (
            tempfile.TemporaryDirectory() as tmp,
            _without_uv_project_files(),
            stderr_notes_to_debug_log(),  # MLflow's "Created version …": the summary says it
            pins_read_from_this_environment() if pins is None else nullcontext(),
        ):
            # the code file, weights, config, sha256 manifest, signature and input example
            info = mlflow.pyfunc.log_model(
                name=self._name,
                registered_model_name=self._registered_model_name,
                pip_requirements=pins or _requirements(),
                **model_arguments(package, Path(tmp)),
            )
        version = str(info.registered_model_version)
        logger.info("Registered %s version %s", self._registered_model_name, version)
        return version

    def load(self) -> Any:
        import mlflow

        from linear_nets.tracking.registry import CHAMPION

        return mlflow.pyfunc.load_model(f"models:/{self._registered_model_name}@{CHAMPION}")

    def _exists(self) -> bool:
        import mlflow

        try:
            mlflow.MlflowClient().get_registered_model(self._registered_model_name)
        except mlflow.exceptions.MlflowException:
            return False
        return True

    def _describe(self) -> dict[str, Any]:
        return {"registered_model_name": self._registered_model_name, "name": self._name}


@contextmanager
def _without_uv_project_files() -> Iterator[None]:
    """Log a model with MLflow's uv project detection off, then restore the setting."""
    before = os.environ.get(UV_AUTO_DETECT)
    os.environ[UV_AUTO_DETECT] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(UV_AUTO_DETECT, None)
        else:
            os.environ[UV_AUTO_DETECT] = before


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{package}=={version(package)}" for package in REQUIREMENTS]
