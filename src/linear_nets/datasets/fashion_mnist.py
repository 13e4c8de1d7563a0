"""Fashion-MNIST's four gzipped IDX archives, fetched within limits, md5-checked on every read.

Loading the dataset returns a :class:`FashionMNISTSource`: a callable that the first node calls
with the mirror, pins and download limits from its parameters (the pattern of ``RemoteFile``),
so all file and network access stays here.

Only the ``.gz`` archives are kept in ``root``; nothing extracted is cached. Every run reads an
archive's bytes once, checks their md5 against the pin and decompresses those same bytes, so a
cached file altered or cut short after its download is caught (and fetched again from the
mirror) instead of silently training on it. Downloads go through
:func:`linear_nets.datasets.download.download` (overall deadline, size cap, atomic rename):
torchvision's own downloader has no timeout at all. The default mirror and pins are
torchvision's (``torchvision.datasets.FashionMNIST.mirrors`` / ``.resources``). torch and numpy
are imported on first use, since every ``kedro run`` imports this package.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import math
import shutil
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kedro.io import DatasetError

from linear_nets.datasets.atomic import atomic_write
from linear_nets.datasets.download import ChecksumMismatchError, DownloadLimits, download
from linear_nets.datasets.read_only import ReadOnlyDataset

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
"""The four files every mirror must hold, in torchvision's order."""
MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
"""torchvision's mirror (``FashionMNIST.mirrors``)."""
MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
"""torchvision's md5 pins (``FashionMNIST.resources``)."""
DEFAULT_LIMITS = DownloadLimits(
    timeout_s=30.0, deadline_s=600.0, max_bytes=100_000_000, param="fashion_mnist.source"
)
"""30 s for one read, 10 minutes and 100 MB for one file (the largest is 26.4 MB)."""
N_CLASSES = 10
SIDE = 28
_IDX_UBYTE = 0x08

Splits = dict[str, "torch.Tensor"]


class FashionMNISTFileError(DatasetError):
    """One of the four files is missing, corrupt, truncated or not in the IDX layout."""


