"""Metrics as a local JSON file: numbers, or per-epoch lists of numbers.

A plain file, checked when saved; after a successful run :mod:`linear_nets.tracking.publish`
logs every metrics dataset the pipeline wrote to the MLflow run, in batches (a number at step
0, a list with step = epoch).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from kedro.io import DatasetError, Version

from linear_nets.datasets.local_versioned import LocalVersionedDataset

Metrics = dict[str, float | list[float]]


class MetricsDataset(LocalVersionedDataset[Metrics, Metrics]):
    """Save ``{name: value}`` or ``{name: [per-epoch values]}`` as JSON, refusing anything
    that is not a number; with ``versioned: true`` each run writes its own
    ``<filepath>/<version>/<name>``.

    Example catalog entry::

        boston_metrics:
          type: linear_nets.datasets.MetricsDataset
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
        super().__init__(filepath=filepath, version=version, metadata=metadata)
        self._prefix = prefix

    def load(self) -> Metrics:
        return json.loads(Path(self._get_load_path()).read_text())

    def save(self, data: Metrics) -> None:
        metric_entries(data, self._prefix)  # refuse non-numbers before writing anything
        path = Path(self._get_save_path())
        path.parent.mkdir(parents=True, exist_ok=True)
        # written whole or not at all: a reader never sees half a file
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
            tmp.write(json.dumps(data, indent=2) + "\n")
        os.replace(tmp.name, path)

    @property
    def prefix(self) -> str | None:
        """Prepended to every metric name when published (``prefix.name``)."""
        return self._prefix

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "prefix": self._prefix, "version": self._version}


def metric_entries(data: Metrics, prefix: str | None = None) -> list[tuple[str, float, int]]:
    """``(name, value, step)`` of every point: a number at step 0, a list at steps 1, 2, ...;
    raises ``DatasetError`` naming a value that is not a number."""
    entries = []
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        values = value if isinstance(value, list) else [value]
        steps = range(1, len(values) + 1) if isinstance(value, list) else [0]
        for step, item in zip(steps, values, strict=True):
            if not isinstance(item, int | float) or isinstance(item, bool):
                raise DatasetError(
                    f"metric {key!r} must be a number or a list of numbers, got {item!r}"
                )
            entries.append((key, float(item), step))
    return entries
