"""Start-up: commands that need no pipeline import no heavy library (issue #11).

What a process imports is read from ``python -X importtime``; what the project's own modules
import is recorded too, since kedro-mlflow's CLI plugin imports MLflow (and through it pandas
and pyarrow, and ``mlflow.pyfunc``) for every ``kedro`` command, before the project loads.
Timings live in ``benchmarks/startup.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import kedro_imports

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "matplotlib", "torchvision", "pyarrow", "pandas", "mlflow")


def heavy_names(project_imports: dict[str, list[str]], roots: tuple[str, ...]) -> list[str]:
    """``importer: name`` for each name under ``roots`` that a project module imported."""
    return sorted(
        f"{importer}: {name}"
        for importer, names in project_imports.items()
        for name in names
        if name.split(".")[0] in roots
    )


@pytest.mark.parametrize("args", [("--help",), ("--version",)])
def test_help_and_version_import_no_torch_matplotlib_or_pyarrow(
    kedro_project: Path, args: tuple[str, ...]
):
    imported, project_imports, output = kedro_imports(kedro_project, *args)

    assert "kedro" in output.lower()
    assert "linear_nets.hooks" in imported  # the project's settings (its hooks) did load
    assert not {"torch", "matplotlib", "torchvision"} & imported
    # pyarrow, pandas and MLflow come with kedro-mlflow's plugin; the project adds none of them
    assert heavy_names(project_imports, HEAVY) == []


def test_registry_list_imports_no_matplotlib_torchvision_or_mlflow_flavours(kedro_project: Path):
    imported, project_imports, output = kedro_imports(kedro_project, "registry", "list")

    assert "boston" in output
    assert "torch" in imported  # loading the pipelines may import torch
    assert not {"matplotlib", "torchvision"} & imported
    # no MLflow at all from the project's modules, so none of its model flavours either
    assert heavy_names(project_imports, ("matplotlib", "torchvision", "mlflow")) == []
