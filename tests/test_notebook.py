"""notebooks/walkthrough.ipynb runs against the outputs the pipelines write, so it never rots."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.support import ROOT, run_pipeline

NOTEBOOK = ROOT / "notebooks" / "walkthrough.ipynb"


def test_the_notebook_is_committed_without_outputs():
    notebook = json.loads(NOTEBOOK.read_text())
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert code
    assert all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)


@pytest.mark.slow
def test_the_walkthrough_trains_what_it_lacks_and_runs(kedro_project: Path):
    """In a project where only a scratch synthetic run and an unconverged boston run exist, the
    notebook trains the linear synthetic run, boston with its defaults and landscape, saying
    why, then every lesson holds."""
    run_pipeline(kedro_project, "synthetic", {"synthetic": {"model": {"kind": "scratch"}}})
    run_pipeline(kedro_project, "boston", {"boston": {"train": {"epochs": 5}}})
    folder = kedro_project / "notebooks"
    folder.mkdir()
    shutil.copy(NOTEBOOK, folder / NOTEBOOK.name)

    notebook = nbformat.read(folder / NOTEBOOK.name, as_version=4)
    # Executes every cell in a fresh kernel; a failing cell (the lessons assert) fails the test.
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()

    outputs = "".join(
        str(output.get("text", "")) for cell in notebook.cells for output in cell.get("outputs", [])
    )
    assert "No finished synthetic run with model.kind=linear in MLflow yet." in outputs
    trained = "training: kedro run --pipeline=synthetic --params synthetic.model.kind=linear"
    assert trained in outputs
    assert "model.kind=scratch" not in outputs  # that one was there and good
    assert "The latest boston run ended" in outputs and "it did not converge" in outputs
    assert "No landscape run yet." in outputs
    assert "grid minimum at w = 2.00; gradient descent ends at w = " in outputs
    assert "train MSE above the OLS optimum by" in outputs
