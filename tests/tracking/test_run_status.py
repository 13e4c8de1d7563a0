"""A run's MLflow status matches what happened to its process: real ``kedro run`` processes,
interrupted by real signals."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import mlflow
import pytest
from click.testing import CliRunner
from kedro.io import AbstractDataset

from linear_nets.datasets import MetricsDataset
from linear_nets.tracking.cli import runs
from linear_nets.tracking.hook import Terminated
from linear_nets.tracking.liveness import END_REASON_TAG, SAVE_VERSION_TAG, process_tags
from tests.support import mlflow_client, run_pipeline, stop_group

KEDRO = Path(sys.executable).with_name("kedro")
START_TIMEOUT_S = 300  # a cold `kedro run` imports torch and MLflow: slow on a shared machine
EXIT_TIMEOUT_S = 120
TRAINING = "Running node: train_synthetic_model"


def start_long_synthetic_run(project: Path, log: Path) -> subprocess.Popen:
    """``kedro run --pipeline=synthetic`` with enough epochs to be interrupted in training."""
    return start_run(project, log, "--pipeline=synthetic", "--params=synthetic.train.epochs=20000")


def start_run(project: Path, log: Path, *args: str) -> subprocess.Popen:
    """``kedro run *args`` in ``project``, its own process group, its output to ``log``."""
    with log.open("w") as out:
        return subprocess.Popen(
            [str(KEDRO), "run", *args],
            cwd=project,
            env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_until_training(process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while TRAINING not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_group(process)
            pytest.fail(f"the run never reached training:\n{log.read_text()[-4000:]}")
        time.sleep(0.5)
    time.sleep(2)  # well inside the training loop


def only_run(project: Path) -> Any:
    client = mlflow_client(project)
    experiment = client.get_experiment_by_name("linear_nets.synthetic")
    (run,) = client.search_runs([experiment.experiment_id])
    return run


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signals", "to_group"),
    [
        ([signal.SIGINT], False),
        ([signal.SIGTERM], False),
        # what a terminal, `timeout`, systemd or a CI runner does: the whole group, repeatedly
        ([signal.SIGTERM, signal.SIGTERM, signal.SIGINT], True),
    ],
    ids=["ctrl-c", "sigterm", "repeated-to-the-group"],
)
def test_an_interrupted_run_ends_killed_without_metrics(
    kedro_project: Path, tmp_path: Path, signals: list[signal.Signals], to_group: bool
):
    log = tmp_path / "run.log"
    process = start_long_synthetic_run(kedro_project, log)
    try:
        wait_until_training(process, log)
        for signum in signals:
            if to_group:
                os.killpg(process.pid, signum)
            else:
                os.kill(process.pid, signum)
            time.sleep(0.05)
        process.wait(timeout=EXIT_TIMEOUT_S)
    finally:
        stop_group(process)
    assert process.returncode != 0
    run = only_run(kedro_project)
    assert run.info.status == "KILLED", log.read_text()[-3000:]
    assert run.data.metrics == {}
    assert "interrupted" in run.data.tags[END_REASON_TAG]
    assert not (kedro_project / "data/08_reporting/synthetic_metrics.json").exists()


@pytest.mark.slow
def test_a_run_killed_outright_is_marked_killed_by_the_next_run(
    kedro_project: Path, tmp_path: Path
):
    log = tmp_path / "run.log"
    process = start_long_synthetic_run(kedro_project, log)
    try:
        wait_until_training(process, log)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=EXIT_TIMEOUT_S)
    finally:
        stop_group(process)
    assert only_run(kedro_project).info.status == "RUNNING"  # nobody could tell MLflow

    run_pipeline(kedro_project, "landscape")
    run = only_run(kedro_project)
    assert run.info.status == "KILLED"
    assert run.data.tags[END_REASON_TAG] == "its process was gone when a later run started"
    assert run.data.metrics == {}


def test_runs_clean_marks_runs_whose_process_is_gone(kedro_project: Path):
    finished = subprocess.Popen(["true"])
    finished.wait()
    client = mlflow_client(kedro_project)
    experiment = client.create_experiment("linear_nets.synthetic")
    dead = client.create_run(experiment, tags=process_tags(finished.pid)).info.run_id
    alive = client.create_run(experiment, tags=process_tags()).info.run_id

    result = CliRunner().invoke(runs, ["clean"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"KILLED {dead}" in result.output
    assert client.get_run(dead).info.status == "KILLED"
    assert client.get_run(alive).info.status == "RUNNING"  # this test's own process


class NeverWritten(AbstractDataset):
    """A coefficient table kept in memory whose catalog entry still promises a file to log,
    as a disk that lost it (or a publishing step that breaks half-way) would."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self.metadata = metadata
        self._data: Any = None

    def load(self) -> Any:
        return self._data

    def save(self, data: Any) -> None:
        self._data = data

    def _describe(self) -> dict[str, Any]:
        return {}


