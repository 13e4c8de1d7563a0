"""Regression and classification metrics on values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from linear_nets.engine.metrics import (
    accuracy,
    confusion_matrix,
    per_class_accuracy,
    regression_metrics,
)


def test_regression_metrics_by_hand() -> None:
    scores = regression_metrics(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 5.0]))
    assert scores["mse"] == pytest.approx(4 / 3)
    assert scores["rmse"] == pytest.approx(math.sqrt(4 / 3))
    assert scores["mae"] == pytest.approx(2 / 3)
    assert scores["r2"] == pytest.approx(1 - 4 / 2)


def test_r2_of_a_constant_target_is_nan() -> None:
    assert math.isnan(regression_metrics(torch.ones(3), torch.ones(3))["r2"])


def test_accuracy_confusion_matrix_and_per_class_recall() -> None:
    labels = torch.tensor([0, 0, 1, 1, 2])
    logits = torch.nn.functional.one_hot(torch.tensor([0, 1, 1, 1, 0]), 3).float()
    assert float(accuracy(logits, labels)) == pytest.approx(3 / 5)
    matrix = confusion_matrix(labels, logits.argmax(dim=1), 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    torch.testing.assert_close(
        per_class_accuracy(matrix), torch.tensor([0.5, 1.0, 0.0], dtype=torch.float64)
    )
