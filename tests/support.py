"""Helpers for tests: Kedro sessions, and the servers and commands the tests start."""

from __future__ import annotations

import contextlib
import os
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


def mlflow_client(project: Path) -> mlflow.MlflowClient:
    """A client on the project copy's SQLite store."""
    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")


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
