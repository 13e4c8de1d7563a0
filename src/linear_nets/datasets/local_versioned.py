"""What the project's versioned datasets of local files share: the path, the metadata, and
"exists" meaning that a version was saved."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from kedro.io import AbstractVersionedDataset, DatasetError, Version

_DI = TypeVar("_DI")
_DO = TypeVar("_DO")


class LocalVersionedDataset(AbstractVersionedDataset[_DI, _DO]):
    """A dataset of one local file (or folder); with ``versioned: true`` each run writes
    ``<filepath>/<version>/<name>``."""

    def __init__(
        self,
        *,
        filepath: str,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(filepath=PurePosixPath(filepath), version=version)
        self.metadata = metadata

    def _saved_path(self) -> Path | None:
        """The path to load, or None while no version has been saved."""
        try:
            return Path(self._get_load_path())
        except DatasetError:
            return None

    def _exists(self) -> bool:
        path = self._saved_path()
        return path is not None and path.is_file()
