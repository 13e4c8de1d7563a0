"""Losses by name, each written by hand beside its ``torch.nn.functional`` twin.

A model built from scratch trains with the hand-written loss, a ``torch.nn`` model with the
library one; both reduce by the mean, so the two paths compute the same numbers. Each loss
also has its gradient written out (:data:`LossChoice.gradient`): the fit loop steps a
``torch.nn`` linear model with it instead of autograd (see :mod:`linear_nets.engine.fit`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LossGradient = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""``fn(outputs, targets) -> (loss, d loss / d outputs)``, the loss as its library twin
computes it and its gradient as autograd would give it."""
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


def squared_loss_gradient(
    y_hat: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean squared error and its gradient, 2 (ŷ - y) / n."""
    residual = y_hat - y
    return residual.square().mean(), residual.mul_(2 / residual.numel())


def absolute_loss_gradient(
    y_hat: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean absolute error and its gradient, sign(ŷ - y) / n (0 where ŷ = y, as autograd)."""
    residual = y_hat - y
    return residual.abs().mean(), residual.sign_().div_(residual.numel())


def huber_loss_gradient(
    y_hat: torch.Tensor, y: torch.Tensor, delta: float = HUBER_DELTA
) -> tuple[torch.Tensor, torch.Tensor]:
    """Huber loss and its gradient, (ŷ - y) clipped to ±``delta``, over n."""
    residual = y_hat - y
    loss = F.huber_loss(y_hat, y, delta=delta)
    return loss, residual.clamp_(-delta, delta).div_(residual.numel())


def cross_entropy_gradient(
    logits: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of the logits and its gradient, (softmax(logits) - one_hot(label)) / n."""
    labels = labels.long()
    log_probs = logits.log_softmax(dim=1)
    loss = F.nll_loss(log_probs, labels)
    gradient = log_probs.exp_()
    gradient[torch.arange(labels.shape[0], device=labels.device), labels] -= 1
    return loss, gradient.div_(labels.shape[0])


@dataclass(frozen=True)
class LossChoice:
    """One loss: the hand-written form, the library form, the loss with its gradient written
    out, and whether it scores regression."""

    hand_written: Loss
    library: Loss
    gradient: LossGradient
    regression: bool


LOSSES: dict[str, LossChoice] = {
    "mse": LossChoice(squared_loss, F.mse_loss, squared_loss_gradient, regression=True),
    "mae": LossChoice(absolute_loss, F.l1_loss, absolute_loss_gradient, regression=True),
    "huber": LossChoice(
        huber_loss,
        lambda y_hat, y: F.huber_loss(y_hat, y, delta=HUBER_DELTA),
        huber_loss_gradient,
        regression=True,
    ),
    "cross_entropy": LossChoice(
        cross_entropy, F.cross_entropy, cross_entropy_gradient, regression=False
    ),
}
"""The one list of losses: ``TrainConfig.loss`` and :func:`get_loss` both read it."""
REGRESSION_LOSSES = tuple(name for name, choice in LOSSES.items() if choice.regression)


def get_loss(name: str, *, scratch: bool = False) -> Loss:
    """The loss ``name``: hand-written when ``scratch``, else from ``torch.nn.functional``."""
    choice = _choice(name)
    return choice.hand_written if scratch else choice.library


def get_loss_gradient(name: str) -> LossGradient:
    """The loss ``name`` with its gradient with respect to the outputs (:data:`LossGradient`)."""
    return _choice(name).gradient


def _choice(name: str) -> LossChoice:
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}: expected one of {sorted(LOSSES)}") from None
