"""The one training engine shared by every pipeline.

Models, losses, optimizers, the sources of batches (tensors in memory, partitions on disk),
device resolution, the fit loop and the solvers (exact least squares, L-BFGS), data-parallel
training, the closed-form reference and the metrics all live here; pipelines import from this
package and never from each other.
"""

from linear_nets.engine.closed_form import (
    NonFiniteValueError,
    RankDeficientError,
    StreamedQR,
    factor_partitions,
    least_squares,
    streamed_least_squares,
)
from linear_nets.engine.config import (
    DistributedConfig,
    ModelConfig,
    StreamTrainConfig,
    TrainConfig,
)
from linear_nets.engine.devices import DeviceError, resolve_device
from linear_nets.engine.distributed import WorkerNodeFinished
from linear_nets.engine.fit import fit, fit_parallel, train
from linear_nets.engine.models import build_model, model_from_state_dict
from linear_nets.engine.sources import PartitionSource, Source, TensorSource
from linear_nets.engine.training import FitResult, TrainingDivergedError

__all__ = [
    "DeviceError",
    "DistributedConfig",
    "FitResult",
    "ModelConfig",
    "NonFiniteValueError",
    "PartitionSource",
    "RankDeficientError",
    "Source",
    "StreamTrainConfig",
    "StreamedQR",
    "TensorSource",
    "TrainConfig",
    "TrainingDivergedError",
    "WorkerNodeFinished",
    "build_model",
    "factor_partitions",
    "fit",
    "fit_parallel",
    "least_squares",
    "model_from_state_dict",
    "resolve_device",
    "streamed_least_squares",
    "train",
]
