"""The embedded store: its lock, and a moved project reported instead of silently split; the
promotion lock on a SQLite store and on a real tracking server."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest

from linear_nets.tracking import registry
from linear_nets.tracking.liveness import HOST_TAG, PID_TAG, START_TAG, process_tags
from linear_nets.tracking.registry import CHAMPION, Candidate, promote_if_better
from linear_nets.tracking.store import (
    LOCK_SUFFIX,
    LockTimeout,
    MovedProjectError,
    RegistryLock,
    promotion_lock,
    sqlite_path,
    store_lock,
)
from tests.support import inside, loopback_mlflow_server, run_pipeline, stop_group


def test_sqlite_path_of_relative_absolute_and_other_uris():
    assert sqlite_path("sqlite:///mlflow.db?timeout=60") == Path("mlflow.db")
    assert sqlite_path("sqlite:////srv/x/mlflow.db") == Path("/srv/x/mlflow.db")
    assert sqlite_path("http://127.0.0.1:5000") is None
    assert sqlite_path("postgresql://u@h/db") is None


def test_the_lock_file_sits_beside_the_store(tmp_path: Path):
    with store_lock(f"sqlite:///{tmp_path / 'sub' / 'mlflow.db'}"):
        assert (tmp_path / "sub" / "mlflow.db.lock").is_file()


@pytest.mark.slow
def test_a_copied_project_is_refused_naming_what_to_do(trained_boston: Path, tmp_path: Path):
    copied = Path(shutil.copytree(trained_boston, tmp_path / "copied"))
    mlflow_yml = copied / "conf/base/mlflow.yml"  # the test copy names its store absolutely
    mlflow_yml.write_text(mlflow_yml.read_text().replace(str(trained_boston), str(copied)))
    with inside(copied), pytest.raises(MovedProjectError) as refused:
        run_pipeline(copied, "boston")
    message = str(refused.value)
    assert f"{trained_boston}/mlruns" in message
    assert f"ln -s {copied} {trained_boston}" in message
    # nothing was recorded: the copied store has the original run only
    client = mlflow.MlflowClient(f"sqlite:///{copied / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("linear_nets.boston")
    assert len(client.search_runs([experiment.experiment_id])) == 1


# --- the promotion lock of any store: a registry entry on a tracking server ---


@pytest.fixture
def sqlite_client(tmp_path: Path, empty_mlflow_store: Path) -> mlflow.MlflowClient:
    """A client on a fresh SQLite store: its registry makes creations atomic as a server does."""
    shutil.copy(empty_mlflow_store, tmp_path / "mlflow.db")
    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")


def dead_pid() -> int:
    """The pid of a process of this host that has ended."""
    finished = subprocess.Popen(["true"])
    finished.wait()
    return finished.pid


def leave_lock(client: mlflow.MlflowClient, model: str, tags: dict[str, str]) -> None:
    """The lock entry another process took on ``model`` (and may have left behind)."""
    tags = {RegistryLock.TOKEN: "another process", RegistryLock.SINCE: "earlier", **tags}
    client.create_registered_model(f"{model}{LOCK_SUFFIX}", tags=tags)


def lock_entries(client: mlflow.MlflowClient) -> list[str]:
    return [m.name for m in client.search_registered_models() if LOCK_SUFFIX in m.name]


def hold_in_a_thread(client: mlflow.MlflowClient, model: str, hold_s: float) -> threading.Thread:
    """Take the lock on ``model`` in a thread of this (live) process, hold it ``hold_s``; return
    once it is held."""
    held = threading.Event()

    def holder() -> None:
        with RegistryLock(client, model):
            held.set()
            time.sleep(hold_s)

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(30)
    return thread


def test_one_holder_at_a_time_and_a_timeout_names_the_holder(sqlite_client):
    with RegistryLock(sqlite_client, "m"):
        assert lock_entries(sqlite_client) == ["m.promotion-lock"]
        holder = f"by a process (host {socket.gethostname()}, pid {os.getpid()}, since"
        said = re.escape(f"m.promotion-lock stayed held for more than 0.3 s {holder}")
        with (
            pytest.raises(LockTimeout, match=said),
            RegistryLock(sqlite_client, "m", timeout_s=0.3),
        ):
            pytest.fail("entered a lock held by another")
    assert lock_entries(sqlite_client) == []  # released


def test_a_live_holder_is_waited_for(sqlite_client):
    thread = hold_in_a_thread(sqlite_client, "m", hold_s=1.0)
    began = time.monotonic()
    with RegistryLock(sqlite_client, "m"):
        waited = time.monotonic() - began
    thread.join()
    assert 0.8 < waited < 10
    assert lock_entries(sqlite_client) == []


def test_the_lock_of_a_process_that_died_is_broken_at_once(sqlite_client, caplog):
    leave_lock(sqlite_client, "m", process_tags(dead_pid()))
    began = time.monotonic()
    with caplog.at_level(logging.WARNING), RegistryLock(sqlite_client, "m"):
        took = time.monotonic() - began
    assert took < 5
    assert "Broke the promotion lock m.promotion-lock" in caplog.text
    assert "is gone" in caplog.text
    assert lock_entries(sqlite_client) == []


def test_a_lock_of_another_host_is_broken_only_after_its_lease(sqlite_client):
    leave_lock(sqlite_client, "m", {HOST_TAG: "elsewhere", PID_TAG: "1", START_TAG: ""})
    with pytest.raises(LockTimeout), RegistryLock(sqlite_client, "m", timeout_s=0.3):
        pass
    began = time.monotonic()
    with RegistryLock(sqlite_client, "m", lease_s=1.0):
        assert time.monotonic() - began >= 1.0


def test_a_sqlite_store_promotes_under_its_file_lock(sqlite_client, tmp_path: Path):
    with promotion_lock(sqlite_client, "m"):
        assert (tmp_path / "mlflow.db.lock").is_file()
        assert lock_entries(sqlite_client) == []


@pytest.fixture(scope="module")
def tracking_server(
    tmp_path_factory: pytest.TempPathFactory, empty_mlflow_store: Path
) -> Iterator[str]:
    """A real ``mlflow server`` on loopback, on a SQLite store, for the module."""
    folder = tmp_path_factory.mktemp("server")
    shutil.copy(empty_mlflow_store, folder / "mlflow.db")
    with loopback_mlflow_server(folder / "mlflow.db", folder) as url:
        yield url


@pytest.fixture
def on_server(tracking_server: str) -> Iterator[mlflow.MlflowClient]:
    """The server as this process's tracking URI; a client on it."""
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_server)
    yield mlflow.MlflowClient()
    mlflow.set_tracking_uri(previous)


