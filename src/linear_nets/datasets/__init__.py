"""Custom Kedro datasets, only where kedro-datasets has none (or, for
figures, none that imports matplotlib only when it draws: see ``figure.py``).

Every ``kedro`` command imports this package (through the hooks), so each dataset's module,
and what it imports (torch, MLflow), loads only when the dataset is first used: the catalog's
``type: linear_nets.datasets.<Name>`` and ``from linear_nets.datasets import <Name>`` both
resolve through ``__getattr__`` below (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from linear_nets.datasets.fashion_mnist import FashionMNISTDataset, FashionMNISTFileError
    from linear_nets.datasets.figure import FigureDataset
    from linear_nets.datasets.metrics import MetricsDataset
    from linear_nets.datasets.pyfunc_package import PyfuncPackageDataset
    from linear_nets.datasets.remote_file import (
        ChecksumMismatchError,
        RemoteFile,
        RemoteFileDataset,
    )

# public name -> the submodule that defines it
_EXPORTS = {
    "ChecksumMismatchError": "remote_file",
    "FashionMNISTDataset": "fashion_mnist",
    "FashionMNISTFileError": "fashion_mnist",
    "FigureDataset": "figure",
    "MetricsDataset": "metrics",
    "PyfuncPackageDataset": "pyfunc_package",
    "RemoteFile": "remote_file",
    "RemoteFileDataset": "remote_file",
}

__all__ = [
    "ChecksumMismatchError",
    "FashionMNISTDataset",
    "FashionMNISTFileError",
    "FigureDataset",
    "MetricsDataset",
    "PyfuncPackageDataset",
    "RemoteFile",
    "RemoteFileDataset",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
