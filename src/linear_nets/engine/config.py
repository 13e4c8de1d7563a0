"""Typed training parameters, validated by Kedro before a run starts.

Each pipeline's ``params:<pipeline>.train`` and ``params:<pipeline>.model`` inputs are
annotated with these models, so a wrong value (``lr: -1``, ``epochs: 0``, an unknown
optimizer or a misspelt key) fails before any node runs, naming the field.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")

OptimizerName = Literal["manual_sgd", "sgd", "adam"]
LossName = Literal["mse", "mae", "huber", "cross_entropy"]
ModelKind = Literal["scratch", "linear"]
ScheduleName = Literal["constant", "cosine"]


class StrictModel(BaseModel):
    """A frozen parameter model that refuses unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainConfig(StrictModel):
    """How to fit a model: device, optimizer, learning rate, epochs, batching, loss, seed."""

    device: str = Field("auto", description="auto, cpu, cuda, cuda:N or mps")
    optimizer: OptimizerName = "sgd"
    lr: float = Field(gt=0, description="learning rate")
    epochs: int = Field(gt=0)
    batch_size: int | None = Field(None, gt=0, description="null trains on the full batch")
    loss: LossName = "mse"
    lr_schedule: ScheduleName = Field(
        "constant", description="constant, or cosine: decay from lr to 0 over all the steps"
    )
    seed: int = Field(0, ge=0)

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        value = value.strip().lower()
        if not _DEVICE_PATTERN.match(value):
            raise ValueError(f"unknown device {value!r}: expected auto, cpu, cuda, cuda:N or mps")
        return value


class ModelConfig(StrictModel):
    """Which implementation of the model to train."""

    kind: ModelKind = Field(
        "linear", description="scratch: hand-made tensors; linear: torch.nn modules"
    )
