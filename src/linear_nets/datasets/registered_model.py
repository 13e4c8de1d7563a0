"""A registered MLflow model, its files verified before any of them runs."""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset, DatasetError


class RegisteredModelDataset(AbstractDataset[None, Any]):
    """``models:/<model_name>@<alias>`` (or ``/<version>``) as a pyfunc model, loaded by
    ``linear_nets.serving.integrity.load_verified``: the version's files are downloaded and
    compared with the sha256 digests recorded on the version when it was published, and only
    then loaded (MLflow's own loader, and kedro-mlflow's ``MlflowModelRegistryDataset``, run
    a models-from-code file before the model's manifest can refuse it).

    Args:
        model_name: the registered model.
        alias: the alias to load (e.g. ``champion``); or
        version: a version number.
        metadata: e.g. ``trained_by``, the pipeline that registers the model (named in the
            error when there is none yet).
    """

    def __init__(
        self,
        model_name: str,
        alias: str | None = None,
        version: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if (alias is None) == (version is None):
            raise DatasetError(f"{model_name}: give either an alias or a version, not both")
        self.model_name = model_name
        self.alias = alias
        self.version = version
        self.metadata = metadata
        self.model_uri = (
            f"models:/{model_name}@{alias}" if alias else f"models:/{model_name}/{version}"
        )

    def load(self) -> Any:
        from linear_nets.serving.integrity import load_verified

        return load_verified(self.model_uri)

    def save(self, data: None) -> None:
        raise DatasetError(f"{self.model_uri}: models are registered by publishing a run")

    def _describe(self) -> dict[str, Any]:
        return {"model_uri": self.model_uri}