@dataclass(frozen=True)
class FashionMNISTSource:
    """The local folder ``root`` of the four archives, and how to fill it."""

    root: Path

    def __call__(
        self,
        mirror: str | None = None,
        md5: Mapping[str, str] | None = None,
        limits: DownloadLimits | None = None,
    ) -> Splits:
        """Fetch whichever archives are missing or fail their md5, then read both splits.

        Args:
            mirror: base URL or local directory holding the four ``.gz`` files;
                None uses torchvision's mirror.
            md5: expected md5 per file name; None uses torchvision's pins.
            limits: per-read timeout, deadline and size cap of each file's download;
                None: :data:`DEFAULT_LIMITS`.

        Returns:
            ``train_images``/``test_images`` as uint8 (n, 28, 28) and
            ``train_labels``/``test_labels`` as int64 (n,).

        Raises:
            FashionMNISTFileError: a file is missing, corrupt, truncated or malformed,
                naming it (and its expected md5).
            DatasetError: a download failed or broke a limit, naming the URL and the limit.
        """
        pins = dict(MD5 if md5 is None else md5)
        limits = limits or DEFAULT_LIMITS
        archives = {name: self._ensure(name, pins[name], mirror, limits) for name in FILES}
        arrays = {name: self._decode(name, archives.pop(name)) for name in FILES}
        splits = {
            "train_images": arrays[FILES[0]],
            "train_labels": arrays[FILES[1]],
            "test_images": arrays[FILES[2]],
            "test_labels": arrays[FILES[3]],
        }
        for split, images, labels in (("train", *FILES[:2]), ("test", *FILES[2:])):
            if len(arrays[images]) != len(arrays[labels]):
                raise FashionMNISTFileError(
                    f"{self.root / images} holds {len(arrays[images])} {split} images but "
                    f"{self.root / labels} holds {len(arrays[labels])} labels"
                )
        logger.info(
            "Fashion-MNIST from %s: %d training and %d test images (md5 verified)",
            self.root,
            len(splits["train_images"]),
            len(splits["test_images"]),
        )
        return splits

    def _ensure(
        self, name: str, expected: str, mirror: str | None, limits: DownloadLimits
    ) -> bytes:
        """The bytes of ``root/name``, read once and md5-checked, fetched first if needed."""
        archive = self.root / name
        cached = ""
        if archive.is_file():
            data = archive.read_bytes()
            if (actual := _md5(data)) == expected:
                return data
            cached = f"the cached {archive} is corrupt (md5 {actual}, expected {expected}) and "
            logger.warning(
                "%s has md5 %s, not the pinned %s; fetching it again", *(archive, actual, expected)
            )
        base = MIRROR if mirror is None else mirror
        try:
            if "://" in base:
                url = f"{base if base.endswith('/') else base + '/'}{name}"
                try:
                    download(url, archive, limits, checksum=("md5", expected))
                except ChecksumMismatchError as exc:
                    raise FashionMNISTFileError(f"{name} is corrupt on the mirror: {exc}") from exc
                except DatasetError as exc:
                    raise FashionMNISTFileError(
                        f"{name} (md5 {expected}) could not be fetched: {exc}; set "
                        f"{limits.param}.mirror to another base URL or to a local directory "
                        f"holding the four .gz files (--params {limits.param}.mirror=DIR)"
                    ) from exc
            else:
                self._copy(Path(base), name, expected)
        except FashionMNISTFileError as exc:
            if not cached:
                raise
            raise FashionMNISTFileError(f"{cached}{exc}") from exc
        data = archive.read_bytes()  # the fetched file, checked again as it is read
        if (actual := _md5(data)) != expected:
            raise FashionMNISTFileError(f"{archive} is corrupt: md5 {actual}, expected {expected}")
        return data

    def _copy(self, mirror: Path, name: str, expected: str) -> None:
        """Copy ``name`` out of a local mirror directory after its md5 check."""
        folder = mirror.expanduser().resolve()
        if not folder.is_dir():
            raise DatasetError(
                f"the Fashion-MNIST mirror {str(mirror)!r} is neither a URL nor a directory"
            )
        source = folder / name
        if not source.is_file():
            raise FashionMNISTFileError(
                f"{name} (md5 {expected}) is missing from the mirror directory {folder}"
            )
        if (actual := _md5(source.read_bytes())) != expected:
            raise FashionMNISTFileError(f"{source} is corrupt: md5 {actual}, expected {expected}")
        with atomic_write(self.root / name) as file, source.open("rb") as original:
            shutil.copyfileobj(original, file)
        logger.info("Copied %s from %s (md5 verified)", name, folder)

    def _decode(self, name: str, data: bytes) -> torch.Tensor:
        """The archive's array, from its md5-checked bytes."""
        archive = self.root / name
        try:
            payload = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise FashionMNISTFileError(f"{archive} is not a complete gzip file: {exc}") from exc
        return _parse_idx(payload, archive, images="images" in name)


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _parse_idx(payload: bytes, path: Path, *, images: bool) -> torch.Tensor:
    """Images (n, 28, 28) as uint8 or labels (n,) as int64 from an uncompressed IDX payload.

    The layout (LeCun): two zero bytes, the type byte (0x08 = unsigned byte), the number of
    dimensions, one big-endian uint32 per dimension, then the values.
    """
    import numpy as np
    import torch

    dims = 3 if images else 1
    header_size = 4 + 4 * dims
    if len(payload) < header_size:
        raise FashionMNISTFileError(
            f"{path} is truncated: {len(payload)} bytes, shorter than the IDX header"
        )
    zero, kind, ndim = struct.unpack(">HBB", payload[:4])
    if zero != 0 or kind != _IDX_UBYTE or ndim != dims:
        raise FashionMNISTFileError(
            f"{path} is not an IDX file of unsigned bytes with {dims} dimension(s): "
            f"header {payload[:4].hex()}"
        )
    shape = struct.unpack(f">{dims}I", payload[4:header_size])
    if images and shape[1:] != (SIDE, SIDE):
        raise FashionMNISTFileError(f"{path} holds {shape[1]}×{shape[2]} images, not 28×28")
    expected = header_size + math.prod(shape)
    if len(payload) != expected:
        raise FashionMNISTFileError(
            f"{path} is truncated or padded: its header announces {shape} "
            f"({expected} bytes), the file holds {len(payload)}"
        )
    values = np.frombuffer(payload, np.uint8, offset=header_size)
    if images:
        return torch.from_numpy(values.copy()).reshape(shape)
    if (wrong := np.flatnonzero(values >= N_CLASSES)).size:
        raise FashionMNISTFileError(
            f"{path}: label {values[wrong[0]]} at row {wrong[0]} is not a class (0-{N_CLASSES - 1})"
        )
    return torch.from_numpy(values.astype(np.int64))


class FashionMNISTDataset(ReadOnlyDataset[FashionMNISTSource]):
    """Fashion-MNIST kept in ``root`` and fetched on demand by the node that loads it.

    Example catalog entry::

        fashion_mnist_source:
          type: linear_nets.datasets.FashionMNISTDataset
          root: data/01_raw/fashion_mnist
    """

    describe_key = "root"

    def __init__(self, *, root: str, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(root, metadata)

    def load(self) -> FashionMNISTSource:
        return FashionMNISTSource(self._path)

    def _exists(self) -> bool:
        return all((self._path / name).is_file() for name in FILES)
