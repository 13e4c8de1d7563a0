"""Nothing phones home by default: MLflow and Kedro telemetry off, no kedro-viz update check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from linear_nets.tracking.privacy import OPT_IN, SWITCHES

ROOT = Path(__file__).resolve().parents[2]

# Records every name lookup or connection to anything but the loopback, and refuses it.
GUARD = """
import json, socket, sys
attempts = []
_getaddrinfo, _connect = socket.getaddrinfo, socket.socket.connect
LOCAL = {"127.0.0.1", "localhost", "::1", None}
def getaddrinfo(host, *args, **kwargs):
    if host not in LOCAL:
        attempts.append(f"lookup {host}")
        raise OSError("network refused by the test")
    return _getaddrinfo(host, *args, **kwargs)
def connect(self, address):
    if isinstance(address, tuple) and address[0] not in LOCAL:
        attempts.append(f"connect {address[0]}")
        raise OSError("network refused by the test")
    return _connect(self, address)
socket.getaddrinfo, socket.socket.connect = getaddrinfo, connect
import atexit
_report = sys.argv[1]
atexit.register(lambda: open(_report, "w").write(json.dumps(attempts)))
"""

CHECK = """
import json, os, sys
import linear_nets.settings
import mlflow
from mlflow.telemetry.client import get_telemetry_client
from kedro_viz.integrations import pypi
result = {
    "env": {name: os.environ.get(name) for name in ("MLFLOW_DISABLE_TELEMETRY",
            "KEDRO_DISABLE_TELEMETRY", "DO_NOT_TRACK")},
    "mlflow_client": get_telemetry_client() is not None,
    "viz_check_patched": pypi.get_latest_version.__module__ != "kedro_viz.integrations.pypi",
}
if result["viz_check_patched"]:
    result["latest"] = str(pypi.get_latest_version())
print("RESULT" + json.dumps(result))
"""


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SWITCHES and k != OPT_IN}
    return env | extra


def _check(tmp_path: Path, env: dict[str, str]) -> tuple[dict, list[str]]:
    attempts = tmp_path / "attempts.json"
    done = subprocess.run(
        [sys.executable, "-c", GUARD + CHECK, str(attempts)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT"))
    return json.loads(line.removeprefix("RESULT")), json.loads(attempts.read_text())


def test_settings_switch_every_telemetry_off(tmp_path: Path):
    result, attempts = _check(tmp_path, _clean_env())
    assert result["env"] == SWITCHES
    assert result["mlflow_client"] is False
    assert result["viz_check_patched"] is True
    assert result["latest"] == "None"  # kedro-viz asked for the newest version: no request
    assert attempts == []


def test_the_user_can_opt_in(tmp_path: Path):
    result, _ = _check(tmp_path, _clean_env(**{OPT_IN: "on"}))
    assert result["env"] == dict.fromkeys(SWITCHES)
    assert result["viz_check_patched"] is False


@pytest.mark.slow
def test_a_run_makes_no_network_request(kedro_project: Path, tmp_path: Path):
    attempts = tmp_path / "attempts.json"
    run = (
        "from kedro.framework.cli import main\n"
        "sys.argv = ['kedro', 'run', '--pipeline=landscape']\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", GUARD + run, str(attempts)],
        cwd=kedro_project,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert json.loads(attempts.read_text()) == []
