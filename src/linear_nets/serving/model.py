"""The MLflow ``PythonModel`` a models-from-code file sets: verify, build, predict, refuse.

Imported only when MLflow loads a model (it imports MLflow and pandas at once).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel

from linear_nets.serving.features import FeatureError
from linear_nets.serving.pyfunc import CONFIG, MANIFEST, WEIGHTS, Predictor, verify_manifest

logger = logging.getLogger(__name__)


class InvalidRows(MlflowException):
    """Rows the model refuses: a 400 (``INVALID_PARAMETER_VALUE``) whose JSON is the short
    reason alone. MLflow's scoring server prefixes the message of an error raised by
    ``predict`` with a dump of the whole input table; the JSON it answers keeps the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, error_code=INVALID_PARAMETER_VALUE)
        self.reason = reason

    def serialize_as_json(self) -> str:
        return json.dumps({"error_code": self.error_code, "message": self.reason})


def python_model(predictor: type[Predictor]) -> PythonModel:
    """A ``PythonModel`` that serves ``predictor``, built from the logged artifacts."""

    class Model(PythonModel):
        def load_context(self, context: Any) -> None:
            import torch

            manifest = context.artifacts.get(MANIFEST)
            if manifest is None:  # logged before models carried one
                logger.warning("This model has no manifest: its files are not verified")
            else:
                # the model folder: MLflow keeps the artifacts in its `artifacts/` folder
                verify_manifest(Path(manifest), Path(manifest).parent.parent)
            config = json.loads(Path(context.artifacts[CONFIG]).read_text())
            # a state_dict file: tensors only, nothing unpickled
            weights = torch.load(context.artifacts[WEIGHTS], map_location="cpu", weights_only=True)
            self.predictor = predictor(config, weights)

        # the hint tells MLflow that the input is a DataFrame (no signature to infer from it)
        def predict(
            self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
        ) -> Any:
            try:
                return self.predictor.predict(model_input)
            except FeatureError as error:
                raise InvalidRows(str(error)) from None

    Model.__name__ = Model.__qualname__ = f"{predictor.__name__}Model"
    return Model()


def set_python_model(predictor: type[Predictor]) -> None:
    """Make the model MLflow loads from the calling models-from-code file: ``predictor`` built
    from the logged ``config`` and ``weights`` artifacts once the ``manifest`` verified them,
    its ``FeatureError`` answered as a 400 whose message is the error's text alone."""
    from mlflow.models import set_model

    set_model(python_model(predictor))
