"""Minibatches of tensors that already sit on the training device.

One ``randperm`` per epoch and contiguous slices of it: no per-row ``Dataset.__getitem__``
and no host-to-device copy per batch, which is what makes ``DataLoader(TensorDataset)``
tens of times slower on in-memory data.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch


class Batches:
    """Iterate over ``(X, y)`` in shuffled minibatches; full batch when ``batch_size`` is None.

    The permutation comes from a CPU generator seeded once, so the batch order is the same
    on every device.
    """

    def __init__(
        self,
        X: torch.Tensor,
        y: torch.Tensor,
        batch_size: int | None = None,
        *,
        seed: int = 0,
        shuffle: bool = True,
    ) -> None:
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
        if len(X) == 0:
            raise ValueError("cannot train on an empty data set")
        self.X, self.y = X, y
        self.n = len(X)
        self.batch_size = self.n if batch_size is None else min(batch_size, self.n)
        self.shuffle = shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.batch_size == self.n:
            yield self.X, self.y
            return
        order = torch.arange(self.n)
        if self.shuffle:
            order = torch.randperm(self.n, generator=self.generator)
        order = order.to(self.X.device)
        for start in range(0, self.n, self.batch_size):
            rows = order[start : start + self.batch_size]
            # index_select, not X[rows]: on the CPU the advanced-indexing kernel can stall for
            # milliseconds per batch when it runs between backward passes (measured 15 ms vs
            # 35 µs for 256 rows on two cores); the rows gathered are the same.
            yield self.X.index_select(0, rows), self.y.index_select(0, rows)
