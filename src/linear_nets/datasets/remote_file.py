"""A local file that is fetched over HTTP(S) only when it is missing or fails its checksum.

Loading the dataset returns a :class:`RemoteFile`: a callable that the download node calls
with the URL, pin and timeout from its parameters, in the way ``PartitionedDataset`` hands
nodes lazy loaders. All file and network access stays here, out of the nodes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

logger = logging.getLogger(__name__)
_CHUNK = 1 << 16


class ChecksumMismatchError(DatasetError):
    """A file's sha256 differs from the pinned value."""


def sha256_of(data: bytes) -> str:
    """Hex sha256 digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class RemoteFile:
    """The local copy at ``path`` and how to (re)fetch it."""

    path: Path

    def __call__(self, url: str, sha256: str | None, timeout_s: float) -> bytes:
        """Return the file's verified bytes, downloading and saving them only when needed.

        The local copy is used when it exists and matches ``sha256`` (or when ``sha256`` is
        None). Otherwise ``url`` is fetched, checked against the pin and saved atomically, so
        a failed or corrupt download never replaces the local file.

        Raises:
            ChecksumMismatchError: the downloaded bytes do not match ``sha256``.
            DatasetError: the download failed or timed out.
        """
        local = self.path.read_bytes() if self.path.is_file() else None
        if local is not None:
            if sha256 is None:
                logger.info("Using %s (checksum pin disabled)", self.path)
                return local
            if sha256_of(local) == sha256.lower():
                logger.info("Using %s (sha256 matches the pin; no download)", self.path)
                return local
            logger.warning(
                "%s has sha256 %s, not the pinned %s; downloading %s",
                self.path,
                sha256_of(local),
                sha256,
                url,
            )
        else:
            logger.info("%s is missing; downloading %s", self.path, url)
        data = self._download(url, timeout_s)
        if sha256 is not None and sha256_of(data) != sha256.lower():
            raise ChecksumMismatchError(
                f"the file downloaded from {url} for {self.path} has sha256 {sha256_of(data)}, "
                f"but the pin is {sha256.lower()}; the local file was left unchanged"
            )
        self._save(data)
        return data

    def _download(self, url: str, timeout_s: float) -> bytes:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310
                return response.read()
        except TimeoutError as exc:
            raise DatasetError(
                f"downloading {url} for {self.path} timed out after {timeout_s} s"
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise DatasetError(
                    f"downloading {url} for {self.path} timed out after {timeout_s} s"
                ) from exc
            raise DatasetError(f"could not download {url} for {self.path}: {reason}") from exc

    def _save(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        logger.info("Saved %d bytes to %s", len(data), self.path)


class RemoteFileDataset(AbstractDataset[None, RemoteFile]):
    """A file kept locally at ``filepath`` and fetched on demand by the node that loads it.

    Example catalog entry::

        boston_source:
          type: linear_nets.datasets.RemoteFileDataset
          filepath: data/01_raw/boston.txt
    """

    def __init__(self, *, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(filepath)
        self.metadata = metadata

    def load(self) -> RemoteFile:
        return RemoteFile(self._path)

    def save(self, data: None) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only: it saves what it downloads")

    def _exists(self) -> bool:
        return self._path.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._path)}
