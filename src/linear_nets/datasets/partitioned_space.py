"""kedro-datasets' ``PartitionedDataset`` that refuses to start writing what the disk cannot hold.

Lazily saved partitions (callables) are made and written one at a time, so a data set of
10⁸ rows never sits in memory; but a disk that fills up half-way leaves a broken folder. This
subclass makes the first partition, estimates the whole from it (its in-memory size times the
number of partitions, which for float columns is about what Parquet writes), and stops with
that estimate before writing anything when the free space is short.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from kedro.io.core import DatasetError
from kedro_datasets.partitions import PartitionedDataset

HEADROOM = 0.95
"""Share of the free space a write may take."""


def _size_in_memory(partition: Any) -> int:
    """Bytes of a pandas DataFrame (``memory_usage``), a pyarrow Table (``nbytes``) or other."""
    if hasattr(partition, "memory_usage"):
        return int(partition.memory_usage(deep=True).sum())
    nbytes = getattr(partition, "nbytes", None)
    return int(nbytes) if isinstance(nbytes, int) else sys.getsizeof(partition)


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


class SpaceCheckedPartitionedDataset(PartitionedDataset):
    """A ``PartitionedDataset`` (same arguments) whose ``save`` checks the disk space first.

    The check applies to local paths; other file systems are written unchecked.
    """

    def save(self, data: dict[str, Any]) -> None:
        if not data or self._protocol != "file":
            super().save(data)
            return
        first_id = min(data)
        first = data[first_id]
        if callable(first) and self._save_lazily:
            first = first()
        estimate = _size_in_memory(first) * len(data)
        folder = Path(self._path)
        existing = folder if folder.exists() else next(p for p in folder.parents if p.exists())
        free = shutil.disk_usage(existing).free
        if self._overwrite and folder.exists():
            free += _folder_bytes(folder)  # the old partitions are removed first
        if estimate > HEADROOM * free:
            raise DatasetError(
                f"{len(data)} partitions of about {_size_in_memory(first) / 1e6:.1f} MB each "
                f"need about {estimate / 1e9:.2f} GB in {self._path}, but only "
                f"{free / 1e9:.2f} GB are free there: make fewer rows, or point the "
                "catalog entry at a larger disk"
            )
        super().save({**data, first_id: first})
