"""The fit loop: tutorial equivalence, history, convergence to least squares, divergence guard."""

from __future__ import annotations

import pytest
import torch

from linear_nets.engine import (
    TensorSource,
    TrainConfig,
    TrainingDivergedError,
    build_model,
    fit,
    least_squares,
    train,
)
from linear_nets.engine.metrics import accuracy

TRUE_W = torch.tensor([2.0, -3.4])
TRUE_B = 4.2


def _synthetic(n: int = 200, noise: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(n, 2, generator=generator)
    return X, X @ TRUE_W + TRUE_B + noise * torch.randn(n, generator=generator)


def _parameters(model: torch.nn.Module) -> torch.Tensor:
    w, b = model.coefficients()
    return torch.cat([w, b.reshape(1)])


@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
def test_scratch_manual_sgd_equals_linear_torch_sgd(loss: str) -> None:
    """Same initial values and batch order: the hand-written and the torch paths agree."""
    X, y = _synthetic()
    settings = {"lr": 0.03, "epochs": 3, "batch_size": 10, "loss": loss, "seed": 4}
    scratch = train("scratch", X, y, TrainConfig(optimizer="manual_sgd", **settings))
    linear = train("linear", X, y, TrainConfig(optimizer="sgd", **settings))
    torch.testing.assert_close(
        _parameters(scratch.model), _parameters(linear.model), rtol=0, atol=1e-5
    )
    torch.testing.assert_close(
        torch.tensor(scratch.history["train_loss"]), torch.tensor(linear.history["train_loss"])
    )
    assert linear.history["train_loss"][-1] < linear.history["train_loss"][0]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_softmax_written_out_gradient_equals_autograd(optimizer: str) -> None:
    """A ``linear`` softmax model steps with its gradient written out, a ``scratch`` one with
    autograd's: from the same initial values and batches they stay together, step by step."""
    generator = torch.Generator().manual_seed(3)
    X = torch.randn(120, 6, generator=generator)
    labels = torch.randint(0, 4, (120,), generator=generator)
    config = TrainConfig(
        optimizer=optimizer, lr=0.05, epochs=3, batch_size=16, loss="cross_entropy", seed=2
    )
    scratch = train("scratch", X, labels, config, n_classes=4)
    linear = train("linear", X, labels, config, n_classes=4)
    for ours, theirs in zip(linear.model.coefficients(), scratch.model.coefficients(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)
    torch.testing.assert_close(
        torch.tensor(linear.history["train_loss"]), torch.tensor(scratch.history["train_loss"])
    )


@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
def test_a_linear_model_trains_without_autograd_and_a_scratch_one_with_it(loss: str) -> None:
    """The written-out step builds no graph, so it runs with autograd switched off; the
    tutorials' scratch model needs autograd's backward pass."""
    X, y = _synthetic()
    config = TrainConfig(lr=0.03, epochs=3, batch_size=10, loss=loss, seed=4)
    with_graph = train("linear", X, y, config)
    with torch.no_grad():
        without = train("linear", X, y, config)
        with pytest.raises(RuntimeError, match="does not require grad"):
            train("scratch", X, y, config)
    assert torch.equal(_parameters(without.model), _parameters(with_graph.model))
    assert without.history == with_graph.history


def test_targets_shaped_unlike_the_outputs_are_refused_not_broadcast() -> None:
    X, y = _synthetic(n=20)
    with pytest.raises(ValueError, match=r"targets of shape \(5, 1\) do not match .* \(5,\)"):
        train("linear", X, y.unsqueeze(1), TrainConfig(lr=0.1, epochs=1, batch_size=5))


def test_a_frozen_layer_keeps_its_values_and_the_rest_still_trains() -> None:
    X, y = _synthetic()
    model = build_model("linear", 2, seed=1)
    model.affine().bias.requires_grad_(False)  # autograd's step: only the weight has a grad
    fit(model, TensorSource(X, y, 10), TrainConfig(optimizer="adam", lr=0.05, epochs=3))
    assert float(model.affine().bias) == 0.0
    assert model.affine().bias.grad is None
    assert model.affine().weight.grad is not None


def test_the_same_seed_reproduces_a_run_and_another_seed_does_not() -> None:
    X, y = _synthetic()
    config = TrainConfig(lr=0.03, epochs=1, batch_size=10, seed=1)
    one, two = train("linear", X, y, config), train("linear", X, y, config)
    other = train("linear", X, y, config.model_copy(update={"seed": 2}))
    assert torch.equal(_parameters(one.model), _parameters(two.model))
    assert not torch.equal(_parameters(one.model), _parameters(other.model))


def test_history_has_one_value_per_epoch_for_every_series() -> None:
    X, y = _synthetic()
    result = train(
        "linear",
        X[:150],
        y[:150],
        TrainConfig(lr=0.1, epochs=4, batch_size=32),
        val=(X[150:], y[150:]),
        metrics={"max_error": lambda out, t: (out - t).abs().max()},
    )
    assert set(result.history) == {"train_loss", "val_loss", "train_max_error", "val_max_error"}
    assert all(len(values) == 4 for values in result.history.values())
    assert result.history["train_loss"][-1] < result.history["train_loss"][0]
    assert result.device == torch.device("cpu")
    assert result.seconds > 0


def test_full_batch_gradient_descent_reaches_least_squares() -> None:
    X, y = _synthetic(noise=0.5)
    result = train("scratch", X, y, TrainConfig(optimizer="manual_sgd", lr=0.3, epochs=200))
    lstsq_w, lstsq_b = least_squares(X, y)
    w, b = result.model.coefficients()
    torch.testing.assert_close(w.double(), lstsq_w, rtol=0, atol=1e-4)
    assert float(b) == pytest.approx(float(lstsq_b), abs=1e-4)


def test_softmax_regression_learns_separable_classes() -> None:
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (300,), generator=generator)
    noise = torch.randn(300, 3, generator=generator)
    X = torch.nn.functional.one_hot(labels, 3).float() * 4 + noise
    for kind in ("scratch", "linear"):
        result = train(
            kind,
            X,
            labels,
            TrainConfig(lr=0.5, epochs=5, batch_size=30, loss="cross_entropy"),
            n_classes=3,
            metrics={"accuracy": accuracy},
        )
        assert result.history["train_accuracy"][-1] > 0.95


def test_on_epoch_sees_every_epoch_with_its_values_and_the_model() -> None:
    X, y = _synthetic(n=40)
    seen = []

    def record(epoch: int, model: torch.nn.Module, values: dict[str, float]) -> None:
        seen.append((epoch, float(model.coefficients()[1]), values))

    result = train("linear", X, y, TrainConfig(lr=0.1, epochs=3), on_epoch=record)
    assert [epoch for epoch, _, _ in seen] == [1, 2, 3]
    assert [values["train_loss"] for _, _, values in seen] == result.history["train_loss"]
    assert seen[-1][1] == float(result.model.coefficients()[1])
    assert len({b for _, b, _ in seen}) == 3  # the model as it stood after each epoch


def test_fit_leaves_the_global_torch_seed_alone() -> None:
    X, y = _synthetic(n=20)
    model = build_model("linear", 2)  # nn.Linear's own init draws from the global generator
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fit(model, TensorSource(X, y, 5, seed=9), TrainConfig(lr=0.1, epochs=2, batch_size=5, seed=9))
    assert torch.equal(torch.rand(3), expected)


def test_progress_shows_no_loss_before_the_first_epoch_ends() -> None:
    from linear_nets.engine.training import progress_bar

    with progress_bar("x", enabled=False) as progress:
        task_id = progress.add_task("x", total=2, loss="")
        (task,) = progress.tasks

        def shown() -> str:
            return " ".join(str(column.render(task)) for column in progress.columns)

        assert "loss" not in shown() and "nan" not in shown()
        progress.update(task_id, advance=1, loss="loss 0.5")
        assert "loss 0.5" in shown()


def test_exploding_loss_is_stopped_with_the_learning_rate_named() -> None:
    X, y = _synthetic()
    X = X * 100  # a step of lr 0.01 now overshoots by a factor of ~100
    config = TrainConfig(optimizer="manual_sgd", lr=0.01, epochs=20)
    with pytest.raises(TrainingDivergedError, match=r"my\.train\.lr=0\.01 \(manual_sgd\)"):
        train("scratch", X, y, config, name="my.train")


@pytest.mark.parametrize("optimizer", ["sgd", "lbfgs"])
def test_data_that_are_not_finite_are_named_not_blamed_on_the_learning_rate(
    optimizer: str,
) -> None:
    X, y = _synthetic(n=10)
    y[3] = float("nan")
    with pytest.raises(
        ValueError,
        match=r"^my\.train: the train loss is not finite because the"
        r" training data are not: row 3, the target: nan \(a missing value",
    ):
        train("linear", X, y, TrainConfig(optimizer=optimizer, lr=0.1, epochs=2), name="my.train")


def test_a_loss_that_overflows_on_finite_data_names_the_learning_rate() -> None:
    X, y = _synthetic(n=64)
    config = TrainConfig(optimizer="sgd", lr=1e30, epochs=3)
    with pytest.raises(TrainingDivergedError, match=r"is not finite\. The learning rate my\.train"):
        train("linear", X * 1e10, y, config, name="my.train")


def test_fit_trains_a_model_passed_in() -> None:
    X, y = _synthetic(n=50)
    model = torch.nn.Linear(2, 1)
    squeeze = torch.nn.Sequential(model, torch.nn.Flatten(0))
    fit(squeeze, TensorSource(X, y), TrainConfig(optimizer="adam", lr=0.1, epochs=300))
    torch.testing.assert_close(model.weight.detach().squeeze(0), TRUE_W, rtol=0, atol=0.05)


def test_cosine_schedule_decays_the_learning_rate_to_zero():
    from linear_nets.engine.optim import ManualSGD, cosine_lr, set_lr

    assert cosine_lr(0.1, 0, 10) == pytest.approx(0.1)
    assert cosine_lr(0.1, 5, 10) == pytest.approx(0.05)
    assert cosine_lr(0.1, 10, 10) == pytest.approx(0.0)
    sgd = ManualSGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    set_lr(sgd, 0.01)
    assert sgd.lr == 0.01


def test_cosine_schedule_changes_training_and_ends_with_small_steps():
    torch.manual_seed(0)
    X = torch.randn(64, 3)
    y = X @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
    constant = TrainConfig(device="cpu", optimizer="sgd", lr=0.1, epochs=5, batch_size=8)
    cosine = constant.model_copy(update={"lr_schedule": "cosine"})
    a = train("linear", X, y, constant)
    b = train("linear", X, y, cosine)
    assert a.history["train_loss"][0] != b.history["train_loss"][0]
    assert b.history["train_loss"][-1] < b.history["train_loss"][0]


@pytest.mark.slow  # torch.optim.LBFGS imports torch._dynamo: seconds
def test_lbfgs_fits_a_softmax_classifier_with_integer_labels() -> None:
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(300, 2, generator=generator)
    labels = (X[:, 0] + X[:, 1] > 0).long()
    config = TrainConfig(device="cpu", optimizer="lbfgs", lr=1, epochs=5, loss="cross_entropy")
    result = train(
        "linear", X, labels, config, n_classes=2, val=(X, labels), metrics={"accuracy": accuracy}
    )
    assert result.history["train_accuracy"][-1] > 0.97
    assert result.history["val_accuracy"] == result.history["train_accuracy"]
    assert result.history["train_loss"][-1] < result.history["train_loss"][0]


def test_lstsq_is_the_least_squares_solution_with_no_epochs() -> None:
    generator = torch.Generator().manual_seed(1)
    X = torch.randn(200, 3, generator=generator, dtype=torch.float64)
    y = (
        X @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
        + 3
        + 0.1 * torch.randn(200, generator=generator, dtype=torch.float64)
    )
    config = TrainConfig(device="cpu", optimizer="lstsq", lr=1, epochs=500)
    result = train("scratch", X, y, config)
    w, b = result.model.coefficients()
    expected_w, expected_b = least_squares(X, y)
    torch.testing.assert_close(w, expected_w, rtol=1e-12, atol=1e-12)
    assert float(b) == pytest.approx(float(expected_b), rel=1e-12)
    assert len(result.history["train_loss"]) == 1  # one solve, not 500 epochs
    with pytest.raises(ValueError, match="lstsq fits a linear regression only"):
        train("linear", X, (y > 0).long(), config.model_copy(update={"loss": "mse"}), n_classes=2)
