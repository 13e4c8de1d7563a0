"""Start-up (issue #11): commands that need no pipeline import no heavy library, and no full
garbage collection runs while a command imports its libraries.

What a process imports is read from ``python -X importtime``; what the project's own modules
import is recorded too, since kedro-mlflow's CLI plugin imports MLflow (and through it pandas
and pyarrow, and ``mlflow.pyfunc``) for every ``kedro`` command, before the project loads.
Timings live in ``benchmarks/startup.py``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from linear_nets.startup import STARTUP_THRESHOLD
from tests.support import kedro_imports, run_bounded

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


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("--version",),
        ("run", "--help"),  # the project's commands
        ("sweep", "--help"),
        ("runs", "clean", "--help"),
    ],
)
def test_help_and_version_import_no_torch_matplotlib_or_pyarrow(
    kedro_project: Path, args: tuple[str, ...]
):
    imported, project_imports, output = kedro_imports(kedro_project, *args)

    assert "kedro" in output.lower()
    assert "linear_nets.hooks" in imported  # the project's settings (its hooks) did load
    assert not {"torch", "matplotlib", "torchvision"} & imported
    # pyarrow, pandas and MLflow come with kedro-mlflow's plugin; the project adds none of them
    assert heavy_names(project_imports, HEAVY) == []


@pytest.mark.slow
def test_registry_list_imports_no_matplotlib_torchvision_or_mlflow_flavours(kedro_project: Path):
    imported, project_imports, output = kedro_imports(kedro_project, "registry", "list")

    assert "boston" in output
    assert "torch" in imported  # loading the pipelines may import torch
    assert not {"matplotlib", "torchvision"} & imported
    # no MLflow at all from the project's modules, so none of its model flavours either
    assert heavy_names(project_imports, ("matplotlib", "torchvision", "mlflow")) == []


@pytest.mark.slow
def test_viz_build_imports_no_matplotlib_torchvision_or_project_mlflow(kedro_project: Path):
    # kedro-viz builds every dataset of the catalog, the figures' too
    imported, project_imports, output = kedro_imports(kedro_project, "viz", "build")

    assert "Success!" in output
    assert not {"matplotlib", "torchvision"} & imported
    assert heavy_names(project_imports, ("matplotlib", "torchvision", "mlflow")) == []


# Counts the collections of a `kedro` command per generation and phase (before the project's
# settings load, during its start-up, after), and at the end the thresholds, how many objects
# were frozen, and what Python's defaults are.
_COLLECTION_RECORDER = r"""
import atexit, gc, json, os, sys

defaults = gc.get_threshold()
counts = {phase: [0, 0, 0] for phase in ("before settings", "start-up", "after")}


def _record(phase, info):
    if phase == "start":
        startup = sys.modules.get("linear_nets.startup")
        now = ("before settings" if startup is None else
               "start-up" if startup.in_startup() else "after")
        counts[now][info["generation"]] += 1


gc.callbacks.append(_record)


@atexit.register
def _write() -> None:
    with open(os.environ["COLLECTIONS_OUT"], "w") as out:
        json.dump({"counts": counts, "threshold": gc.get_threshold(), "defaults": defaults,
                   "frozen": gc.get_freeze_count()}, out)


sys.argv = ["kedro", *sys.argv[1:]]
from kedro.framework.cli.cli import main

main()
"""


def test_settings_defer_collections_until_the_startup_ends():
    script = (
        "import gc, json; defaults = gc.get_threshold(); import linear_nets.settings; "
        "from linear_nets.startup import end_startup; during = gc.get_threshold(); "
        "end_startup(); end_startup(); "
        "print(json.dumps([defaults, during, gc.get_threshold(), gc.get_freeze_count()]))"
    )
    code, stdout, stderr = run_bounded([sys.executable, "-c", script], timeout_s=120)
    assert code == 0, stderr
    defaults, during, after, frozen = json.loads(stdout)

    assert during == [STARTUP_THRESHOLD, defaults[1], defaults[2]]
    assert after == defaults
    assert frozen > 10_000  # the modules imported so far are never scanned again


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [("run", "--pipeline=boston"), ("registry", "list")],  # the catalog / only the pipelines
)
def test_commands_barely_collect_during_their_startup(kedro_project: Path, args: tuple[str, ...]):
    out = kedro_project / "collections.json"
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "COLLECTIONS_OUT": str(out)}
    command = [sys.executable, "-c", _COLLECTION_RECORDER, *args]
    code, stdout, stderr = run_bounded(command, timeout_s=300, cwd=kedro_project, env=env)
    assert code == 0, (stdout + stderr)[-4000:]
    seen = json.loads(out.read_text())

    # with Python's thresholds throughout, a boston run makes 1 260 young, 114 middle and
    # eight full collections
    young, middle, full = seen["counts"]["start-up"]
    assert young <= 2
    assert full == 0
    assert seen["threshold"] == seen["defaults"]  # the start-up ended
    assert seen["frozen"] > 100_000  # kedro, MLflow, torch, the pipelines
