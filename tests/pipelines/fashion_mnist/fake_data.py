"""A tiny Fashion-MNIST in the real IDX format, and a loopback HTTP mirror to download it from."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from linear_nets.datasets.fashion_mnist import FILES

IDX_UBYTE = 0x08
SIDE = 28
N_CLASSES = 10


def write_idx(path: Path, array: torch.Tensor) -> None:
    """Write a uint8 tensor as a gzipped IDX file (big-endian header, as LeCun specified).

    The gzip timestamp is fixed so the same tensor always gives the same md5.
    """
    header = struct.pack(">HBB", 0, IDX_UBYTE, array.dim())
    header += struct.pack(f">{array.dim()}I", *array.shape)
    payload = header + array.to(torch.uint8).contiguous().numpy().tobytes()
    path.write_bytes(gzip.compress(payload, mtime=0))


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class TinyFashionMNIST:
    """Generated splits, the folder holding their four .gz files and the files' md5 pins."""

    folder: Path
    md5: dict[str, str]
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


def _split(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy images whose class is a bright horizontal band, so a linear model can learn them."""
    labels = torch.randint(0, N_CLASSES, (n,), generator=generator)
    images = torch.randint(0, 60, (n, SIDE, SIDE), generator=generator)
    rows = (labels * 2 + 4).reshape(n, 1)
    band = torch.arange(SIDE).reshape(1, SIDE)
    bright = ((band >= rows) & (band < rows + 3)).unsqueeze(2).expand(n, SIDE, SIDE)
    images = torch.where(bright, images + 180, images)
    return images.to(torch.uint8), labels.to(torch.uint8)


def make_tiny_fashion_mnist(
    folder: Path, n_train: int = 300, n_test: int = 100, seed: int = 0
) -> TinyFashionMNIST:
    """Write four IDX files of ``n_train`` and ``n_test`` images into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    train_images, train_labels = _split(n_train, generator)
    test_images, test_labels = _split(n_test, generator)
    arrays = (train_images, train_labels, test_images, test_labels)
    for name, array in zip(FILES, arrays, strict=True):
        write_idx(folder / name, array)
    return TinyFashionMNIST(
        folder=folder,
        md5={name: md5_of(folder / name) for name in FILES},
        train_images=train_images,
        train_labels=train_labels.long(),
        test_images=test_images,
        test_labels=test_labels.long(),
    )


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requested: list[str]

    def do_GET(self) -> None:
        self.requested.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve(folder: Path) -> Iterator[tuple[str, list[str]]]:
    """Serve ``folder`` on 127.0.0.1 (a free port); yield the base URL and the paths requested."""
    requested: list[str] = []
    handler = type("Handler", (_QuietHandler,), {"requested": requested})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(handler, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
