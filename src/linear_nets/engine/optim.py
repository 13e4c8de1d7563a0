"""Optimizers by name: the tutorials' hand-written SGD beside ``torch.optim``'s SGD and Adam."""

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


class _Functional:
    """``torch.optim``'s algorithm stepped through its functional form (``torch.optim.sgd.sgd``,
    ``torch.optim.adam.adam``): the kernels ``torch.optim.SGD`` / ``Adam`` call, with the same
    defaults, so the same numbers (``tests/engine/test_optim.py`` compares them step by step).

    Why not the classes: every method of a ``torch.optim.Optimizer`` (constructing it included)
    is wrapped by ``torch._disable_dynamo``, which imports ``torch._dynamo`` on first call. That
    import takes longer than ``import torch`` itself (about 3 s here) and would be paid by every
    run for a compiler this project never uses. As in ``torch.optim``, a parameter whose
    ``grad`` is None is left alone.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float) -> None:
        self.params = list(params)
        self.lr = lr

    def zero_grad(self) -> None:
        """Drop the gradients (``torch.optim``'s default ``set_to_none=True``)."""
        for param in self.params:
            param.grad = None

    def _with_grad(self) -> list[int]:
        return [i for i, param in enumerate(self.params) if param.grad is not None]


class FunctionalSGD(_Functional):
    """``torch.optim.SGD(params, lr)``: plain SGD, no momentum, no weight decay. Without
    momentum, the update ``torch.optim.sgd.sgd`` makes is ``param.add_(grad, alpha=-lr)``; made
    directly it costs 4 µs a step instead of 9 (the functional form first picks between its
    foreach and per-tensor kernels), a few percent of a minibatch step."""

    @torch.no_grad()
    def step(self) -> None:
        for param in self.params:
            if param.grad is not None:
                param.add_(param.grad, alpha=-self.lr)


class FunctionalAdam(_Functional):
    """``torch.optim.Adam(params, lr)``: betas (0.9, 0.999), eps 1e-8, no weight decay; the
    moments and the step count of a parameter start at its first gradient."""

    BETAS = (0.9, 0.999)
    EPS = 1e-8

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float) -> None:
        super().__init__(params, lr)
        self.state: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def _state(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if index not in self.state:
            param = self.params[index]
            scalar = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
            self.state[index] = (
                torch.zeros_like(param, memory_format=torch.preserve_format),
                torch.zeros_like(param, memory_format=torch.preserve_format),
                torch.tensor(0.0, dtype=scalar),
            )
        return self.state[index]

    @torch.no_grad()
    def step(self) -> None:
        from torch.optim.adam import adam

        indices = self._with_grad()
        params = [self.params[i] for i in indices]
        states = [self._state(i) for i in indices]
        adam(
            params,
            [param.grad for param in params],
            [state[0] for state in states],
            [state[1] for state in states],
            [],
            [state[2] for state in states],
            has_complex=any(torch.is_complex(param) for param in params),
            amsgrad=False,
            beta1=self.BETAS[0],
            beta2=self.BETAS[1],
            lr=self.lr,
            weight_decay=0.0,
            eps=self.EPS,
            maximize=False,
        )


def set_lr(optimizer: Optimizer, lr: float) -> None:
    """Change the learning rate of a ``torch.optim`` optimizer or of one of :data:`OPTIMIZERS`."""
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
    "sgd": FunctionalSGD,
    "adam": FunctionalAdam,
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
