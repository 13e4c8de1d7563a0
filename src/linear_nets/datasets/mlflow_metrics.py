"""Metrics kept as a local JSON file and logged to the active MLflow run in one batch.

kedro-mlflow's metrics datasets log one point per request; a history of thousands of epochs
then costs seconds of SQLite round trips. This dataset sends them with ``log_batch``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import AbstractVersionedDataset, DatasetError, Version

from linear_nets.datasets.mlflow_deferred import log_when_done

Metrics = dict[str, float | list[float]]
_BATCH = 1000  # MLflow accepts at most 1000 metrics per log_batch call


class MlflowMetricsDataset(AbstractVersionedDataset[Metrics, Metrics]):
    """Save ``{name: value}`` or ``{name: [per-epoch values]}`` to JSON and to MLflow.

    A list is logged as a history with step = epoch (1, 2, ...); a number is logged at step 0.
    Without an active MLflow run only the JSON file is written; within a Kedro run the logging
    waits for the pipeline to succeed (phase ``"metrics"`` of :mod:`linear_nets.tracking.deferred`).
    With ``versioned: true`` each run writes its own ``<filepath>/<version>/<name>``.

    Example catalog entry::

        boston_metrics:
          type: linear_nets.datasets.MlflowMetricsDataset
          filepath: data/08_reporting/boston_metrics.json
          versioned: true
    """

    def __init__(
        self,
        *,
        filepath: str,
        prefix: str | None = None,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(filepath=PurePosixPath(filepath), version=version)
        self._prefix = prefix
        self.metadata = metadata

    def load(self) -> Metrics:
        return json.loads(Path(self._get_load_path()).read_text())

    def save(self, data: Metrics) -> None:
        entries = list(self._metric_entries(data))
        path = Path(self._get_save_path())
        path.parent.mkdir(parents=True, exist_ok=True)
        # written whole or not at all: a reader never sees half a file
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
            tmp.write(json.dumps(data, indent=2) + "\n")
        os.replace(tmp.name, path)
        self._log(entries)

    def _metric_entries(self, data: Metrics) -> list[tuple[str, float, int]]:
        entries = []
        for name, value in data.items():
            key = f"{self._prefix}.{name}" if self._prefix else name
            values = value if isinstance(value, list) else [value]
            steps = range(1, len(values) + 1) if isinstance(value, list) else [0]
            for step, item in zip(steps, values, strict=True):
                if not isinstance(item, int | float) or isinstance(item, bool):
                    raise DatasetError(
                        f"metric {key!r} must be a number or a list of numbers, got {item!r}"
                    )
                entries.append((key, float(item), step))
        return entries

    @staticmethod
    def _log(entries: list[tuple[str, float, int]]) -> None:
        log_when_done(lambda run_id: _log_batch(run_id, entries), phase="metrics")

    def _exists(self) -> bool:
        try:
            path = self._get_load_path()
        except DatasetError:
            return False
        return Path(path).is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "prefix": self._prefix, "version": self._version}


def _log_batch(run_id: str, entries: list[tuple[str, float, int]]) -> None:
    import mlflow
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [
        Metric(key, value if math.isfinite(value) else float("nan"), now, step)
        for key, value, step in entries
    ]
    client = mlflow.MlflowClient()
    for start in range(0, len(metrics), _BATCH):
        client.log_batch(run_id, metrics=metrics[start : start + _BATCH])
