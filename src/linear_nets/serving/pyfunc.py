"""What a models-from-code file needs from MLflow, and what a pipeline hands over to log one.

MLflow is imported only when a model is logged or loaded, never when this package is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from linear_nets.tracking.registry import Candidate

WEIGHTS = "weights"
"""Artifact key of the ``state_dict`` file (torch.save; loaded with ``weights_only=True``)."""
CONFIG = "config"
"""Artifact key of the JSON preprocessing (scaler, pixel transform)."""
MANIFEST = "manifest"
"""Artifact key of the sha256 of every file of the model, verified when it loads."""
MANIFEST_FILE = "manifest.json"
ARTIFACTS_FOLDER = "artifacts"
CODE_FOLDER = "code"


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


def model_signature(columns: Sequence[str], output_type: str) -> Any:
    """The signature a served model is logged with: its output column's type, no input types.

    The model checks its input rows itself (``features.check_features``: the columns it needs,
    each value an int or float, finite, within float32), vectorised. MLflow's schema check
    would either refuse int64 columns (``pd.read_csv`` makes them of RAD, TAX, CHAS) where the
    signature says double, or, for untyped columns, check each value in Python (1 370× the
    arithmetic on 100 000 rows); it would also turn numbers given as text into numbers. The
    input columns are shown by the input example logged with the model.

    Args:
        columns: the model's input columns (unused by MLflow; checked non-empty here).
        output_type: MLflow type of the single output column (``double``, ``long``).
    """
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, DataType, Schema

    if not list(columns):
        raise ValueError("a served model needs at least one input column")
    return ModelSignature(inputs=None, outputs=Schema([ColSpec(DataType[output_type])]))


def model_files(
    model_code: Path, artifacts: dict[str, str | Path], code_paths: Sequence[str | Path]
) -> dict[str, Path]:
    """Every file of a models-from-code model, by its path inside the logged model folder.

    ``mlflow.pyfunc.log_model`` copies the code file to the folder's top, each artifact to
    ``artifacts/`` and each code path to ``code/``; compiled caches (``__pycache__``) are
    left out: Python rewrites them.
    """
    files = {Path(model_code).name: Path(model_code)}
    for path in artifacts.values():
        files[f"{ARTIFACTS_FOLDER}/{Path(path).name}"] = Path(path)
    for code in map(Path, code_paths):
        inside = sorted(code.rglob("*")) if code.is_dir() else [code]
        for path in inside:
            if path.is_file() and "__pycache__" not in path.parts:
                relative = path.relative_to(code.parent).as_posix()
                files[f"{CODE_FOLDER}/{relative}"] = path
    return files


def write_manifest(files: dict[str, Path], target: Path) -> Path:
    """Write ``{"sha256": {path in the model: digest}}`` for ``files`` to ``target`` (JSON),
    the ``manifest`` artifact that loading the model verifies."""
    import json

    digests = {name: sha256(path) for name, path in sorted(files.items())}
    target.write_text(json.dumps({"sha256": digests}, indent=1) + "\n")
    return target


def verify_manifest(manifest: Path, root: Path) -> None:
    """Refuse a model folder whose files differ from the manifest written when it was logged.

    Raises:
        IntegrityError: naming the first changed or missing file.
    """
    import json

    recorded = json.loads(manifest.read_text())["sha256"]
    for name, digest in recorded.items():
        path = root / name
        if not path.is_file():
            raise IntegrityError(f"model file {name} is missing (listed in {MANIFEST_FILE})")
        if sha256(path) != digest:
            raise IntegrityError(
                f"model file {name} changed since the model was logged (its sha256 differs "
                f"from {MANIFEST_FILE}); refusing to load it"
            )


def sha256(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    import hashlib

    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


class IntegrityError(RuntimeError):
    """A model file differs from the manifest written when the model was logged."""


def model_arguments(package: PyfuncPackage, folder: Path) -> dict[str, Any]:
    """Write the package's files to ``folder`` and return the arguments that
    ``mlflow.pyfunc.log_model`` (or ``save_model``) takes to make a model of them: the code
    file, the ``weights``, ``config`` and ``manifest`` artifacts, this package as code, the
    signature and the input example."""
    import json

    import torch

    import linear_nets

    weights, config = folder / "weights.pt", folder / "config.json"
    torch.save(package.weights, weights)
    config.write_text(json.dumps(package.config, indent=2) + "\n")
    artifacts: dict[str, str] = {WEIGHTS: str(weights), CONFIG: str(config)}
    code_paths = [str(Path(linear_nets.__file__).parent)]
    files = model_files(package.model_code_path, artifacts, code_paths)
    artifacts[MANIFEST] = str(write_manifest(files, folder / MANIFEST_FILE))
    return {
        "python_model": str(package.model_code_path),
        "artifacts": artifacts,
        "code_paths": code_paths,
        "signature": model_signature(package.input_example.columns, package.output_type),
        "input_example": package.input_example,
    }


def save_model(package: PyfuncPackage, path: Path) -> Path:
    """Save ``package`` as a local MLflow model folder at ``path`` (no run, no registry), as
    it would be logged: ``mlflow.pyfunc.load_model(path)`` and ``mlflow models serve -m path``
    take it. Its environment is this one (no requirements are pinned)."""
    import tempfile

    import mlflow.pyfunc

    with tempfile.TemporaryDirectory() as tmp:
        arguments = model_arguments(package, Path(tmp))
        mlflow.pyfunc.save_model(str(path), pip_requirements=[], **arguments)
    return path
