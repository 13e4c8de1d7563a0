"""The registration gate and ``@champion`` promotion, on a real MLflow store."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from linear_nets.tracking import registry
from linear_nets.tracking.registry import (
    CHAMPION,
    Candidate,
    ClassifierRegistryConfig,
    RegistryConfig,
    classification_gate,
    promote_if_better,
    promote_run_model,
    promote_sweep,
    regression_gate,
)
from tests.support import mlflow_client, run_pipeline

MODEL = "boston_linear_regression"
OLS = 22.7763
FLAT = [30.0, 25.0, *([23.0] * 18)]  # converged: no change over the last 10 % of 20 epochs
MOVING = [30.0 - 0.1 * epoch for epoch in range(20)]


def _metrics(train_mse: float, test_rmse: float = 4.7) -> dict[str, float]:
    return {"train_mse": train_mse, "ols_train_mse": OLS, "test_rmse": test_rmse, "cv_rmse": 4.9}


def _gate(train_mse: float, loss: str = "mse", history=FLAT, **config) -> Candidate:
    return regression_gate(
        _metrics(train_mse), history, loss, RegistryConfig(**config), name="boston.registry"
    )


class TestGate:
    def test_mse_within_one_percent_of_the_optimum_is_registered(self):
        candidate = _gate(OLS * 1.005)
        assert candidate.refusal is None
        assert (candidate.metric, candidate.value, candidate.higher_is_better) == (
            "cv_rmse",  # cross-validated on the training rows: the test rows never choose
            4.9,
            False,
        )
        assert "0.500% above the least-squares optimum" in candidate.gate

    def test_mse_further_from_the_optimum_is_refused_naming_the_parameter(self):
        refusal = _gate(OLS * 1.02).refusal
        assert refusal is not None
        assert "2.000% above" in refusal
        assert "boston.registry.max_gap_to_ols" in refusal

    def test_the_limit_is_a_parameter(self):
        assert _gate(OLS * 1.02, max_gap_to_ols=0.05).refusal is None

    @pytest.mark.parametrize("loss", ["mae", "huber"])
    def test_a_robust_loss_that_stopped_moving_near_the_optimum_is_registered(self, loss):
        candidate = _gate(OLS * 1.16, loss=loss)
        assert candidate.refusal is None
        assert "train loss moved 0.000%" in candidate.gate

    def test_a_robust_loss_still_moving_is_refused(self):
        refusal = _gate(OLS * 1.16, loss="mae", history=MOVING).refusal
        assert "boston.registry.convergence.tolerance" in refusal

    def test_a_robust_loss_far_from_the_optimum_is_refused(self):
        refusal = _gate(OLS * 6, loss="huber").refusal
        assert "boston.registry.convergence.max_gap_to_ols" in refusal

    def test_a_classification_loss_is_never_registered(self):
        assert "no registration gate" in _gate(OLS, loss="cross_entropy").refusal

    def test_non_finite_metrics_are_refused(self):
        assert _gate(float("nan")).refusal == "a metric or the final train loss is not finite"

    def test_an_unknown_champion_metric_names_the_parameter(self):
        with pytest.raises(ValueError, match=r"boston\.registry\.champion_metric='test_r3'"):
            _gate(OLS, champion_metric="test_r3")

    def test_a_test_metric_without_test_rows_points_to_cv_rmse(self):
        metrics = {"train_mse": OLS, "ols_train_mse": OLS, "cv_rmse": 4.9}  # test_size 0
        config = RegistryConfig(champion_metric="test_rmse")
        with pytest.raises(ValueError, match=r"needs test rows.*split\.test_size is 0.*cv_rmse"):
            regression_gate(metrics, [OLS], "mse", config, name="boston.registry")

    def test_an_exact_solve_is_judged_on_its_gap_alone(self):
        candidate = regression_gate(
            _metrics(OLS), [OLS], "mse", RegistryConfig(), "tabular.registry", optimizer="lstsq"
        )
        assert candidate.refusal is None
        assert candidate.gate.startswith("exact least-squares solve (no epochs): train MSE")


@pytest.fixture
def store(tmp_path: Path, empty_mlflow_store: Path):
    """An empty MLflow store as the current tracking URI."""
    import shutil

    path = tmp_path / "mlflow.db"
    shutil.copy(empty_mlflow_store, path)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{path}")
    # an earlier Kedro run in this process left its experiment active: use one of this store's
    mlflow.set_experiment("registry")
    yield tmp_path
    mlflow.set_tracking_uri(previous)


def _register(test_rmse: float, sweep: str | None = None) -> tuple[str, str]:
    """A run with a registered version whose champion metric is ``test_rmse``."""
    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        mlflow.log_metric("test_rmse", test_rmse)
        if sweep:
            mlflow.set_tag("sweep", sweep)
    run_id = run.info.run_id
    try:
        client.get_registered_model(MODEL)
    except mlflow.exceptions.MlflowException:
        client.create_registered_model(MODEL)
    version = str(
        client.create_model_version(MODEL, f"runs:/{run_id}/model", run_id=run_id).version
    )
    registry.tag_version(MODEL, version, run_id, Candidate("test_rmse", test_rmse, False, "ok"))
    return run_id, version


def _champion() -> str:
    return str(mlflow.MlflowClient().get_model_version_by_alias(MODEL, CHAMPION).version)


def test_promotion_only_on_improvement(store: Path):
    run_id, first = _register(5.0)
    promote_run_model(run_id, MODEL, first)
    assert _champion() == first
    assert (
        "now @champion: the first champion"
        in mlflow.get_run(run_id).data.tags[registry.CHAMPION_TAG]
    )

    _, worse = _register(5.5)
    assert "did not become @champion: test_rmse 5.5 does not beat 5 of version 1" in (
        promote_if_better(MODEL, worse)
    )
    _, tie = _register(5.0)
    assert "did not become" in promote_if_better(MODEL, tie)
    assert _champion() == first

    _, better = _register(4.0)
    assert "is now @champion: test_rmse 4 beats 5 of version 1" in promote_if_better(MODEL, better)
    assert _champion() == better


def test_a_sweep_registers_without_promoting_then_promotes_its_best_once(store: Path):
    _, champion = _register(4.5)
    promote_if_better(MODEL, champion)
    swept = {}
    for rmse in (4.8, 4.2, 4.4):
        run_id, version = _register(rmse, sweep="s1")
        promote_run_model(run_id, MODEL, version)
        assert "part of sweep s1" in mlflow.get_run(run_id).data.tags[registry.CHAMPION_TAG]
        swept[rmse] = version
    assert _champion() == champion
    versions = mlflow.MlflowClient().search_model_versions("tags.sweep = 's1'")
    assert len(versions) == 3

    lines = promote_sweep("s1")
    assert len(lines) == 1
    assert f"best of 3 registered is version {swept[4.2]}" in lines[0]
    assert "is now @champion" in lines[0]
    assert _champion() == swept[4.2]

    assert "is already @champion" in promote_sweep("s1")[0]
    assert _champion() == swept[4.2]


def test_a_sweep_worse_than_the_champion_promotes_nothing(store: Path):
    _, champion = _register(4.0)
    promote_if_better(MODEL, champion)
    _register(4.3, sweep="s2")
    assert "did not become @champion" in promote_sweep("s2")[0]
    assert _champion() == champion
    assert "no run registered" in promote_sweep("nothing-here")[0]


@pytest.mark.slow
def test_kedro_runs_register_only_converged_models(
    kedro_project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("COLUMNS", "400")  # the summary table on one line per row
    client = mlflow_client(kedro_project)

    run_pipeline(kedro_project, "boston", params={"boston": {"train": {"epochs": 20}}})
    printed = capsys.readouterr().out
    assert "not registered" in printed
    assert "boston.registry.max_gap_to_ols" in printed
    assert client.search_model_versions(f"name='{MODEL}'") == []
    experiment = client.get_experiment_by_name("linear_nets.boston")
    (refused,) = client.search_runs([experiment.experiment_id])
    assert refused.info.status == "FINISHED"
    assert "train_mse" in refused.data.metrics
    assert refused.data.tags[registry.NOT_REGISTERED_TAG].startswith("not converged: train MSE")

    run_pipeline(kedro_project, "boston")
    printed = capsys.readouterr().out
    assert "version 1" in printed
    assert "version 1 is now @champion" in printed
    # the summary's "serve it" names the project's server, which verifies the files first
    assert f"python -m linear_nets.serving.server -m models:/{MODEL}@champion" in printed
    version = client.get_model_version_by_alias(MODEL, CHAMPION)
    assert str(version.version) == "1"
    assert version.tags[registry.METRIC_TAG] == "cv_rmse"
    assert float(version.tags[registry.VALUE_TAG]) == pytest.approx(
        client.get_run(version.run_id).data.metrics["cv_rmse"]
    )

    sweep = {"sweep": {"id": "s-test", "label": "epochs=600"}, "boston": {"train": {"epochs": 600}}}
    run_pipeline(kedro_project, "boston", params=sweep)
    assert "part of sweep s-test" in capsys.readouterr().out
    assert str(client.get_model_version_by_alias(MODEL, CHAMPION).version) == "1"
    (swept,) = client.search_model_versions("tags.sweep = 's-test'")
    assert str(swept.version) == "2"
    lines = promote_sweep("s-test", tracking_uri=f"sqlite:///{kedro_project / 'mlflow.db'}")
    assert len(lines) == 1
    assert "best of 1 registered is version 2" in lines[0]


class TestClassificationGate:
    CONFIG = ClassifierRegistryConfig(champion_metric="val_accuracy")

    def test_a_converged_accurate_classifier_is_registered(self):
        history = {"train_loss": [1.0, 0.6, 0.5, 0.45, 0.445], "val_accuracy": [0.7, 0.85]}
        candidate = classification_gate(history, self.CONFIG, "fashion_mnist.registry")
        assert candidate.refusal is None
        assert (candidate.metric, candidate.value, candidate.higher_is_better) == (
            "val_accuracy",
            0.85,
            True,
        )

    def test_a_moving_loss_is_refused(self):
        history = {"train_loss": [1.0, 0.8, 0.6, 0.5, 0.4], "val_accuracy": [0.85]}
        refusal = classification_gate(history, self.CONFIG, "fashion_mnist.registry").refusal
        assert "fashion_mnist.registry.convergence.tolerance" in refusal

    def test_a_single_epoch_cannot_show_convergence(self):
        history = {"train_loss": [0.5], "val_accuracy": [0.9]}
        refusal = classification_gate(history, self.CONFIG, "fashion_mnist.registry").refusal
        assert "a single epoch cannot show convergence" in refusal

    def test_an_inaccurate_classifier_is_refused(self):
        history = {"train_loss": [0.5, 0.5], "val_accuracy": [0.5]}
        refusal = classification_gate(history, self.CONFIG, "fashion_mnist.registry").refusal
        assert refusal == (
            "not accurate enough: val_accuracy 0.5000 is below 0.8 (fashion_mnist.registry"
            ".min_accuracy)"
        )


PROMOTE = """
import sys, time
import mlflow
from linear_nets.tracking.registry import promote_if_better
mlflow.set_tracking_uri(sys.argv[1])
start = float(sys.argv[3])
time.sleep(max(0.0, start - time.time()))  # every process promotes at the same instant
print(promote_if_better("boston_linear_regression", sys.argv[2]))
"""


@pytest.mark.slow  # eight Python processes importing MLflow
def test_processes_promoting_at_the_same_instant_leave_the_best_champion(store: Path):
    import subprocess
    import sys
    import time

    values = [5.0, 3.0, 4.0, 2.5, 6.0, 3.5, 2.75, 4.5]
    versions = [_register(value)[1] for value in values]
    uri = mlflow.get_tracking_uri()
    start = time.time() + 12  # after every process has imported MLflow
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", PROMOTE, uri, version, str(start)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for version in versions
    ]
    said = [process.communicate(timeout=120)[0] for process in processes]
    assert all(process.returncode == 0 for process in processes)
    assert _champion() == versions[values.index(min(values))]
    assert sum("the first champion" in line for line in said) == 1

def _selected(metric: str, metrics: dict[str, float], sweep_id: str | None = None) -> str:
    """A run logging ``metrics`` and its registered version, compared on ``metric``."""
    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        mlflow.log_metrics(metrics)
        if sweep_id:
            mlflow.set_tag("sweep", sweep_id)
    try:
        client.get_registered_model(MODEL)
    except mlflow.exceptions.MlflowException:
        client.create_registered_model(MODEL)
    version = str(
        client.create_model_version(MODEL, "runs:/x/model", run_id=run.info.run_id).version
    )
    candidate = Candidate(metric, metrics[metric], False, "ok")
    registry.tag_version(MODEL, version, run.info.run_id, candidate)
    return version


def test_a_cv_figure_is_never_compared_with_another_versions_test_figure(store):
    # a champion chosen on test_rmse before cv_rmse existed: its 3.0 is a test figure
    old = _selected("test_rmse", {"test_rmse": 3.0})
    assert "the first champion" in promote_if_better(MODEL, old)
    new = _selected("cv_rmse", {"cv_rmse": 4.0, "test_rmse": 3.5})
    outcome = promote_if_better(MODEL, new)
    assert f"version {old} has no cv_rmse" in outcome and "is now @champion" in outcome
    worse = _selected("cv_rmse", {"cv_rmse": 4.5, "test_rmse": 2.0})  # better test, worse cv
    assert "cv_rmse 4.5 does not beat 4 of version" in promote_if_better(MODEL, worse)


def test_a_sweep_promotes_its_best_cross_validated_version(store):
    _selected("cv_rmse", {"cv_rmse": 4.2, "test_rmse": 3.9}, sweep_id="s1")
    best = _selected("cv_rmse", {"cv_rmse": 4.1, "test_rmse": 4.4}, sweep_id="s1")
    [line] = promote_sweep("s1")
    assert f"best of 2 registered is version {best} (cv_rmse 4.1)" in line
    champion = mlflow.MlflowClient().get_model_version_by_alias(MODEL, CHAMPION)
    assert str(champion.version) == best  # chosen on cv_rmse although its test_rmse is the worse
