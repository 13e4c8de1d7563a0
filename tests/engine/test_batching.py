"""Minibatches cover every row exactly once per epoch, in a seeded random order."""

from __future__ import annotations

import pytest
import torch

from linear_nets.engine import Batches


def _rows(n: int, d: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    X = torch.arange(n * d, dtype=torch.float32).reshape(n, d)
    return X, torch.arange(n, dtype=torch.float32)


@pytest.mark.parametrize(("n", "batch_size"), [(103, 10), (100, 10), (5, 1), (7, 50)])
def test_every_row_once_per_epoch(n: int, batch_size: int) -> None:
    X, y = _rows(n)
    batches = Batches(X, y, batch_size, seed=3)
    for _ in range(3):
        seen = []
        for X_batch, y_batch in batches:
            assert len(X_batch) <= batch_size
            torch.testing.assert_close(X_batch, X[y_batch.long()])  # rows stay paired
            seen.append(y_batch)
        assert len(seen) == len(batches) == -(-n // min(batch_size, n))
        assert sorted(torch.cat(seen).long().tolist()) == list(range(n))


def test_order_is_shuffled_and_changes_between_epochs() -> None:
    batches = Batches(*_rows(200), 20, seed=0)
    first = torch.cat([y for _, y in batches])
    second = torch.cat([y for _, y in batches])
    assert not torch.equal(first, torch.arange(200.0))
    assert not torch.equal(first, second)


def test_same_seed_gives_the_same_order() -> None:
    one = [y for _, y in Batches(*_rows(50), 8, seed=5)]
    two = [y for _, y in Batches(*_rows(50), 8, seed=5)]
    other = [y for _, y in Batches(*_rows(50), 8, seed=6)]
    assert all(torch.equal(a, b) for a, b in zip(one, two, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(one, other, strict=True))


def test_unshuffled_batches_keep_the_row_order() -> None:
    order = torch.cat([y for _, y in Batches(*_rows(23), 5, shuffle=False)])
    torch.testing.assert_close(order, torch.arange(23.0))


def test_full_batch_when_batch_size_is_none() -> None:
    X, y = _rows(9)
    batches = list(Batches(X, y))
    assert len(batches) == 1
    assert batches[0][0] is X and batches[0][1] is y


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="X has 3 rows but y has 4"):
        Batches(torch.zeros(3, 2), torch.zeros(4))


def test_empty_data_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        Batches(torch.zeros(0, 2), torch.zeros(0))