def register(client: mlflow.MlflowClient, model: str, value: float) -> str:
    """A finished run's version of ``model`` whose champion metric ``cv_rmse`` is ``value``."""
    experiment = client.get_experiment_by_name("Default").experiment_id
    run_id = client.create_run(experiment).info.run_id
    with contextlib.suppress(mlflow.exceptions.MlflowException):  # it exists
        client.create_registered_model(model)
    version = str(client.create_model_version(model, f"runs:/{run_id}/model", run_id).version)
    registry.tag_version(model, version, run_id, Candidate("cv_rmse", value, False, "ok"))
    client.set_terminated(run_id)
    return version


PROMOTER = """
import json, sys, time
from pathlib import Path
import mlflow
from linear_nets.tracking.registry import promote_if_better
folder, me = Path(sys.argv[1]), int(sys.argv[2])
(folder / f"ready-{me}").touch()
for trial in range(int(sys.argv[3])):
    go = folder / f"go-{trial}.json"
    while not go.exists():
        time.sleep(0.01)
    task = json.loads(go.read_text())
    mlflow.set_tracking_uri(task["uri"])
    time.sleep(max(0.0, task["at"] - time.time()))  # every process promotes at the same instant
    said = promote_if_better(task["model"], task["versions"][me])
    (folder / f"said-{trial}-{me}").write_text(said)
"""
PROCESSES = 8
TRIALS = int(os.environ.get("PROMOTION_TRIALS", "2"))  # more for the figures of issue 23


