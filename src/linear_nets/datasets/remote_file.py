"""A local file that is fetched over HTTP(S) only when it is missing or fails its checksum.

Loading the dataset returns a :class:`RemoteFile`: a callable that the download node calls
with the URL, pin and download limits from its parameters, in the way ``PartitionedDataset`` hands
nodes lazy loaders. All file and network access stays here, out of the nodes.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linear_nets.datasets.download import ChecksumMismatchError, DownloadLimits, download
from linear_nets.datasets.read_only import ReadOnlyDataset

logger = logging.getLogger(__name__)

__all__ = ["ChecksumMismatchError", "RemoteFile", "RemoteFileDataset", "sha256_of"]


def sha256_of(data: bytes) -> str:
    """Hex sha256 digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class RemoteFile:
    """The local copy at ``path`` and how to (re)fetch it."""

    path: Path

    def __call__(self, url: str, sha256: str | None, limits: DownloadLimits) -> bytes:
        """Return the file's verified bytes, downloading and saving them only when needed.

        The local copy is used when it exists and matches ``sha256`` (or when ``sha256`` is
        None). Otherwise ``url`` is fetched within ``limits`` (see
        :func:`linear_nets.datasets.download.download`), checked against the pin and saved
        atomically, so a failed or corrupt download never replaces the local file.

        Args:
            url: where to fetch the file from.
            sha256: the pin, or None to take the local file as it is.
            limits: the longest wait for one read, the longest the whole download may take
                (plus one read at most), the largest file accepted, and the parameters they
                come from (named in errors).

        Raises:
            ChecksumMismatchError: the downloaded bytes do not match ``sha256``.
            DatasetError: the download failed, timed out, or broke a limit.
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
        pin = None if sha256 is None else ("sha256", sha256.lower())
        download(url, self.path, limits, checksum=pin)
        return self.path.read_bytes()


class RemoteFileDataset(ReadOnlyDataset[RemoteFile]):
    """A file kept locally at ``filepath`` and fetched on demand by the node that loads it.

    Example catalog entry::

        boston_source:
          type: linear_nets.datasets.RemoteFileDataset
          filepath: data/01_raw/boston.txt
    """

    def __init__(self, *, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(filepath, metadata)

    def load(self) -> RemoteFile:
        return RemoteFile(self._path)
