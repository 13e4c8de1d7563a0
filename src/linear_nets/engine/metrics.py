"""Evaluation metrics for regression and classification."""

from __future__ import annotations

import torch


def regression_metrics(y_true: torch.Tensor, y_pred: torch.Tensor) -> dict[str, float]:
    """MSE, RMSE, MAE and R² of ``y_pred`` against ``y_true``."""
    y_true = y_true.detach().to(torch.float64).flatten()
    y_pred = y_pred.detach().to(torch.float64).flatten()
    residual = y_pred - y_true
    mse = float((residual**2).mean())
    total = float(((y_true - y_true.mean()) ** 2).sum())
    r2 = 1.0 - float((residual**2).sum()) / total if total > 0 else float("nan")
    return {"mse": mse, "rmse": mse**0.5, "mae": float(residual.abs().mean()), "r2": r2}


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Share of rows whose highest logit is the true label (a 0-d tensor, no host sync)."""
    return (logits.argmax(dim=1) == labels).float().mean()


def confusion_matrix(labels: torch.Tensor, predicted: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Counts with true classes as rows and predicted classes as columns."""
    flat = labels.long().cpu() * n_classes + predicted.long().cpu()
    return torch.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def per_class_accuracy(matrix: torch.Tensor) -> torch.Tensor:
    """Recall of each class from a confusion matrix (NaN for a class with no rows)."""
    totals = matrix.sum(dim=1).to(torch.float64)
    return matrix.diagonal().to(torch.float64) / totals
