"""Each model kind builds, starts from the tutorials' initialisation and computes X w + b."""

from __future__ import annotations

import pytest
import torch

from linear_nets.engine import build_model
from linear_nets.engine.models import (
    INIT_STD,
    MODELS,
    LinearRegression,
    LinearRegressionScratch,
    SoftmaxRegression,
    SoftmaxRegressionScratch,
    model_from_state_dict,
)


@pytest.mark.parametrize(
    ("kind", "n_outputs", "cls"),
    [
        ("scratch", None, LinearRegressionScratch),
        ("linear", None, LinearRegression),
        ("scratch", 4, SoftmaxRegressionScratch),
        ("linear", 4, SoftmaxRegression),
    ],
)
def test_build_model_picks_the_class(kind: str, n_outputs: int | None, cls: type) -> None:
    assert type(build_model(kind, 3, n_outputs=n_outputs)) is cls


@pytest.mark.parametrize("kind", ["scratch", "linear"])
def test_regression_forward_is_x_w_plus_b(kind: str) -> None:
    model = build_model(kind, 3, seed=1)
    w, b = model.coefficients()
    X = torch.randn(5, 3)
    assert model(X).shape == (5,)
    torch.testing.assert_close(model(X), X @ w + b)


def test_regression_init_is_small_normal_weights_and_zero_bias() -> None:
    w, b = build_model("scratch", 10_000, seed=0).coefficients()
    assert float(b) == 0.0
    assert abs(float(w.std()) - INIT_STD) < 0.001
    assert abs(float(w.mean())) < 0.001


@pytest.mark.parametrize("n_outputs", [None, 3])
def test_scratch_and_linear_twins_start_identical(n_outputs: int | None) -> None:
    scratch = build_model("scratch", 6, n_outputs=n_outputs, seed=7)
    linear = build_model("linear", 6, n_outputs=n_outputs, seed=7)
    for ours, theirs in zip(scratch.coefficients(), linear.coefficients(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    X = torch.randn(4, 6)
    torch.testing.assert_close(scratch(X), linear(X))


def test_seed_changes_the_initial_weights() -> None:
    w0, _ = build_model("scratch", 5, seed=0).coefficients()
    w1, _ = build_model("scratch", 5, seed=1).coefficients()
    assert not torch.equal(w0, w1)


@pytest.mark.parametrize("kind", ["scratch", "linear"])
def test_softmax_flattens_images_into_logits(kind: str) -> None:
    model = build_model(kind, 4 * 4, n_outputs=10)
    images = torch.randn(8, 1, 4, 4)
    W, b = model.coefficients()
    assert W.shape == (16, 10) and b.shape == (10,)
    torch.testing.assert_close(model(images), images.reshape(8, -1) @ W + b)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown model kind 'mlp'"):
        build_model("mlp", 3)


@pytest.mark.parametrize(
    ("kind", "n_outputs"), [("scratch", None), ("linear", None), ("scratch", 4), ("linear", 4)]
)
def test_model_from_state_dict_rebuilds_every_kind(kind: str, n_outputs: int | None) -> None:
    trained = build_model(kind, 6, n_outputs=n_outputs, seed=3)
    rebuilt = model_from_state_dict(trained.state_dict())
    assert type(rebuilt) is type(trained) and not rebuilt.training
    X = torch.randn(5, 6)
    torch.testing.assert_close(rebuilt(X), trained(X))


def test_model_from_a_foreign_state_dict_is_refused() -> None:
    with pytest.raises(ValueError, match="not a linear regression state_dict nor a softmax"):
        model_from_state_dict({"layer.weight": torch.zeros(1, 2)})


def test_every_registered_model_is_accepted_and_built_and_no_other() -> None:
    from pydantic import ValidationError

    from linear_nets.engine.config import ModelConfig

    for kind in MODELS:
        assert ModelConfig(kind=kind).kind == kind
        model = build_model(kind, 3)
        assert model(torch.zeros(4, 3)).shape[0] == 4
    with pytest.raises(ValidationError, match="kind"):
        ModelConfig(kind="mlp")
