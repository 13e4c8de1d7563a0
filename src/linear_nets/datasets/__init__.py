"""Custom Kedro datasets, only where kedro-datasets has none (or, for
figures, none that imports matplotlib only when it draws: see ``figure.py``).

Every ``kedro`` command imports this package (through the hooks), so each dataset's module,
and what it imports (torch, pandas), loads only when the dataset is first used: the catalog's
``type: linear_nets.datasets.<Name>`` and ``from linear_nets.datasets import <Name>`` both
resolve lazily, through ``lazy_loader`` (as kedro-datasets' own packages do).
"""

from __future__ import annotations

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "fashion_mnist": ["FashionMNISTDataset", "FashionMNISTFileError"],
        "figure": ["FigureDataset"],
        "frame": ["FrameDataset"],
        "metrics": ["MetricsDataset"],
        "pyfunc_package": ["PyfuncPackageDataset"],
        "registered_model": ["RegisteredModelDataset"],
        "remote_file": ["ChecksumMismatchError", "RemoteFile", "RemoteFileDataset"],
    },
)
