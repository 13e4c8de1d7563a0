"""Tables of numbers as pandas frames and torch tensors without a second copy of the data."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import torch


def float_frame(
    names: Sequence[str],
    rows: int,
    column: Callable[[int], np.ndarray],
    index: pd.Index | None = None,
) -> pd.DataFrame:
    """A frame of float64 columns held in one block, filled one column at a time.

    Args:
        names: the column names.
        rows: the rows of every column.
        column: gives column ``i`` as a numpy array (any numeric dtype, converted here); it is
            called once per column, so the caller can free each source column after its turn.
        index: the frame's index (a RangeIndex when None).
    """
    import numpy as np

    block = np.empty((len(names), rows), dtype=np.float64)
    for position in range(len(names)):
        block[position] = column(position)
    return block_frame(block, names, index)


def block_frame(
    block: np.ndarray, names: Sequence[str], index: pd.Index | None = None
) -> pd.DataFrame:
    """The (columns x rows) float64 ``block`` as a frame, without a copy: pandas keeps a
    frame's columns of one dtype in exactly this layout, and ``to_numpy()`` is then a view."""
    import pandas as pd

    return pd.DataFrame(block.T, columns=list(names), index=index, copy=False)


def as_tensor(array: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """``array`` as a CPU tensor of ``dtype``: float64 shares the array's memory, even a
    read-only view of a pandas frame (the caller only reads it); another dtype is a row-major
    copy, the layout minibatch gathers read fastest."""
    import warnings

    import torch

    with warnings.catch_warnings():  # a read-only view is only read here
        warnings.filterwarnings("ignore", "The given NumPy array is not writable")
        shared = torch.from_numpy(array)
    if dtype == shared.dtype == torch.float64:
        return shared
    return torch.empty(array.shape, dtype=dtype).copy_(shared)
