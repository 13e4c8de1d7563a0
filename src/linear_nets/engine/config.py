"""Typed training parameters, validated by Kedro before a run starts.

Each pipeline's ``params:<pipeline>.train`` and ``params:<pipeline>.model`` inputs are
annotated with these models, so a wrong value (``lr: -1``, ``epochs: 0``, an unknown
optimizer or a misspelt key) fails before any node runs, naming the field. The names each
choice accepts come from the registry that builds it (``LOSSES``, ``OPTIMIZERS``,
``SCHEDULES``, ``MODELS``, ``DEVICES``; the optimizers are ``OPTIMIZERS`` and ``SOLVERS``),
so a choice is listed once.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from linear_nets.engine.devices import DEVICES, check_device_name
from linear_nets.engine.losses import LOSSES, REGRESSION_LOSSES
from linear_nets.engine.models import MODELS
from linear_nets.engine.optim import OPTIMIZERS, SCHEDULES
from linear_nets.engine.solvers import SOLVERS

OptimizerName = Literal[(*OPTIMIZERS, *SOLVERS)]
LossName = Literal[tuple(LOSSES)]
RegressionLossName = Literal[REGRESSION_LOSSES]
ModelKind = Literal[tuple(MODELS)]
ScheduleName = Literal[tuple(SCHEDULES)]


class StrictModel(BaseModel):
    """A frozen parameter model that refuses unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainConfig(StrictModel):
    """How to fit a model: device, optimizer, learning rate, epochs, batching, loss, seed.

    ``optimizer: lstsq`` solves least squares exactly (``lr``, ``epochs``, ``batch_size`` and
    ``lr_schedule`` play no part); ``lbfgs`` runs ``epochs`` L-BFGS steps of step size ``lr``
    on the full batch.
    """

    device: str = Field("auto", description=", ".join(DEVICES))
    optimizer: OptimizerName = "sgd"
    lr: float = Field(gt=0, description="learning rate (lbfgs: step scale, 1 is natural)")
    epochs: int = Field(gt=0, description="passes over the data (lbfgs: L-BFGS steps)")
    batch_size: int | None = Field(None, gt=0, description="null trains on the full batch")
    loss: LossName = "mse"
    lr_schedule: ScheduleName = Field(
        "constant", description="constant, or cosine: decay from lr to 0 over all the steps"
    )
    seed: int = Field(0, ge=0)

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        return check_device_name(value)

    @model_validator(mode="after")
    def _lstsq_is_least_squares(self) -> TrainConfig:
        if self.optimizer == "lstsq" and self.loss != "mse":
            raise ValueError(
                f"optimizer lstsq solves least squares, the mse loss, not {self.loss!r}: "
                "choose lbfgs or a gradient optimizer (sgd, adam) for it"
            )
        return self


class ModelConfig(StrictModel):
    """Which implementation of the model to train."""

    kind: ModelKind = Field(
        "linear", description="scratch: hand-made tensors; linear: torch.nn modules"
    )


class RegressionTrainConfig(TrainConfig):
    """A :class:`TrainConfig` for a regression pipeline: the loss must be a regression loss.

    A classification loss (``cross_entropy``) is refused when Kedro validates the parameters,
    before any node runs, instead of "succeeding" with a meaningless model.
    """

    loss: RegressionLossName = "mse"

    @field_validator("loss", mode="before")
    @classmethod
    def _regression_loss(cls, value: Any) -> Any:
        if value not in REGRESSION_LOSSES:
            raise ValueError(
                f"{value!r} is not a regression loss: "
                f"expected one of {', '.join(REGRESSION_LOSSES)}"
            )
        return value


class DistributedConfig(StrictModel):
    """Data-parallel training with torch.distributed (off unless ``enabled``).

    The fit runs as a DistributedDataParallel job started by PyTorch's elastic launcher (what
    ``torchrun`` runs): ``nproc_per_node`` processes on each of ``nnodes`` machines meet at
    ``rdzv_endpoint``; port 0 on one machine picks a free port.
    """

    enabled: bool = False
    nproc_per_node: int = Field(2, ge=1, description="processes per machine")
    nnodes: int = Field(1, ge=1, description="machines taking part")
    rdzv_endpoint: str = Field(
        "127.0.0.1:0",
        pattern=r"^[^\s:]+:\d{1,5}$",
        description="host:port of the rendezvous; the same on every machine",
    )
    rdzv_id: str = Field("linear-nets", min_length=1, description="names the job on the endpoint")
    rdzv_timeout_s: float = Field(300, gt=0, description="how long to wait for every machine")
    backend: Literal["auto", "gloo", "nccl"] = Field(
        "auto", description="auto: nccl when training on cuda, else gloo"
    )


class StreamTrainConfig(RegressionTrainConfig):
    """Training on partitions streamed from disk: a regression loss, the rows held in the
    shuffle buffer, and optional data-parallel training."""

    batch_size: int | None = Field(
        4096, gt=0, description="the global batch; null reads a whole share as one batch"
    )
    shuffle_buffer: int = Field(
        250_000, gt=0, description="rows shuffled together; bounds the memory"
    )
    distributed: DistributedConfig = DistributedConfig()

    @model_validator(mode="after")
    def _solvers_run_in_one_process(self) -> StreamTrainConfig:
        if self.distributed.enabled and self.optimizer in SOLVERS:
            raise ValueError(
                f"optimizer {self.optimizer} reads every partition in one process: set "
                "distributed.enabled to false (data-parallel training is for sgd and adam)"
            )
        return self
