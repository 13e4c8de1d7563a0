"""Each optimizer: the hand-written SGD step, torch.optim's SGD and Adam through their
functional form, and that every one of them lowers a loss."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from linear_nets.engine.optim import ManualSGD, build_optimizer, set_lr


def test_manual_sgd_steps_against_the_gradient_and_zeroes_it() -> None:
    param = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = build_optimizer("manual_sgd", [param], lr=0.1)
    assert isinstance(optimizer, ManualSGD)
    (param**2).sum().backward()  # gradient 2 * param = [2, -4]
    optimizer.step()
    torch.testing.assert_close(param.detach(), torch.tensor([0.8, -1.6]))
    optimizer.zero_grad()
    torch.testing.assert_close(param.grad, torch.zeros(2))


def test_manual_sgd_leaves_a_frozen_parameter_alone() -> None:
    trained = torch.nn.Parameter(torch.tensor([1.0]))
    frozen = torch.nn.Parameter(torch.tensor([5.0]), requires_grad=False)
    optimizer = build_optimizer("manual_sgd", [trained, frozen], lr=0.5)
    (trained * frozen).sum().backward()
    optimizer.step()
    optimizer.zero_grad()
    assert float(trained.detach()) == pytest.approx(1.0 - 0.5 * 5.0)
    assert float(frozen) == 5.0


def test_manual_sgd_matches_torch_sgd_step() -> None:
    ours = torch.nn.Parameter(torch.tensor([0.3, 0.7]))
    theirs = torch.nn.Parameter(ours.detach().clone())
    steps = [
        (build_optimizer("manual_sgd", [ours], 0.05), ours),
        (build_optimizer("sgd", [theirs], 0.05), theirs),
    ]
    for _ in range(5):
        for optimizer, param in steps:
            optimizer.zero_grad()
            ((param - torch.tensor([2.0, -1.0])) ** 2).sum().backward()
            optimizer.step()
    torch.testing.assert_close(ours.detach(), theirs.detach())


@pytest.mark.parametrize("name", ["manual_sgd", "sgd", "adam"])
def test_every_optimizer_lowers_a_quadratic(name: str) -> None:
    param = torch.nn.Parameter(torch.tensor([3.0, -3.0]))
    optimizer = build_optimizer(name, [param], lr=0.1)
    start = float((param.detach() ** 2).sum())
    for _ in range(20):
        optimizer.zero_grad()
        (param**2).sum().backward()
        optimizer.step()
    assert float((param.detach() ** 2).sum()) < 0.5 * start


def test_unknown_optimizer_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        build_optimizer("rmsprop", [torch.nn.Parameter(torch.zeros(1))], lr=0.1)


def test_every_registered_optimizer_and_schedule_is_accepted_and_works_and_no_other() -> None:
    from pydantic import ValidationError

    from linear_nets.engine.config import TrainConfig
    from linear_nets.engine.optim import OPTIMIZERS, SCHEDULES, get_schedule
    from linear_nets.engine.solvers import SOLVERS

    for name in OPTIMIZERS:
        assert TrainConfig(lr=0.1, epochs=1, optimizer=name).optimizer == name
        weight = torch.nn.Parameter(torch.ones(1))
        weight.grad = torch.ones(1)
        build_optimizer(name, [weight], lr=0.1).step()
        assert float(weight.detach()) < 1.0  # one step down the gradient
    for name in SOLVERS:
        assert TrainConfig(lr=0.1, epochs=1, optimizer=name).optimizer == name
    for name in SCHEDULES:
        assert 0 < get_schedule(name)(0.1, 0, 10) <= 0.1
    with pytest.raises(ValidationError, match="optimizer"):
        TrainConfig(lr=0.1, epochs=1, optimizer="rmsprop")
    with pytest.raises(ValueError, match="unknown schedule 'step'"):
        get_schedule("step")


@pytest.mark.parametrize(
    ("name", "reference"), [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam)]
)
def test_functional_optimizers_step_exactly_as_torch_optim(name: str, reference) -> None:
    torch.manual_seed(0)
    start = [torch.randn(3, 4), torch.randn(3), torch.randn(2)]  # the last one gets no gradient
    ours = [torch.nn.Parameter(t.clone()) for t in start]
    theirs = [torch.nn.Parameter(t.clone()) for t in start]
    optimizers = [build_optimizer(name, ours, 0.05), reference(theirs, lr=0.05)]
    X, y = torch.randn(16, 4), torch.randn(16, 3)
    for step in range(6):
        for optimizer, (w, b, _unused) in zip(optimizers, (ours, theirs), strict=True):
            set_lr(optimizer, 0.05 / (1 + step))  # as the schedules do, between steps
            optimizer.zero_grad()
            ((X @ w.T + b - y) ** 2).mean().backward()
            optimizer.step()
        for mine, torchs in zip(ours, theirs, strict=True):
            assert torch.equal(mine, torchs)  # bit for bit: the same kernels in the same order
    assert torch.equal(ours[2], start[2])


def test_training_does_not_import_torch_dynamo() -> None:
    """torch.optim's classes import torch._dynamo (about 3 s per process, issue #11)."""
    code = (
        "import sys, torch\n"
        "from linear_nets.engine import TrainConfig, train\n"
        "X = torch.randn(64, 3); y = X.sum(1)\n"
        "for name in ('sgd', 'adam', 'manual_sgd'):\n"
        "    train('linear', X, y, TrainConfig(device='cpu', optimizer=name, lr=0.1, epochs=3))\n"
        "assert 'torch._dynamo' not in sys.modules, 'torch._dynamo was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
