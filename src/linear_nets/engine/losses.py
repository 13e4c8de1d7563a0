"""Losses by name, each written by hand beside its ``torch.nn.functional`` twin.

A model built from scratch trains with the hand-written loss, a ``torch.nn`` model with the
library one; both reduce by the mean, so the two paths compute the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
HUBER_DELTA = 1.0


def squared_loss(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error."""
    return ((y_hat - y) ** 2).mean()


def absolute_loss(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute error."""
    return (y_hat - y).abs().mean()


def huber_loss(y_hat: torch.Tensor, y: torch.Tensor, delta: float = HUBER_DELTA) -> torch.Tensor:
    """Quadratic within ``delta`` of the target, linear beyond it."""
    residual = (y_hat - y).abs()
    quadratic = 0.5 * residual**2
    linear = delta * (residual - 0.5 * delta)
    return torch.where(residual <= delta, quadratic, linear).mean()


def log_sum_exp(logits: torch.Tensor) -> torch.Tensor:
    """log(sum(exp(logits))) per row, shifted by the row maximum so exp never overflows."""
    shift = logits.max(dim=1, keepdim=True).values
    return shift.squeeze(1) + torch.log(torch.exp(logits - shift).sum(dim=1))


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean of -log softmax(logits)[label], computed as log-sum-exp minus the true logit."""
    true_logit = logits.gather(1, labels.long().unsqueeze(1)).squeeze(1)
    return (log_sum_exp(logits) - true_logit).mean()


@dataclass(frozen=True)
class LossChoice:
    """One loss: the hand-written form, the library form, and whether it scores regression."""

    hand_written: Loss
    library: Loss
    regression: bool


LOSSES: dict[str, LossChoice] = {
    "mse": LossChoice(squared_loss, F.mse_loss, regression=True),
    "mae": LossChoice(absolute_loss, F.l1_loss, regression=True),
    "huber": LossChoice(
        huber_loss, lambda y_hat, y: F.huber_loss(y_hat, y, delta=HUBER_DELTA), regression=True
    ),
    "cross_entropy": LossChoice(cross_entropy, F.cross_entropy, regression=False),
}
"""The one list of losses: ``TrainConfig.loss`` and :func:`get_loss` both read it."""
REGRESSION_LOSSES = tuple(name for name, choice in LOSSES.items() if choice.regression)


def get_loss(name: str, *, scratch: bool = False) -> Loss:
    """The loss ``name``: hand-written when ``scratch``, else from ``torch.nn.functional``."""
    try:
        choice = LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}: expected one of {sorted(LOSSES)}") from None
    return choice.hand_written if scratch else choice.library
