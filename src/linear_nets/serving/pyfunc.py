"""What a models-from-code file needs from MLflow, and what a pipeline hands over to log one.

MLflow is imported only when a model is logged or loaded, never when this package is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from linear_nets.tracking.registry import Candidate

WEIGHTS = "weights"
"""Artifact key of the ``state_dict`` file (torch.save; loaded with ``weights_only=True``)."""
CONFIG = "config"
"""Artifact key of the JSON preprocessing (scaler, pixel transform)."""


@dataclass(frozen=True)
class PyfuncPackage:
    """One model to log from code, as a pipeline node hands it to ``MlflowPyfuncModelDataset``.

    Attributes:
        model_code: file name, in this package, of the models-from-code definition.
        weights: tensors saved as the ``weights`` artifact.
        config: JSON-able preprocessing saved as the ``config`` artifact.
        input_example: a few raw input rows, logged with the model; their columns are the
            model's input columns.
        output_type: MLflow type of the single output column (``double``, ``long``).
        candidate: the registration gate's verdict and the champion metric.
    """

    model_code: str
    weights: dict[str, Any]
    config: dict[str, Any]
    input_example: Any
    output_type: str
    candidate: Candidate

    @property
    def model_code_path(self) -> Path:
        return Path(__file__).with_name(self.model_code)


class Predictor(Protocol):
    """What a models-from-code file serves: built from the logged config (JSON) and weights
    (tensors), it predicts raw input rows, raising ``FeatureError`` (naming column and row) on
    a bad one."""

    def __init__(self, config: dict[str, Any], coefficients: dict[str, Any], /) -> None: ...

    def predict(self, rows: Any) -> Any: ...


def set_python_model(predictor: type[Predictor]) -> None:
    """Make the model MLflow loads from the calling models-from-code file: ``predictor`` built
    from the logged ``config`` and ``weights`` artifacts, its ``FeatureError`` answered as a
    400 with the error's text."""
    from mlflow.models import set_model
    from mlflow.pyfunc import PythonModel

    from linear_nets.serving.features import FeatureError

    class Model(PythonModel):
        def load_context(self, context: Any) -> None:
            import json

            import torch

            config = json.loads(Path(context.artifacts[CONFIG]).read_text())
            # a state_dict file: tensors only, nothing unpickled
            weights = torch.load(context.artifacts[WEIGHTS], map_location="cpu", weights_only=True)
            self.predictor = predictor(config, weights)

        # `model_input` carries no type hint on purpose: MLflow would try to infer a signature
        # from it (the logged one is explicit, with int-or-float columns) and warn that it cannot.
        def predict(self, context: Any, model_input, params: dict[str, Any] | None = None) -> Any:
            try:
                return self.predictor.predict(model_input)
            except FeatureError as error:
                raise invalid_input(error) from None

    Model.__name__ = Model.__qualname__ = f"{predictor.__name__}Model"
    set_model(Model())


def invalid_input(error: Exception) -> Exception:
    """``error`` as an MlflowException that the scoring server answers with a 400 whose JSON
    ``message`` is the error's text, with no stack trace."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    return MlflowException(str(error), error_code=INVALID_PARAMETER_VALUE)
