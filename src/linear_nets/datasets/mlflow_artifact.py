"""kedro-mlflow's ``MlflowArtifactDataset``, versioned like any other dataset of a run.

kedro-mlflow builds the wrapped dataset itself, giving it a save version of its own (the time
it was created), which Kedro's catalog refuses beside the run's; left unversioned, two runs
writing the same PNG at once could each log the other's. This entry takes ``versioned: true``
at the top level, so the file goes to ``<filepath>/<run's version>/<name>`` and that very file
is logged.

Example catalog entry::

    synthetic_fit_plot:
      type: linear_nets.datasets.mlflow_artifact.MlflowArtifactDataset
      versioned: true
      dataset:
        type: linear_nets.datasets.FigureDataset
        filepath: data/08_reporting/synthetic_fit.png
"""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractVersionedDataset, Version


class MlflowArtifactDataset(AbstractVersionedDataset):
    """Build kedro-mlflow's artifact dataset around ``dataset``, versioned with ``version``."""

    def __new__(
        cls,
        *,
        dataset: str | dict[str, Any],
        version: Version | None = None,
        run_id: str | None = None,
        artifact_path: str | None = None,
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Any:
        from kedro_mlflow.io.artifacts import MlflowArtifactDataset as KedroMlflowArtifactDataset

        built = KedroMlflowArtifactDataset(
            dataset=dataset,
            run_id=run_id,
            artifact_path=artifact_path,
            credentials=credentials,
            metadata=metadata,
        )
        if version is not None:
            if not isinstance(built, AbstractVersionedDataset):
                raise TypeError(f"{type(built).__mro__[1].__name__} cannot be versioned")
            built._version = version
        return built