@dataclass
class Promoters:
    folder: Path
    processes: list[subprocess.Popen]

    def wait_for(self, names: list[str], timeout_s: float = 120) -> list[Path]:
        paths = [self.folder / name for name in names]
        deadline = time.monotonic() + timeout_s
        while not all(path.exists() for path in paths):
            failed = [p.returncode for p in self.processes if p.poll() not in (None, 0)]
            if failed or time.monotonic() > deadline:
                pytest.fail(f"promoters exited {failed} or ran over {timeout_s} s")
            time.sleep(0.05)
        return paths

    def promote(self, trial: int, task: dict) -> list[str]:
        """Every process promotes its version of ``task`` at the same instant; what each said."""
        (self.folder / "go.tmp").write_text(json.dumps({**task, "at": time.time() + 0.5}))
        (self.folder / "go.tmp").rename(self.folder / f"go-{trial}.json")
        said = self.wait_for([f"said-{trial}-{me}" for me in range(len(self.processes))])
        return [path.read_text() for path in said]


@pytest.fixture(scope="module")
def promoters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Promoters]:
    """Processes that import MLflow while the server starts (name this fixture before the
    server's), then promote what they are told to, ``TRIALS`` times."""
    folder = tmp_path_factory.mktemp("promoters")
    command = [sys.executable, "-c", PROMOTER, str(folder)]
    processes = [
        subprocess.Popen([*command, str(me), str(TRIALS)], start_new_session=True)
        for me in range(PROCESSES)
    ]
    try:
        yield Promoters(folder, processes)
    finally:
        for process in processes:
            stop_group(process)


@pytest.mark.slow  # a server and eight Python processes importing MLflow
def test_processes_promoting_at_the_same_instant_on_a_server_leave_the_best_champion(
    promoters: Promoters, tracking_server: str, on_server: mlflow.MlflowClient
):
    promoters.wait_for([f"ready-{me}" for me in range(PROCESSES)])
    right = []
    for trial in range(TRIALS):
        values = random.Random(trial).sample([2.5, 2.75, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0], 8)
        model = f"concurrent-{trial}"
        versions = [register(on_server, model, value) for value in values]
        task = {"uri": tracking_server, "model": model, "versions": versions}
        said = promoters.promote(trial, task)
        champion = str(on_server.get_model_version_by_alias(model, CHAMPION).version)
        firsts = sum("the first champion" in line for line in said)
        right.append(champion == versions[values.index(min(values))] and firsts == 1)
    assert all(process.wait(timeout=60) == 0 for process in promoters.processes)
    assert right == [True] * TRIALS, f"best champion and one first champion, per trial: {right}"
    assert lock_entries(on_server) == []


@pytest.mark.slow
def test_on_a_server_a_dead_holders_lock_is_broken_and_a_live_one_waited_for(
    on_server: mlflow.MlflowClient, caplog
):
    first = register(on_server, "held", 5.0)
    leave_lock(on_server, "held", process_tags(dead_pid()))
    began = time.monotonic()
    with caplog.at_level(logging.WARNING):
        said = promote_if_better("held", first)
    assert time.monotonic() - began < 10
    assert said == f"held version {first} is now @champion: the first champion"
    assert "Broke the promotion lock held.promotion-lock" in caplog.text

    better = register(on_server, "held", 4.0)
    thread = hold_in_a_thread(on_server, "held", hold_s=2.0)
    began = time.monotonic()
    said = promote_if_better("held", better)
    waited = time.monotonic() - began
    thread.join()
    assert waited >= 1.5
    assert said.startswith(f"held version {better} is now @champion: cv_rmse 4 beats 5")
    assert lock_entries(on_server) == []
