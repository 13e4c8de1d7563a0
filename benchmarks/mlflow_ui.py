"""Seconds from ``kedro mlflow ui`` to the UI's first HTTP 200: MLflow's defaults against the
project's (one web worker, no job-execution processes; see ``settings.py``).

Three commands, in turns, so that a busy machine slows all of them alike:

- ``kedro mlflow ui`` with MLflow's defaults (``MLFLOW_WORKERS=4``,
  ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true``);
- ``kedro mlflow ui`` with the project's defaults (neither variable set);
- ``mlflow ui --workers 1`` with ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``: the floor, without
  Kedro loading the project first.

Each prints when ``mlflow ui`` and its uvicorn worker appeared, when ``/`` answered 200, and how
many processes the command's group held then. Run from the project root (it opens the checkout's
``mlflow.db``, creating it if missing): ``bin/uv run python benchmarks/mlflow_ui.py --repeat 2``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(sys.executable).parent
SETTINGS = ("MLFLOW_WORKERS", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION")
KEDRO_UI = [str(SCRIPTS / "kedro"), "mlflow", "ui"]
PLAIN_UI = [str(SCRIPTS / "mlflow"), "ui", "--backend-store-uri", "sqlite:///mlflow.db"]
ONE_WORKER = [*PLAIN_UI, "--workers", "1"]
VARIANTS = [
    ("kedro mlflow ui, MLflow's defaults", KEDRO_UI, {SETTINGS[0]: "4", SETTINGS[1]: "true"}),
    ("kedro mlflow ui, the project's defaults", KEDRO_UI, {}),
    ("mlflow ui --workers 1, no job execution", ONE_WORKER, {SETTINGS[1]: "false"}),
]
TIMEOUT_S = 600


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def group(pgid: int) -> list[str]:
    listed = subprocess.run(
        ["ps", "-o", "args=", "-g", str(pgid)], capture_output=True, text=True, check=False
    )
    return [line for line in listed.stdout.splitlines() if line.strip()]


def answers(url: str) -> bool:
    with (
        contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
        urllib.request.urlopen(url, timeout=5) as response,
    ):
        return response.status == 200
    return False


def measure(command: list[str], settings: dict[str, str]) -> tuple[dict[str, float], int]:
    """The seconds at which each phase was first seen, and the processes at the end."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    env |= {**settings, "KEDRO_DISABLE_TELEMETRY": "true"}
    started = time.monotonic()
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    seen: dict[str, float] = {}
    try:
        while (now := time.monotonic() - started) < TIMEOUT_S:
            running = group(process.pid)
            if any(" ui " in f"{p} " and "kedro" not in p for p in running):
                seen.setdefault("mlflow ui", now)
            if any("uvicorn" in p for p in running):
                seen.setdefault("uvicorn", now)
            if answers(f"http://127.0.0.1:{port}/"):
                seen["HTTP 200"] = time.monotonic() - started
                break
            time.sleep(0.25)
        return seen, len(group(process.pid))
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2, help="rounds of the three commands")
    args = parser.parse_args(argv)
    for _ in range(args.repeat):
        for name, command, settings in VARIANTS:
            seen, processes = measure(command, settings)
            phases = ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in seen.items())
            print(f"{name}: {phases or 'no answer'}; {processes} processes", flush=True)


if __name__ == "__main__":
    main()
