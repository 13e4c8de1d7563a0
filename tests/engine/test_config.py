"""Typed training parameters refuse bad values up front, naming the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from linear_nets.engine import ModelConfig, TrainConfig
from linear_nets.engine.config import RegressionTrainConfig


def test_defaults() -> None:
    config = TrainConfig(lr=0.1, epochs=2)
    assert (config.device, config.optimizer, config.loss, config.batch_size, config.seed) == (
        "auto",
        "sgd",
        "mse",
        None,
        0,
    )
    assert ModelConfig().kind == "linear"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lr": 0}, "lr"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"loss": "hinge"}, "loss"),
        ({"device": "gpu"}, "device"),
        ({"seed": -1}, "seed"),
        ({"learning_rate": 0.1}, "learning_rate"),
    ],
)
def test_bad_values_name_the_field(change: dict, field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        TrainConfig(**({"lr": 0.1, "epochs": 2} | change))


def test_device_is_normalised() -> None:
    assert TrainConfig(lr=0.1, epochs=1, device=" CUDA:1 ").device == "cuda:1"


def test_unknown_model_kind_is_refused() -> None:
    with pytest.raises(ValidationError, match="kind"):
        ModelConfig(kind="mlp")


@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
def test_regression_config_takes_every_regression_loss(loss: str) -> None:
    assert RegressionTrainConfig(lr=0.1, epochs=1, loss=loss).loss == loss


def test_regression_config_refuses_a_classification_loss_naming_the_field() -> None:
    with pytest.raises(ValidationError, match=r"loss\n.*'cross_entropy' is not a regression loss"):
        RegressionTrainConfig(lr=0.1, epochs=1, loss="cross_entropy")
    assert isinstance(RegressionTrainConfig(lr=0.1, epochs=1), TrainConfig)
