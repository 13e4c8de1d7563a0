"""Remove what a save that never finished left where a later run would read it.

kedro-datasets' datasets (``pandas.ParquetDataset``, ``pandas.CSVDataset``,
``json.JSONDataset``, ``PyTorchDataset``) write their file in place. When the disk fills up
(or the process is interrupted) in the middle of a save, a 0-byte or half-written file stays in
the run's version folder, ``<filepath>/<version>/<name>``, as the newest version: the next
``kedro run --from-nodes ...`` or a notebook's ``catalog.load`` would read it.

:class:`PartialSaveHook` notes, through Kedro's public ``before_dataset_saved`` and
``after_dataset_saved`` hooks, each save of a local file that started and did not finish. When
the pipeline fails (``on_pipeline_error``), when the next run of the same process starts (a
notebook after Ctrl-C) and at exit (after Ctrl-C, or a SIGTERM the tracking hook turned into
an exception), it removes what such a save wrote: the
file it created or changed (a folder only if the save created it), then the version folder if
that is left empty. A file the save did not touch (a save Kedro refused before writing; the
project's own datasets, which write through a temporary name: :mod:`.atomic`) stays as it was,
and so does everything a finished save wrote, whatever happens to the run afterwards.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SaveTarget:
    """Where a catalog entry saves: ``path``, inside ``version_folder`` when versioned."""

    path: Path
    version_folder: Path | None = None


def save_target(catalog: Any, name: str) -> SaveTarget | None:
    """Where catalog entry ``name`` saves, as its ``filepath`` is written (relative paths stay
    relative): ``<filepath>/<version>/<basename>`` for a versioned entry (Kedro's documented
    layout), ``<filepath>`` otherwise; ``None`` for an entry with no local ``filepath`` (in
    memory, on another filesystem, or not from the catalog's configuration)."""
    from kedro.io import AbstractVersionedDataset

    config = catalog.config_resolver.resolve_pattern(name)
    filepath = config.get("filepath") if isinstance(config, dict) else None
    if not isinstance(filepath, str | os.PathLike):
        return None
    text = str(filepath).removeprefix("file://")
    if "://" in text:  # s3://, gcs://, ...: not a local file
        return None
    path = Path(text)
    dataset = catalog.get(name) if config.get("versioned") else None
    versioned = isinstance(dataset, AbstractVersionedDataset)
    version = dataset.resolve_save_version() if versioned else None
    if version:
        return SaveTarget(path / version / path.name, path / version)
    return SaveTarget(path)


@dataclass(frozen=True)
class _Save:
    """A save that started: its target, absolute, and what was there before (``None``:
    nothing)."""

    target: SaveTarget
    before: tuple[int, int, int] | None


def _signature(path: Path) -> tuple[int, int, int] | None:
    """The inode, size and modification time of ``path``; ``None`` when nothing is there."""
    try:
        stat = path.lstat()
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _remove(save: _Save) -> bool:
    """Remove what ``save`` wrote; return whether there was something."""
    path = save.target.path
    now = _signature(path)
    written = now is not None and now != save.before
    if written and path.is_dir() and not path.is_symlink():
        written = save.before is None  # a folder that was there before is not the save's
        if written:
            shutil.rmtree(path, ignore_errors=True)
    elif written:
        path.unlink(missing_ok=True)
    if save.target.version_folder is not None:
        with contextlib.suppress(OSError):  # not empty: another save of the run finished there
            save.target.version_folder.rmdir()
    return written


class PartialSaveHook:
    """Remove what saves that started and did not finish wrote (see the module docstring)."""

    def __init__(self) -> None:
        self._catalog: Any = None
        self._saves: dict[str, _Save] = {}
        self._lock = threading.Lock()  # ThreadRunner saves from several threads
        self._exit_handler_registered = False

    @hook_impl
    def before_pipeline_run(self, catalog: Any) -> None:
        self.remove_unfinished()  # an earlier run of this process that was interrupted
        self._catalog = catalog
        if not self._exit_handler_registered:
            atexit.register(self.remove_unfinished)
            self._exit_handler_registered = True

    @hook_impl
    def before_dataset_saved(self, dataset_name: str) -> None:
        if self._catalog is None:  # outside a run of this process (ParallelRunner's workers)
            return
        target = save_target(self._catalog, dataset_name)
        if target is None:
            return
        folder = target.version_folder
        target = SaveTarget(target.path.absolute(), folder.absolute() if folder else None)
        save = _Save(target, _signature(target.path))
        with self._lock:
            self._saves[dataset_name] = save

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        with self._lock:
            self._saves.pop(dataset_name, None)

    @hook_impl
    def on_pipeline_error(self) -> None:
        self.remove_unfinished()

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._catalog = None

    def remove_unfinished(self) -> list[Path]:
        """Remove what the saves that did not finish wrote; return the paths removed."""
        with self._lock:
            saves, self._saves = list(self._saves.values()), {}
        removed = [save.target.path for save in saves if _remove(save)]
        if removed:
            logger.warning(
                "Removed what unfinished saves wrote, so that no later run reads it: %s",
                ", ".join(str(path) for path in removed),
            )
        return removed
