"""Optimizers by name: the tutorials' hand-written SGD beside ``torch.optim``."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Protocol

import torch


class Optimizer(Protocol):
    """What the fit loop needs from an optimizer."""

    def zero_grad(self) -> None: ...

    def step(self) -> None: ...


class ManualSGD:
    """Minibatch SGD by hand: ``param -= lr * grad`` under ``no_grad``, then ``grad.zero_()``."""

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float) -> None:
        self.params = list(params)
        self.lr = lr

    def zero_grad(self) -> None:
        for param in self.params:
            if param.grad is not None:
                param.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        for param in self.params:
            if param.grad is not None:  # a frozen parameter stays put, as in torch.optim
                param -= self.lr * param.grad  # noqa: PLW2901 (in place, as the tutorials write it)


def set_lr(optimizer: Optimizer, lr: float) -> None:
    """Change the learning rate of a ``torch.optim`` optimizer or of :class:`ManualSGD`."""
    groups = getattr(optimizer, "param_groups", None)
    if groups is None:
        optimizer.lr = lr  # type: ignore[attr-defined]
        return
    for group in groups:
        group["lr"] = lr


def constant_lr(base_lr: float, step: int, total_steps: int) -> float:
    """The same learning rate at every step."""
    return base_lr


def cosine_lr(base_lr: float, step: int, total_steps: int) -> float:
    """Cosine decay from ``base_lr`` at step 0 towards 0 at ``total_steps``."""
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * step / total_steps))


Schedule = Callable[[float, int, int], float]

OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
    "manual_sgd": ManualSGD,
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
}
"""The one list of optimizers (``TrainConfig.optimizer`` reads its names); each is built as
``cls(params, lr=lr)``."""

SCHEDULES: dict[str, Schedule] = {"constant": constant_lr, "cosine": cosine_lr}
"""The one list of learning-rate schedules: ``fn(base_lr, step, total_steps) -> lr``."""


def _choice(table: dict, kind: str, name: str):
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown {kind} {name!r}: expected one of {sorted(table)}") from None


def build_optimizer(name: str, params: Iterable[torch.nn.Parameter], lr: float) -> Optimizer:
    """The optimizer ``name`` of :data:`OPTIMIZERS` over ``params``."""
    return _choice(OPTIMIZERS, "optimizer", name)(params, lr=lr)


def get_schedule(name: str) -> Schedule:
    """The learning-rate schedule ``name`` of :data:`SCHEDULES`."""
    return _choice(SCHEDULES, "schedule", name)
