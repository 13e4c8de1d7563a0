"""Every loss: hand-written equals the library version, and both give the textbook values."""

from __future__ import annotations

import pytest
import torch

from linear_nets.engine.losses import (
    LOSSES,
    REGRESSION_LOSSES,
    get_loss,
    get_loss_gradient,
    log_sum_exp,
)


def _regression_pair() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(50, generator=generator) * 3, torch.randn(50, generator=generator) * 3


@pytest.mark.parametrize("name", ["mse", "mae", "huber"])
def test_hand_written_regression_losses_match_torch(name: str) -> None:
    y_hat, y = _regression_pair()
    torch.testing.assert_close(get_loss(name, scratch=True)(y_hat, y), get_loss(name)(y_hat, y))


def test_hand_written_cross_entropy_matches_torch() -> None:
    logits = torch.randn(20, 5) * 4
    labels = torch.randint(0, 5, (20,))
    torch.testing.assert_close(
        get_loss("cross_entropy", scratch=True)(logits, labels),
        get_loss("cross_entropy")(logits, labels),
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [("mse", (1 + 4 + 0) / 3), ("mae", (1 + 2 + 0) / 3), ("huber", (0.5 + 1.5 + 0) / 3)],
)
@pytest.mark.parametrize("scratch", [True, False])
def test_regression_losses_by_hand(name: str, expected: float, scratch: bool) -> None:
    y_hat = torch.tensor([1.0, 4.0, 3.0])
    y = torch.tensor([0.0, 2.0, 3.0])
    assert float(get_loss(name, scratch=scratch)(y_hat, y)) == pytest.approx(expected)


def test_cross_entropy_of_uniform_logits_is_log_k() -> None:
    loss = get_loss("cross_entropy", scratch=True)(torch.zeros(3, 4), torch.tensor([0, 1, 3]))
    assert float(loss) == pytest.approx(torch.log(torch.tensor(4.0)).item())


def test_hand_written_cross_entropy_is_stable_for_huge_logits() -> None:
    logits = torch.tensor([[1000.0, 1000.0, -1000.0]])
    assert float(log_sum_exp(logits)) == pytest.approx(1000 + torch.log(torch.tensor(2.0)).item())
    loss = get_loss("cross_entropy", scratch=True)(logits, torch.tensor([2]))
    assert torch.isfinite(loss) and float(loss) == pytest.approx(2000 + 0.6931, rel=1e-4)


def test_hand_written_mse_gradient_is_the_textbook_one() -> None:
    y_hat = torch.tensor([1.0, 4.0, 3.0], requires_grad=True)
    y = torch.tensor([0.0, 2.0, 3.0])
    get_loss("mse", scratch=True)(y_hat, y).backward()
    torch.testing.assert_close(y_hat.grad, 2 * (y_hat.detach() - y) / 3)


@pytest.mark.parametrize("lookup", [get_loss, get_loss_gradient])
def test_unknown_loss_is_refused(lookup) -> None:
    with pytest.raises(ValueError, match=r"unknown loss 'hinge': expected one of \[.*'mse'"):
        lookup("hinge")


def test_every_registered_loss_is_accepted_and_computes_and_no_other() -> None:
    from pydantic import ValidationError

    from linear_nets.engine.config import RegressionTrainConfig, TrainConfig

    for name in LOSSES:
        assert TrainConfig(lr=0.1, epochs=1, loss=name).loss == name
    for name in REGRESSION_LOSSES:
        assert RegressionTrainConfig(lr=0.1, epochs=1, loss=name).loss == name
        value = get_loss(name)(torch.tensor([[1.0], [2.0]]), torch.tensor([[1.5], [2.0]]))
        assert value.ndim == 0 and value > 0
    with pytest.raises(ValidationError, match="loss"):
        TrainConfig(lr=0.1, epochs=1, loss="hinge")
    with pytest.raises(ValidationError, match="loss"):  # a classification loss for a regression
        RegressionTrainConfig(lr=0.1, epochs=1, loss="cross_entropy")


def _outputs_and_targets(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs and targets for ``name``, with the corner cases of its gradient among them:
    residuals of exactly 0 (``mae``'s sign) and of exactly ±delta (``huber``'s kink)."""
    if name == "cross_entropy":
        generator = torch.Generator().manual_seed(1)
        return torch.randn(30, 5, generator=generator) * 4, torch.randint(0, 5, (30,))
    y_hat, y = _regression_pair()
    y_hat[:3] = y[:3] + torch.tensor([0.0, 1.0, -1.0])
    return y_hat, y


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_each_loss_with_its_gradient_is_the_library_loss_and_autograds_gradient(
    name: str,
) -> None:
    y_hat, y = _outputs_and_targets(name)
    loss, gradient = get_loss_gradient(name)(y_hat.clone(), y)
    leaf = y_hat.clone().requires_grad_(True)
    expected = get_loss(name)(leaf, y)
    expected.backward()
    torch.testing.assert_close(loss, expected.detach())
    torch.testing.assert_close(gradient, leaf.grad)


def test_the_gradient_of_integer_labels_is_softmax_minus_one_hot() -> None:
    logits = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    _, gradient = get_loss_gradient("cross_entropy")(
        logits, torch.tensor([1, 0], dtype=torch.int32)
    )
    p = torch.sigmoid(torch.tensor(2.0)).item()
    expected = torch.tensor([[0.5, -0.5], [p - 1, 1 - p]]) / 2
    torch.testing.assert_close(gradient, expected)
