"""Runs started together: the store is created once, and each run reads only its own files.

Real ``kedro run`` processes, started at the same moment in one project copy.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.support import mlflow_client, run_pipeline, stop_group

KEDRO = Path(sys.executable).with_name("kedro")
RUN_TIMEOUT_S = 900  # several cold processes sharing two cores


def run_together(project: Path, logs: Path, commands: list[list[str]]) -> list[int]:
    """Start every ``kedro`` command at once in ``project``; return their exit codes."""
    logs.mkdir()
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1"}
    processes = []
    try:
        for number, command in enumerate(commands):
            with (logs / f"{number}.log").open("w") as out:
                processes.append(
                    subprocess.Popen(
                        [str(KEDRO), *command],
                        cwd=project,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        deadline = time.monotonic() + RUN_TIMEOUT_S
        for process in processes:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for process in processes:
            stop_group(process)
    return [process.returncode for process in processes]


def output_of(logs: Path, number: int) -> str:
    return (logs / f"{number}.log").read_text()[-4000:]


@pytest.mark.slow
def test_runs_started_together_on_a_fresh_clone_create_the_store_once(
    kedro_project: Path, tmp_path: Path
):
    (kedro_project / "mlflow.db").unlink()  # a fresh clone has no store yet
    count = 4
    commands = [["run", "--pipeline=landscape"]] * count
    codes = run_together(kedro_project, tmp_path / "logs", commands)
    for number, code in enumerate(codes):
        assert code == 0, output_of(tmp_path / "logs", number)

    client = mlflow_client(kedro_project)
    experiment = client.get_experiment_by_name("linear_nets.landscape")
    runs = client.search_runs([experiment.experiment_id])
    assert [run.info.status for run in runs] == ["FINISHED"] * count
    assert all(run.data.metrics["grid_best_w"] == pytest.approx(2.0) for run in runs)
    with contextlib.closing(sqlite3.connect(kedro_project / "mlflow.db")) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master")]
    assert not [name for name in tables if name.startswith("_alembic_tmp")]
    assert len(client.search_experiments()) == 2  # Default and linear_nets.landscape


@pytest.mark.slow
def test_concurrent_runs_each_read_and_log_only_their_own_data(kedro_project: Path, tmp_path: Path):
    seeds = [1, 2, 3]
    commands = [
        ["run", "--pipeline=boston", f"--params=boston.split.seed={seed},boston.train.epochs=50"]
        for seed in seeds
    ]
    codes = run_together(kedro_project, tmp_path / "logs", commands)
    for number, code in enumerate(codes):
        assert code == 0, output_of(tmp_path / "logs", number)
        assert "did not match load version" not in output_of(tmp_path / "logs", number)

    client = mlflow_client(kedro_project)
    experiment = client.get_experiment_by_name("linear_nets.boston")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(int(run.data.params["boston.split.seed"]) for run in runs) == seeds
    test_rows = set()
    for run in runs:
        assert run.info.status == "FINISHED"
        version = run.data.tags["kedro.save_version"]

        def own(relpath: str, version: str = version) -> Path:
            path = kedro_project / relpath
            return path / version / path.name

        # the run scored the test rows it split off itself, and logged what it computed
        split = pd.read_parquet(own("data/03_primary/boston_test.parquet"))
        predictions = pd.read_csv(own("data/07_model_output/boston_test_predictions.csv"))
        assert list(predictions["row"]) == list(split.index)
        metrics = json.loads(own("data/08_reporting/boston_metrics.json").read_text())
        assert run.data.metrics["test_mse"] == pytest.approx(metrics["test_mse"])
        test_rows.add(tuple(split.index))
    assert len(test_rows) == len(seeds)  # three seeds, three different test sets


@pytest.mark.slow
def test_runs_whose_sessions_start_in_the_same_millisecond_save_apart(
    kedro_project: Path, monkeypatch: pytest.MonkeyPatch
):
    # what two processes started together may get: Kedro's session id is the time in ms
    monkeypatch.setattr(
        "kedro.framework.session.session.generate_timestamp", lambda: "2026-11-23T19.33.46.907Z"
    )
    run_pipeline(kedro_project, "landscape")
    run_pipeline(kedro_project, "landscape")  # failed: "Save path ... must not exist"

    client = mlflow_client(kedro_project)
    experiment = client.get_experiment_by_name("linear_nets.landscape")
    runs = client.search_runs([experiment.experiment_id])
    versions = sorted(run.data.tags["kedro.save_version"] for run in runs)
    assert versions == ["2026-11-23T19.33.46.907Z", "2026-11-23T19.33.46.908Z"]
    assert [run.info.status for run in runs] == ["FINISHED"] * 2
    trace = kedro_project / "data/07_model_output/landscape_trace.parquet"
    assert sorted(path.name for path in trace.iterdir()) == versions
