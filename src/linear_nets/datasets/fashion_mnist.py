"""Fashion-MNIST's four IDX files, fetched and md5-checked by torchvision, read as uint8 tensors.

Loading the dataset returns a :class:`FashionMNISTSource`: a callable that the first node calls
with the mirror from its parameters (the pattern of ``RemoteFile``), so all file and network
access stays here. torchvision's ``FashionMNIST`` does the download, the md5 check and the IDX
parsing; only its mirror, its pins and its folder are changed. torchvision is imported on
first use, since every ``kedro run`` imports this package.
"""

from __future__ import annotations

import functools
import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from kedro.io import AbstractDataset, DatasetError

logger = logging.getLogger(__name__)

FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
"""The four files every mirror must hold, in torchvision's order."""

Splits = dict[str, torch.Tensor]


class FashionMNISTFileError(DatasetError):
    """One of the four files could not be fetched from the mirror, or fails its md5 pin."""


@functools.cache
def torchvision_fashion_mnist() -> type:
    """torchvision's ``FashionMNIST``, downloading into ``root`` itself from the given mirrors.

    Upstream keeps the files in ``root/FashionMNIST/raw``; here ``root`` is already the data
    layer's own folder, ``data/01_raw/fashion_mnist``. ``mirrors`` and ``resources`` (file
    names and md5 pins) default to upstream's; ``transform`` is upstream's per-image transform,
    which only the benchmark's tutorial baseline uses.
    """
    from torchvision.datasets import FashionMNIST

    class FlatFashionMNIST(FashionMNIST):
        def __init__(
            self,
            root: Path,
            *,
            train: bool,
            mirrors: list[str] | None = None,
            resources: list[tuple[str, str]] | None = None,
            transform: Any = None,
        ) -> None:
            self.mirrors = list(FashionMNIST.mirrors if mirrors is None else mirrors)
            self.resources = list(FashionMNIST.resources if resources is None else resources)
            super().__init__(root, train=train, transform=transform, download=True)

        @property
        def raw_folder(self) -> str:
            return str(self.root)

    return FlatFashionMNIST


@dataclass(frozen=True)
class FashionMNISTSource:
    """The local folder ``root`` of the four files, and how to fill it."""

    root: Path

    def __call__(self, mirror: str | None = None, md5: Mapping[str, str] | None = None) -> Splits:
        """Download whichever files are missing, check their md5 and read both splits.

        Args:
            mirror: base URL or local directory holding the four ``.gz`` files;
                None uses torchvision's own URLs.
            md5: expected md5 per file name; None uses torchvision's pins.

        Returns:
            ``train_images``/``test_images`` as uint8 (n, 28, 28) and
            ``train_labels``/``test_labels`` as int64 (n,).

        Raises:
            FashionMNISTFileError: a file is missing on the mirror or fails its md5 pin.
        """
        cls = torchvision_fashion_mnist()
        resources = list(cls.resources) if md5 is None else [(name, md5[name]) for name in FILES]
        if mirror is None:
            mirrors = list(cls.mirrors)
        elif "://" in mirror:
            mirrors = [mirror if mirror.endswith("/") else f"{mirror}/"]
        else:
            mirrors = [f"{self._copy_from(Path(mirror), resources).as_uri()}/"]

        try:
            train = cls(self.root, train=True, mirrors=mirrors, resources=resources)
        except RuntimeError as exc:
            raise self._diagnose(mirrors, resources, exc) from exc
        test = cls(self.root, train=False, mirrors=mirrors, resources=resources)
        logger.info(
            "Fashion-MNIST from %s: %d training and %d test images",
            self.root,
            len(train.data),
            len(test.data),
        )
        return {
            "train_images": train.data,
            "train_labels": train.targets,
            "test_images": test.data,
            "test_labels": test.targets,
        }

    def _copy_from(self, mirror: Path, resources: list[tuple[str, str]]) -> Path:
        """Copy the files missing from ``root`` out of a local mirror, each after its md5 check.

        torchvision streams only ``http(s)`` URLs, so a directory is copied rather than fetched.
        """
        from torchvision.datasets.utils import calculate_md5, check_integrity

        folder = mirror.expanduser().resolve()
        if not folder.is_dir():
            raise DatasetError(
                f"the Fashion-MNIST mirror {str(mirror)!r} is neither a URL nor a directory"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        for name, expected in resources:
            extracted = self.root / name.removesuffix(".gz")
            if extracted.is_file() or check_integrity(self.root / name, expected):
                continue
            source = folder / name
            if not source.is_file():
                raise FashionMNISTFileError(
                    f"{name} (md5 {expected}) is missing from the mirror directory {folder}"
                )
            if (actual := calculate_md5(source)) != expected:
                raise FashionMNISTFileError(
                    f"{source} is corrupt: md5 {actual}, expected {expected}"
                )
            shutil.copyfile(source, self.root / name)
            logger.info("Copied %s from %s (md5 verified)", name, folder)
        return folder

    def _diagnose(
        self, mirrors: list[str], resources: list[tuple[str, str]], exc: RuntimeError
    ) -> FashionMNISTFileError:
        """Name the file torchvision stopped at: it says only 'not found or corrupted'."""
        from torchvision.datasets.utils import calculate_md5

        for name, expected in resources:
            if (self.root / name.removesuffix(".gz")).is_file():
                continue
            urls = ", ".join(f"{base}{name}" for base in mirrors)
            archive = self.root / name
            if archive.is_file() and (actual := calculate_md5(archive)) != expected:
                return FashionMNISTFileError(
                    f"{name} downloaded from {urls} is corrupt: md5 {actual}, expected {expected}"
                )
            reason = str(exc).strip().splitlines()[-1]
            return FashionMNISTFileError(
                f"{name} (md5 {expected}) could not be fetched from {urls}: {reason}; "
                "a mirror (another base URL, or a local directory holding the four .gz files) "
                "can stand in"
            )
        return FashionMNISTFileError(f"Fashion-MNIST could not be prepared in {self.root}: {exc}")


class FashionMNISTDataset(AbstractDataset[None, FashionMNISTSource]):
    """Fashion-MNIST kept in ``root`` and fetched on demand by the node that loads it.

    Example catalog entry::

        fashion_mnist_source:
          type: linear_nets.datasets.FashionMNISTDataset
          root: data/01_raw/fashion_mnist
    """

    def __init__(self, *, root: str, metadata: dict[str, Any] | None = None) -> None:
        self._root = Path(root)
        self.metadata = metadata

    def load(self) -> FashionMNISTSource:
        return FashionMNISTSource(self._root)

    def save(self, data: None) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only: it saves what it downloads")

    def _exists(self) -> bool:
        return all((self._root / name.removesuffix(".gz")).is_file() for name in FILES)

    def _describe(self) -> dict[str, Any]:
        return {"root": str(self._root)}
