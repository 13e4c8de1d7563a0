"""Helpers for tests: Kedro sessions, and the servers and commands the tests start."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import mlflow.tracking.fluent as mlflow_fluent
import numpy as np
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project


def run_pipeline(
    project: Path, pipeline: str, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run ``pipeline`` through a real Kedro session in ``project``, as ``kedro run`` does."""
    bootstrap_project(project)
    with KedroSession.create(project_path=project, runtime_params=params) as session:
        return session.run(pipeline_names=[pipeline])


def parquet_partitions(folder: Path) -> Any:
    """synthetic_large's kind of partitioned dataset (pandas Parquet partitions replaced by each
    save) at ``folder``."""
    from linear_nets.datasets.partitioned_space import SpaceCheckedPartitionedDataset

    return SpaceCheckedPartitionedDataset(
        path=str(folder),
        dataset="pandas.ParquetDataset",
        filename_suffix=".parquet",
        overwrite=True,
    )


def latest_output(project: Path, relpath: str) -> Path:
    """The file a run wrote at ``relpath``: for a versioned dataset, the file in the newest
    version folder (``relpath/<version>/<name>``); otherwise the plain file."""
    path = project / relpath
    if not path.is_dir():
        return path
    versions = sorted(version for version in path.iterdir() if (version / path.name).exists())
    if not versions:
        raise FileNotFoundError(f"no version of {relpath} in {project}")
    return versions[-1] / path.name


def leftovers(folder: Path) -> list[str]:
    """Every file under ``folder`` (recursively), hidden partial files included."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def mlflow_client(project: Path) -> mlflow.MlflowClient:
    """A client on the project copy's SQLite store."""
    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")


EXPERIMENT_ID_VARIABLE = "MLFLOW_EXPERIMENT_ID"
LOOPBACK = "127.0.0.1"
# kedro-viz gives its build process 300 s; the CLI itself needs a few seconds to start.
BUILD_TIMEOUT_S = 420
BOSTON_TASKS = {"download_boston_data", "train_linear_model", "evaluate_model"}


def free_port() -> int:
    """A port nobody listens on now, for servers that cannot be handed port 0."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def stop_group(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the process group started with ``process``, then SIGKILL what remains."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace_s)
    # Children (uvicorn workers, renderers) may outlive the leader: the group goes either way.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.wait(timeout=grace_s)


@contextlib.contextmanager
def process_group(
    command: list[str], *, cwd: Path, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """Run ``command`` in a new session (its own process group), output to ``log``; always
    stop the whole group on exit."""
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            stop_group(process)


def wait_for_http(
    url: str, timeout_s: float, process: subprocess.Popen | None = None, log: Path | None = None
) -> None:
    """Poll ``url`` until it answers 200; fail early if ``process`` exits meanwhile."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text()[-4000:] if log else ""
            pytest.fail(f"server exited with {process.returncode} before {url} answered:\n{tail}")
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(url, timeout=5) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.5)
    tail = log.read_text()[-4000:] if log else ""
    pytest.fail(f"{url} did not answer within {timeout_s} s:\n{tail}")


# Cold start of `mlflow server` takes 10-40 s here (uvicorn imports the whole of MLflow).
MLFLOW_SERVER_START_TIMEOUT_S = 180


NO_JOB_RUNNER = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
"""``mlflow server`` without its job runner: a second process that leaves a folder in /dev/shm
when killed."""


