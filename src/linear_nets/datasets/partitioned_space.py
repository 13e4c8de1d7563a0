"""kedro-datasets' ``PartitionedDataset`` that refuses to start writing what the disk cannot hold,
and that one run at a time uses.

Lazily saved partitions (callables) are made and written one at a time, so a data set of
10⁸ rows never sits in memory; but a disk that fills up half-way leaves a broken folder. This
subclass makes the first partition, estimates the whole from it (its in-memory size times the
number of partitions, which for float columns is about what Parquet writes), and stops with
that estimate before writing anything when the free space is short.

Such a folder is too large to keep one copy per run (Kedro's versioning): each run replaces it
(``overwrite``) and then streams it, so a second run writing it meanwhile would pull the
partitions from under the first. A run holds the folder, by an OS file lock on
``<folder>.lock``, from its first save or load of it until Kedro releases the dataset (after the
last node that reads it) or the process ends, however it ends; another run waits for it, and
says so once.
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from kedro.io.core import DatasetError, get_protocol_and_path
from kedro_datasets.partitions import PartitionedDataset

logger = logging.getLogger(__name__)

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
    """A ``PartitionedDataset`` (same arguments) whose ``save`` checks the disk space first,
    and whose folder one run at a time holds (see the module's docstring).

    Both apply to local paths; other file systems are written unchecked and unheld.
    """

    def __init__(
        self, *, path: str, overwrite: bool = False, save_lazily: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(path=path, overwrite=overwrite, save_lazily=save_lazily, **kwargs)
        protocol, local_path = get_protocol_and_path(path)
        self._folder = Path(local_path) if protocol == "file" else None
        self._replaces, self._makes_lazily = overwrite, save_lazily
        self._held: FileLock | None = None

    def save(self, data: dict[str, Any]) -> None:
        self._hold()
        if not data or self._folder is None:
            super().save(data)
            return
        first_id = min(data)
        first = data[first_id]
        if callable(first) and self._makes_lazily:
            first = first()
        estimate = _size_in_memory(first) * len(data)
        folder = self._folder
        existing = folder if folder.exists() else next(p for p in folder.parents if p.exists())
        free = shutil.disk_usage(existing).free
        if self._replaces and folder.exists():
            free += _folder_bytes(folder)  # the old partitions are removed first
        if estimate > HEADROOM * free:
            raise DatasetError(
                f"{len(data)} partitions of about {_size_in_memory(first) / 1e6:.1f} MB each "
                f"need about {estimate / 1e9:.2f} GB in {folder}, but only "
                f"{free / 1e9:.2f} GB are free there: make fewer rows, or point the "
                "catalog entry at a larger disk"
            )
        super().save({**data, first_id: first})

    def load(self) -> dict[str, Any]:
        self._hold()
        return super().load()

    def _hold(self) -> None:
        """Take the folder's lock for this run, once; wait (saying so) while another holds it."""
        if self._folder is None or self._held is not None:
            return
        self._folder.parent.mkdir(parents=True, exist_ok=True)
        # one lock object per folder in this process, counting its holders: two catalogs of one
        # process (a notebook's reload) share it instead of waiting for each other
        lock = FileLock(f"{self._folder}.lock", thread_local=False, is_singleton=True)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            logger.warning(
                "Waiting for another process that is using %s (a run, or a notebook that loaded "
                "it; it holds %s.lock) to finish with it",
                self._folder,
                self._folder,
            )
            lock.acquire()
        self._held = lock

    def _release(self) -> None:
        super()._release()
        if self._held is not None:  # the last node that reads the folder is done with it
            self._held.release()
            self._held = None
