"""The synthetic pipeline through a real Kedro session, read back from MLflow."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from kedro.validation.exceptions import ParameterValidationError

from linear_nets.engine import build_model
from tests.support import mlflow_client, run_pipeline


def _only_run(project: Path):
    client = mlflow_client(project)
    experiment = client.get_experiment_by_name("linear_nets.synthetic")
    (run,) = client.search_runs([experiment.experiment_id])
    return client, run


@pytest.mark.parametrize("kind", ["scratch", "linear"])
def test_defaults_recover_the_true_parameters(kedro_project: Path, kind: str) -> None:
    run_pipeline(kedro_project, "synthetic", {"synthetic": {"model": {"kind": kind}}})

    client, run = _only_run(kedro_project)
    metrics = run.data.metrics
    assert metrics["w_max_abs_error"] <= 0.01
    assert metrics["b_abs_error"] <= 0.01
    assert run.data.params["synthetic.model.kind"] == kind
    assert run.data.params["synthetic.train.lr"] == "0.03"

    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [point.step for point in history] == [1, 2, 3]
    assert history[-1].value < history[0].value
    artifacts = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
    assert {"synthetic_fit.png", "synthetic_loss_curve.png"} <= artifacts

    (saved,) = (kedro_project / "data/06_models/synthetic_model.pt").glob("*/synthetic_model.pt")
    model = build_model(kind, 2)
    model.load_state_dict(torch.load(saved, weights_only=True))
    w, b = model.coefficients()
    torch.testing.assert_close(w, torch.tensor([2.0, -3.4]), rtol=0, atol=0.01)
    assert abs(float(b) - 4.2) <= 0.01


def test_a_bad_parameter_stops_the_run_before_any_node(kedro_project: Path) -> None:
    with pytest.raises(ParameterValidationError, match=r"(?s)synthetic.*train\.lr.*greater than 0"):
        run_pipeline(kedro_project, "synthetic", {"synthetic": {"train": {"lr": -1}}})
    assert not list((kedro_project / "data").glob("0[5-8]_*/synthetic_*"))