def mlflow_server_command(store: Path, port: int, *options: str) -> list[str]:
    """``mlflow server`` on the SQLite store ``store``, on the loopback ``port``, one worker."""
    return [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{store}",
        *options,
        "--host", LOOPBACK,
        "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip


@contextlib.contextmanager
def loopback_mlflow_server(store: Path, folder: Path) -> Iterator[str]:
    """``mlflow server`` on the SQLite store ``store`` (one worker, no job runner), on a free
    loopback port, in its own process group (stopped on exit); yields its URL once it answers."""
    port = free_port()
    artifacts = ("--artifacts-destination", str(folder / "artifacts"))
    command = mlflow_server_command(store, port, *artifacts)
    log = folder / "mlflow-server.log"
    with process_group(command, cwd=folder, log=log, env=NO_JOB_RUNNER) as server:
        url = f"http://{LOOPBACK}:{port}"
        wait_for_http(f"{url}/health", MLFLOW_SERVER_START_TIMEOUT_S, server, log)
        yield url


def run_bounded(
    command: list[str], *, timeout_s: float, cwd: Path | None = None, env: dict | None = None
) -> tuple[int, str, str]:
    """Run ``command`` in its own process group and return (exit code, stdout, stderr); fail
    the test if it runs over ``timeout_s``. The whole group is stopped either way, so children
    (kedro-viz's build process, Chromium's renderers) never outlive the test."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        stop_group(process, grace_s=5)
        pytest.fail(f"{command[0]} ran over {timeout_s} s")
    finally:
        stop_group(process, grace_s=5)
    return process.returncode, stdout, stderr


def kedro_viz_build(project: Path) -> Path:
    """Run ``kedro viz build`` in ``project`` and return its ``build/`` folder.

    The command exits 0 even when the build fails (it only prints an error), so success is
    read from its output. It runs in its own process group: kedro-viz builds in a child process,
    which a timeout must stop too.
    """
    kedro = Path(sys.executable).with_name("kedro")
    command = [str(kedro) if kedro.exists() else "kedro", "viz", "build"]
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1"}
    returncode, stdout, stderr = run_bounded(
        command, timeout_s=BUILD_TIMEOUT_S, cwd=project, env=env
    )
    output = stdout + stderr
    assert returncode == 0, output[-4000:]
    assert "Success! Kedro-Viz build files" in output, output[-4000:]
    return project / "build"


# Runs the `kedro` CLI and writes, at exit, every name that a `linear_nets` module imported
# (module level or not), including names already in sys.modules, which `-X importtime` omits.
_IMPORT_RECORDER = r"""
import atexit, builtins, json, os, sys

_seen: dict[str, set[str]] = {}
_import = builtins.__import__


def _recording_import(name, globals=None, locals=None, fromlist=(), level=0):
    importer = (globals or {}).get("__name__") or ""
    if level == 0 and importer.startswith("linear_nets"):
        _seen.setdefault(importer, set()).update(
            {name, *(f"{name}.{item}" for item in fromlist or ())}
        )
    return _import(name, globals, locals, fromlist, level)


builtins.__import__ = _recording_import


@atexit.register
def _write() -> None:
    with open(os.environ["PROJECT_IMPORTS_OUT"], "w") as out:
        json.dump({key: sorted(names) for key, names in _seen.items()}, out)


sys.argv = ["kedro", *sys.argv[1:]]
from kedro.framework.cli.cli import main

main()
"""


def kedro_imports(project: Path, *args: str) -> tuple[set[str], dict[str, list[str]], str]:
    """Run ``kedro *args`` in ``project`` under ``python -X importtime``.

    Returns every module the process imported (from the ``-X importtime`` list), the names each
    ``linear_nets`` module imported (``{importer: [names]}``), and the command's stdout.
    """
    out = project / "project_imports.json"
    env = {
        **os.environ,
        "KEDRO_DISABLE_TELEMETRY": "true",
        "PROJECT_IMPORTS_OUT": str(out),
    }
    command = [sys.executable, "-X", "importtime", "-c", _IMPORT_RECORDER, *args]
    returncode, stdout, stderr = run_bounded(command, timeout_s=300, cwd=project, env=env)
    assert returncode == 0, (stdout + stderr)[-4000:]
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    return imported, json.loads(out.read_text()), stdout


# --- project copies (the fixtures in conftest.py use these) ---

ROOT = Path(__file__).resolve().parents[1]
# the only committed data
SHIPPED_RAW_FILES = ("boston.txt", "boston_new_rows.csv", "example_houses.csv")
DATA_LAYERS = (
    "01_raw",
    "02_intermediate",
    "03_primary",
    "04_feature",
    "05_model_input",
    "06_models",
    "07_model_output",
    "08_reporting",
)


def make_project_copy(project: Path, empty_store: Path) -> Path:
    """Copy conf/, the committed raw data and pyproject.toml to ``project``.

    ``src`` stays empty: the package is installed from this checkout and imported from there.
    The MLflow store is the copy's own ``mlflow.db``, named by its absolute path: MLflow caches
    stores by URI, so a relative ``sqlite:///mlflow.db`` would reach the previous test's file.
    """
    local = ROOT / "conf" / "local"

    def local_settings(directory: str, names: list[str]) -> list[str]:
        """A fresh clone has no conf/local settings: keep the developer's out of the tests."""
        return [name for name in names if name != ".gitkeep"] if Path(directory) == local else []

    shutil.copytree(ROOT / "conf", project / "conf", ignore=local_settings)
    mlflow_yml = project / "conf" / "base" / "mlflow.yml"
    mlflow_yml.write_text(
        mlflow_yml.read_text().replace("sqlite:///mlflow.db", f"sqlite:///{project / 'mlflow.db'}")
    )
    shutil.copy(empty_store, project / "mlflow.db")
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    (project / "src").mkdir()
    for layer in DATA_LAYERS:
        (project / "data" / layer).mkdir(parents=True)
    for shipped in SHIPPED_RAW_FILES:
        shutil.copy(ROOT / "data" / "01_raw" / shipped, project / "data" / "01_raw" / shipped)
    return project


@contextlib.contextmanager
def inside(project: Path) -> Iterator[Path]:
    """Work in ``project`` (cwd, no telemetry) and leave MLflow's global state as it was.

    A Kedro run sets the tracking URI and the active experiment; MLflow keeps both in module
    globals and in environment variables (``MLFLOW_EXPERIMENT_ID``), so without restoring them a
    later test would start its runs in an experiment id of another test's store.
    """
    previous_uri = mlflow.get_tracking_uri()
    previous_experiment = mlflow_fluent._active_experiment_id
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        patch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
        # no active experiment inside; setting first makes the monkeypatch restore the variable
        patch.setenv(EXPERIMENT_ID_VARIABLE, "")
        patch.delenv(EXPERIMENT_ID_VARIABLE)
        mlflow_fluent._active_experiment_id = None
        try:
            yield project
        finally:
            while mlflow.active_run() is not None:
                mlflow.end_run()
            mlflow.set_tracking_uri(previous_uri)
            mlflow_fluent._active_experiment_id = previous_experiment


# --- small StatLib-format data for the boston tests ---

# the MLflow metric keys the issue names, exactly
HEADLINE_METRICS = {
    "train_mse",
    "cv_rmse",
    "cv_mse",
    "condition_number",
    "test_mse",
    "test_rmse",
    "test_mae",
    "test_r2",
    "ols_train_mse",
    "ols_test_mse",
}

# the columns of a regression run's coefficient table, in order, as the README describes them
COEFFICIENT_TABLE_COLUMNS = [
    "feature",
    "model",
    "ols",
    "std_error",
    "t_value",
    "p_value",
    "ci_low",
    "ci_high",
]

HEADER = [f" header line {i}" for i in range(1, 23)]


def statlib_text(rows: np.ndarray, newline: str = "\n") -> str:
    """Write ``rows`` (n x 14) in the StatLib layout: 22 header lines, then 11 + 3 values."""
    lines = list(HEADER)
    for row in rows:
        lines.append(" ".join(f"{v:.6g}" for v in row[:11]))
        lines.append(" ".join(f"{v:.6g}" for v in row[11:]))
    return newline.join(lines) + newline


def linear_rows(n: int, seed: int = 0, noise: float = 0.5) -> np.ndarray:
    """``n`` rows of 13 positive features and a MEDV that is linear in them plus noise."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.5, 10.0, size=(n, 13)).round(3)
    coef = np.linspace(-1.5, 2.0, 13)
    y = (X @ coef + 5.0 + rng.normal(0, noise, n)).round(3)
    return np.column_stack([X, y])
