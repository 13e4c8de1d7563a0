"""A model ready to publish, as plain files: what a run hands to MLflow after it succeeded.

A pipeline's packaging node returns a :class:`~linear_nets.serving.pyfunc.PyfuncPackage`
(weights, preprocessing, input example, the registration gate's verdict). This dataset writes it
to a versioned folder, ``<filepath>/<version>/<name>/``::

    weights.pt          the state_dict (tensors only; loaded with weights_only=True)
    config.json         the preprocessing (scaler, pixel transform)
    input_example.parquet  a few raw input rows, with their column types
    package.json        the models-from-code file, the output type, the gate's verdict, and
                        the registered model name

and nothing else: logging it, registering it and moving ``@champion`` happen once, after the
pipeline, in :mod:`linear_nets.tracking.publish`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kedro.io import DatasetError, Version

from linear_nets.datasets.local_versioned import LocalVersionedDataset
from linear_nets.serving.pyfunc import PyfuncPackage

WEIGHTS_FILE = "weights.pt"
CONFIG_FILE = "config.json"
EXAMPLE_FILE = "input_example.parquet"
PACKAGE_FILE = "package.json"


class PyfuncPackageDataset(LocalVersionedDataset[PyfuncPackage, PyfuncPackage]):
    """Save and load a :class:`PyfuncPackage` as a folder of plain files.

    Example catalog entry::

        boston.pyfunc_model:
          type: linear_nets.datasets.PyfuncPackageDataset
          filepath: data/06_models/boston_pyfunc
          registered_model_name: boston_linear_regression
          versioned: true
    """

    def __init__(
        self,
        *,
        filepath: str,
        registered_model_name: str,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(filepath=filepath, version=version, metadata=metadata)
        self.registered_model_name = registered_model_name

    def save(self, data: PyfuncPackage) -> None:
        import torch

        if not isinstance(data, PyfuncPackage):
            raise DatasetError(f"expected a PyfuncPackage, got {type(data).__name__}")
        target = Path(self._get_save_path())
        target.parent.mkdir(parents=True, exist_ok=True)
        # written whole or not at all: a half-written folder never carries the final name
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".partial-"))
        try:
            torch.save(data.weights, staging / WEIGHTS_FILE)
            (staging / CONFIG_FILE).write_text(json.dumps(data.config, indent=2) + "\n")
            data.input_example.to_parquet(staging / EXAMPLE_FILE, index=False)
            package = {
                "registered_model_name": self.registered_model_name,
                "model_code": data.model_code,
                "output_type": data.output_type,
                "candidate": asdict(data.candidate),
            }
            (staging / PACKAGE_FILE).write_text(json.dumps(package, indent=2) + "\n")
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def load(self) -> PyfuncPackage:
        import pandas as pd
        import torch

        from linear_nets.tracking.registry import Candidate

        folder = Path(self._get_load_path())
        package = json.loads((folder / PACKAGE_FILE).read_text())
        example = pd.read_parquet(folder / EXAMPLE_FILE)
        return PyfuncPackage(
            model_code=package["model_code"],
            weights=torch.load(folder / WEIGHTS_FILE, map_location="cpu", weights_only=True),
            config=json.loads((folder / CONFIG_FILE).read_text()),
            input_example=example,
            output_type=package["output_type"],
            candidate=Candidate(**package["candidate"]),
        )

    def _exists(self) -> bool:
        path = self._saved_path()
        return path is not None and (path / PACKAGE_FILE).is_file()

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": str(self._filepath),
            "registered_model_name": self.registered_model_name,
            "version": self._version,
        }
