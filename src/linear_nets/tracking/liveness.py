"""Which MLflow runs still have a live process behind them.

Each run is tagged with the host, the pid and the pid's start time (so a reused pid is not
mistaken for the original process). A run left RUNNING whose process is gone from this host
(SIGKILL, power loss) is marked KILLED by the next run and by ``kedro runs clean``; the model
versions it registered are removed (``@champion`` repaired where it pointed at one), so are the
models it logged, and the files it wrote under the project's ``data/`` (its Kedro save version's
folders), any of which a kill may have left half-written.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path
from typing import Any

HOST_TAG = "linear_nets.host"
PID_TAG = "linear_nets.pid"
START_TAG = "linear_nets.pid_start"
END_REASON_TAG = "linear_nets.end_reason"


def process_tags(pid: int | None = None) -> dict[str, str]:
    """The tags naming the process that owns a run (this one by default)."""
    pid = os.getpid() if pid is None else pid
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), START_TAG: _start_ticks(pid)}


def _start_ticks(pid: int) -> str:
    """When ``pid`` started, in clock ticks since boot (Linux), or ``""`` where unknown."""
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[19]
    return ""


def is_alive(pid: int, start: str = "") -> bool:
    """Whether the process ``pid`` that started at ``start`` still runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not start or _start_ticks(pid) in ("", start)


SAVE_VERSION_TAG = "kedro.save_version"
"""The Kedro save version a run wrote its versioned files under (set by the tracking hook)."""


def mark_dead_runs_killed(client: Any, reason: str, project: Path | None = None) -> list[str]:
    """Mark KILLED every RUNNING run of this host whose process is gone, delete the model
    versions it registered (repairing ``@champion`` where it pointed at one) and the models
    it logged, and, given the ``project``, remove its versioned files under ``data/``.
    Returns one line per run killed (``KILLED <run id>``) and per repair."""
    from mlflow.entities import ViewType

    from linear_nets.tracking.publish import delete_logged_models
    from linear_nets.tracking.registry import forget_dead_run

    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    if not experiments:
        return []
    host = socket.gethostname().replace("'", "")
    runs = client.search_runs(
        experiments,
        filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'",
        run_view_type=ViewType.ALL,
        max_results=10_000,
    )
    killed = []
    for run in runs:
        tags = run.data.tags
        pid = tags.get(PID_TAG, "")
        if not pid.isdigit() or is_alive(int(pid), tags.get(START_TAG, "")):
            continue
        client.set_tag(run.info.run_id, END_REASON_TAG, reason)
        client.set_terminated(run.info.run_id, "KILLED", end_time=int(time.time() * 1000))
        killed.append(f"KILLED {run.info.run_id}")
        killed += forget_dead_run(client, run.info.run_id)
        for model_id in delete_logged_models(client, run.info.run_id):
            killed.append(f"deleted logged model {model_id} (its run {run.info.run_id} died)")
        version = tags.get(SAVE_VERSION_TAG, "")
        if project is not None and version:
            for folder in remove_saved_version(project / "data", version):
                killed.append(f"removed {folder} (its run {run.info.run_id} died)")
    return killed


def remove_saved_version(data: Path, version: str) -> list[str]:
    """Delete every ``<dataset>/<version>/`` folder under ``data`` (Kedro's versioned layout,
    ``<filepath>/<version>/<name>``); returns them relative to ``data``'s parent."""
    import shutil

    if not data.is_dir() or not version.strip() or "/" in version:
        return []
    removed = []
    for folder in sorted(data.rglob(version)):
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder)
            removed.append(str(folder.relative_to(data.parent)))
    return removed
