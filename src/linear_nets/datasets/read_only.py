"""The base of the datasets that nodes only load: a file or folder that no node writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from kedro.io import AbstractDataset, DatasetError

_Loaded = TypeVar("_Loaded")


class ReadOnlyDataset(AbstractDataset[None, _Loaded]):
    """A dataset at ``path`` that ``save`` refuses; it exists when the file does.

    Subclasses implement ``load``; ``describe_key`` is the catalog argument naming the path.
    """

    describe_key = "filepath"

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def save(self, data: None) -> None:
        raise DatasetError(f"{self._path}: {type(self).__name__} is read-only")

    def _exists(self) -> bool:
        return self._path.is_file()

    def _describe(self) -> dict[str, Any]:
        return {self.describe_key: str(self._path)}
