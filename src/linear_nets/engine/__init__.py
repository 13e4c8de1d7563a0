"""The one training engine shared by every pipeline.

Models, losses, optimizers, batching, device resolution, the fit loop, the closed-form
reference and the metrics all live here; pipelines import from this package and never
from each other.
"""

from linear_nets.engine.batching import Batches
from linear_nets.engine.closed_form import least_squares
from linear_nets.engine.config import ModelConfig, TrainConfig
from linear_nets.engine.devices import DeviceError, resolve_device
from linear_nets.engine.fit import FitResult, TrainingDivergedError, fit, train
from linear_nets.engine.models import build_model

__all__ = [
    "Batches",
    "DeviceError",
    "FitResult",
    "ModelConfig",
    "TrainConfig",
    "TrainingDivergedError",
    "build_model",
    "fit",
    "least_squares",
    "resolve_device",
    "train",
]