def replace_entry(project: Path, name: str, dataset: str, filepath: str, more: str = "") -> None:
    """Replace the catalog entry ``name`` with a dataset class of this module (conf/local
    overrides conf/base)."""
    (project / "conf/local/catalog.yml").write_text(
        f"{name}:\n  type: {__name__}.{dataset}\n  filepath: {filepath}\n{more}"
    )


@pytest.mark.slow
def test_a_failure_while_publishing_leaves_a_failed_run_and_nothing_else(kedro_project: Path):
    replace_entry(
        kedro_project, "boston.coefficients", "NeverWritten", "data/08_reporting/nowhere.csv",
        "  metadata:\n    mlflow: artifact\n",
    )  # fmt: skip
    with pytest.raises(Exception, match="nowhere.csv"):
        run_pipeline(kedro_project, "boston")
    client = mlflow_client(kedro_project)
    (run,) = client.search_runs([client.get_experiment_by_name("linear_nets.boston").experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.metrics == {}
    assert "publishing the run failed" in run.data.tags[END_REASON_TAG]
    assert client.search_model_versions("name = 'boston_linear_regression'") == []


class SignalledWhilePublished(MetricsDataset):
    """Metrics whose loading, when the run publishes them, gets the process a SIGTERM: as a
    terminal, ``timeout`` or CI runner would send while MLflow's client writes the store."""

    def load(self) -> Any:
        os.kill(os.getpid(), signal.SIGTERM)
        return super().load()


@pytest.mark.slow
def test_a_sigterm_while_publishing_waits_for_the_publication_then_stops(kedro_project: Path):
    replace_entry(
        kedro_project, "landscape_metrics", "SignalledWhilePublished",
        "data/08_reporting/landscape_metrics.json", "  versioned: true\n",
    )  # fmt: skip
    with pytest.raises(Terminated, match="SIGTERM"):
        run_pipeline(kedro_project, "landscape")
    client = mlflow_client(kedro_project)
    experiment = client.get_experiment_by_name("linear_nets.landscape")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"  # complete: nothing half-written, nothing undone
    assert run.data.metrics["grid_best_w"] == pytest.approx(2.0)


def test_runs_clean_removes_what_a_dead_run_registered_and_repairs_the_champion(
    kedro_project: Path,
):
    """SIGKILL between registering and ending: the dead run's version must not stay served."""
    from linear_nets.tracking import registry
    from linear_nets.tracking.registry import CHAMPION, Candidate

    finished = subprocess.Popen(["true"])  # a process that is gone: the killed run's owner
    finished.wait()
    client = mlflow_client(kedro_project)
    experiment = client.create_experiment("linear_nets.boston")
    client.create_registered_model("m")
    mlflow.set_tracking_uri(f"sqlite:///{kedro_project / 'mlflow.db'}")  # restored by the fixture
    versions = {}
    dead_version = "2026-12-06T22.00.00.000Z"
    dead_tags = process_tags(finished.pid) | {SAVE_VERSION_TAG: dead_version}
    owners = (("good", process_tags(), 4.0), ("dead", dead_tags, 3.0))
    for name, tags, value in owners:
        run_id = client.create_run(experiment, tags=tags).info.run_id
        created = client.create_model_version("m", f"runs:/{run_id}/model", run_id=run_id)
        version = str(created.version)
        registry.tag_version("m", version, run_id, Candidate("cv_rmse", value, False, "ok"))
        versions[name] = (run_id, version)
    client.set_terminated(versions["good"][0], "FINISHED")
    client.set_registered_model_alias("m", CHAMPION, versions["dead"][1])  # the dead run won
    # what the kill may have left half-written: a logged model and a versioned file
    model = client.create_logged_model(experiment, source_run_id=versions["dead"][0])
    table = kedro_project / "data/02_intermediate/boston_table.parquet"
    (table / dead_version).mkdir(parents=True)
    (table / dead_version / "boston_table.parquet").write_bytes(b"PAR1 cut short")
    (table / "2026-12-06T21.00.00.000Z").mkdir()  # another run's version stays

    result = CliRunner().invoke(runs, ["clean"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"KILLED {versions['dead'][0]}" in result.output
    assert f"deleted m version {versions['dead'][1]}" in result.output
    assert f"m version {versions['good'][1]} is @champion again" in result.output
    assert [str(v.version) for v in client.search_model_versions("name = 'm'")] == [
        versions["good"][1]
    ]
    assert str(client.get_model_version_by_alias("m", CHAMPION).version) == versions["good"][1]
    assert f"deleted logged model {model.model_id}" in result.output
    assert model.model_id not in [m.model_id for m in client.search_logged_models([experiment])]
    assert f"removed data/02_intermediate/boston_table.parquet/{dead_version}" in result.output
    assert [p.name for p in table.iterdir()] == ["2026-12-06T21.00.00.000Z"]


SIGNALLED_EXIT_S = 30


@pytest.mark.slow
def test_sigterm_right_after_registration_with_runs_sharing_the_store(
    kedro_project: Path, tmp_path: Path
):
    """Issue 23: SIGTERM to every run just as the first registers (runs sharing one SQLite
    store) once took 85 s, printed ~1300 "database is locked" and left a READY version of a
    RUNNING run."""
    from linear_nets.tracking.registry import CHAMPION

    client = mlflow_client(kedro_project)
    logs = [tmp_path / f"run-{seed}.log" for seed in range(5)]
    processes = [  # different splits: different models (an identical one is not registered)
        start_run(kedro_project, log, "--pipeline=boston", "--params=" + ",".join(
            [f"boston.split.seed={seed}", "boston.train.optimizer=lstsq"]
        ))
        for seed, log in enumerate(logs)
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not client.search_model_versions("name = 'boston_linear_regression'"):
            if time.monotonic() > deadline or all(p.poll() is not None for p in processes):
                pytest.fail(f"no run registered a version:\n{logs[0].read_text()[-3000:]}")
            time.sleep(0.1)
        signalled = time.monotonic()
        for process in processes:
            with contextlib.suppress(ProcessLookupError):  # a run that already ended
                os.killpg(process.pid, signal.SIGTERM)
        took: list[float | None] = [None] * len(processes)
        while None in took and time.monotonic() < signalled + SIGNALLED_EXIT_S:
            for number, process in enumerate(processes):
                if took[number] is None and process.poll() is not None:
                    took[number] = time.monotonic() - signalled
            time.sleep(0.05)
    finally:
        for process in processes:
            stop_group(process)
    outputs = [log.read_text() for log in logs]
    assert None not in took, f"exit after SIGTERM (s): {took}"
    for output in outputs:
        assert "database is locked" not in output, output[-3000:]
        assert "Traceback" not in output, output[-3000:]

    experiment = client.get_experiment_by_name("linear_nets.boston")
    runs = client.search_runs([experiment.experiment_id])
    assert 1 <= len(runs) <= len(processes)  # a process still starting has no run yet
    statuses = {run.info.run_id: run.info.status for run in runs}
    assert "RUNNING" not in statuses.values(), statuses
    for run in runs:
        versions = client.search_model_versions(f"run_id = '{run.info.run_id}'")
        if run.info.status == "FINISHED":
            assert run.data.metrics
        else:
            assert run.data.metrics == {}, run.info.status
            assert versions == [], run.info.status
    with contextlib.suppress(mlflow.exceptions.MlflowException):  # no champion is fine
        champion = client.get_model_version_by_alias("boston_linear_regression", CHAMPION)
        assert statuses[champion.run_id] == "FINISHED"
    print(f"exits after SIGTERM (s): {[round(t, 1) for t in took]}; statuses: {statuses}")
