"""`bin/tracking-server`: PostgreSQL + `mlflow server`, and a boston run tracked through it."""

from __future__ import annotations

import glob
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from tests.support import LOOPBACK, free_port, run_bounded

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bin" / "tracking-server"
HAS_POSTGRES = bool(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or bool(
    shutil.which("initdb") and shutil.which("pg_ctl")
)
# PostgreSQL, MLflow's schema (tens of migrations) and the server's start take minutes on a
# loaded 2-core machine.
START_TIMEOUT_S = 900
RUN_TIMEOUT_S = 900

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not HAS_POSTGRES,
        reason="PostgreSQL binaries (initdb, pg_ctl) are absent: apt-get install -y postgresql",
    ),
]


@pytest.fixture
def server_dir() -> Iterator[Path]:
    """A data folder the `postgres` user can reach (pytest's own tmp folders are 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="tracking-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder / "data"
    shutil.rmtree(folder, ignore_errors=True)


def tracking_server(*args: str, env: dict[str, str], timeout_s: float) -> tuple[int, str]:
    code, stdout, stderr = run_bounded([str(SCRIPT), *args], timeout_s=timeout_s, cwd=ROOT, env=env)
    return code, stdout + stderr


def test_boston_runs_against_the_postgres_backed_server(kedro_project: Path, server_dir: Path):
    port = free_port()
    env = {
        **os.environ,
        "KEDRO_DISABLE_TELEMETRY": "true",
        "TRACKING_SERVER_PORT": str(port),  # read by bin/tracking-server and conf/team
        "TRACKING_SERVER_START_TIMEOUT_S": str(START_TIMEOUT_S - 60),
    }
    where = ["--data-dir", str(server_dir)]
    try:
        code, output = tracking_server(
            "start", *where, "--workers", "1", env=env, timeout_s=START_TIMEOUT_S
        )
        assert code == 0, output
        assert f"http://{LOOPBACK}:{port}" in output
        code, output = tracking_server("status", *where, env=env, timeout_s=60)
        assert code == 0, output
        assert f"mlflow server: running at http://{LOOPBACK}:{port}" in output
        assert "PostgreSQL: running" in output

        kedro = Path(sys.executable).with_name("kedro")
        code, stdout, stderr = run_bounded(
            [str(kedro), "run", "--pipeline=boston", "--env=team"]
            + ["--params", "boston.train.epochs=400"],  # enough to pass the registration gate
            timeout_s=RUN_TIMEOUT_S,
            cwd=kedro_project,
            env=env,
        )
        assert code == 0, (stdout + stderr)[-4000:]

        client = mlflow.MlflowClient(tracking_uri=f"http://{LOOPBACK}:{port}")
        experiment = client.get_experiment_by_name("linear_nets.boston")
        (run,) = client.search_runs([experiment.experiment_id])
        assert run.info.status == "FINISHED"
        assert run.data.params["boston.train.epochs"] == "400"
        assert {"train_mse", "test_mse", "test_r2"} <= set(run.data.metrics)
        assert len(client.get_metric_history(run.info.run_id, "train_loss")) == 400
        # artifacts go through the server into its own folder, not the project's
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")
        assert any((server_dir / "artifacts").rglob("*.png"))
        (version,) = client.search_model_versions("name = 'boston_linear_regression'")
        assert version.run_id == run.info.run_id
        # nothing went to the default SQLite store
        local = mlflow.MlflowClient(tracking_uri=f"sqlite:///{kedro_project / 'mlflow.db'}")
        assert not local.search_runs([e.experiment_id for e in local.search_experiments()])
    finally:
        code, output = tracking_server("stop", *where, env=env, timeout_s=120)
    assert code == 0, output
    code, output = tracking_server("status", *where, env=env, timeout_s=60)
    assert code == 1
    assert "mlflow server: stopped" in output
    assert "PostgreSQL: stopped" in output
