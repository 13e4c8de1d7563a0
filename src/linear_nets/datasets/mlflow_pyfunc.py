"""Log a python-function model to the active MLflow run and register it under a name.

kedro-mlflow's ``MlflowModelTrackingDataset`` takes its ``input_example`` from the catalog
YAML, where a typed DataFrame cannot be written; this dataset takes it from the model
object, so MLflow records a real example and infers the signature from it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

import linear_nets
from linear_nets.datasets.mlflow_deferred import log_when_done

logger = logging.getLogger(__name__)


class MlflowPyfuncModelDataset(AbstractDataset[Any, Any]):
    """Save: log the ``mlflow.pyfunc.PythonModel`` (with its ``input_example`` attribute) and
    register it as ``registered_model_name``. Load: the latest registered version.

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

    def save(self, data: Any) -> None:
        import mlflow

        if mlflow.active_run() is None:
            logger.warning("No active MLflow run: model %r not logged", self._registered_model_name)
            return
        example = getattr(data, "input_example", None)
        if example is None:
            raise DatasetError(f"{type(data).__name__} has no input_example to log with it")
        log_when_done(lambda run_id: self._log(run_id, data, example))

    def _log(self, run_id: str, model: Any, example: Any) -> None:
        import mlflow

        active = mlflow.active_run()
        if active is None or active.info.run_id != run_id:
            with mlflow.start_run(run_id=run_id):
                self._log(run_id, model, example)
            return
        info = mlflow.pyfunc.log_model(
            name=self._name,
            python_model=model,
            input_example=example,
            registered_model_name=self._registered_model_name,
            pip_requirements=self._pip_requirements or _requirements(),
            code_paths=[str(Path(linear_nets.__file__).parent)],
        )
        logger.info(
            "Logged model %s as %s version %s",
            info.model_uri,
            self._registered_model_name,
            info.registered_model_version,
        )

    def load(self) -> Any:
        import mlflow

        return mlflow.pyfunc.load_model(f"models:/{self._registered_model_name}/latest")

    def _exists(self) -> bool:
        import mlflow

        try:
            mlflow.MlflowClient().get_registered_model(self._registered_model_name)
        except mlflow.exceptions.MlflowException:
            return False
        return True

    def _describe(self) -> dict[str, Any]:
        return {"registered_model_name": self._registered_model_name, "name": self._name}


def _requirements() -> list[str]:
    """Pins of what the model imports, read from this environment (no slow inference)."""
    from importlib.metadata import version

    return [
        f"{package}=={version(package)}"
        for package in ("mlflow", "torch", "pandas", "numpy", "rich")
    ]
