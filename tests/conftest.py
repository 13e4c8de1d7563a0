"""Shared fixtures: a throw-away copy of the project, with its own MLflow store; a small disk."""

from __future__ import annotations

import gc
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from tests.support import inside, kedro_viz_build, make_project_copy, run_pipeline


@pytest.fixture(scope="session")
def empty_mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with its schema created once: migrating a new one takes seconds."""
    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def kedro_project(tmp_path: Path, empty_mlflow_store: Path) -> Iterator[Path]:
    """A fresh copy of the project in ``tmp_path``, as the working directory."""
    with inside(make_project_copy(tmp_path / "project", empty_mlflow_store)) as project:
        yield project


@pytest.fixture(scope="module")
def trained_boston(
    tmp_path_factory: pytest.TempPathFactory, empty_mlflow_store: Path
) -> Iterator[Path]:
    """A project copy in which ``kedro run --pipeline=boston`` has run once with the defaults."""
    project = make_project_copy(tmp_path_factory.mktemp("trained") / "project", empty_mlflow_store)
    with inside(project):
        run_pipeline(project, "boston")
        yield project


@pytest.fixture(scope="session")
def viz_build(tmp_path_factory: pytest.TempPathFactory, empty_mlflow_store: Path) -> Path:
    """``kedro viz build`` of a fresh project copy, once per session (it takes half a minute);
    shared by the export tests and the browser tests, none of which writes to it."""
    project = make_project_copy(tmp_path_factory.mktemp("viz") / "project", empty_mlflow_store)
    return kedro_viz_build(project)


SMALL_DISK = "64k"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An empty folder on its own 64 KiB tmpfs: writing more fails with ENOSPC (root only;
    skipped otherwise)."""
    mountpoint = tmp_path / "small_disk"
    mountpoint.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK}", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


# Fixtures that run Kedro in a project copy (sessions, pipelines, `kedro viz build`): a test
# that uses one takes well over 5 s, so it is marked slow and `pytest -m "not slow"` skips it.
SLOW_FIXTURES = frozenset({"kedro_project", "trained_boston", "viz_build"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def pytest_unconfigure(config: pytest.Config) -> None:
    # The first Kedro session froze what this process had imported (linear_nets.startup),
    # triton included when a test imported torch._dynamo before it: give those objects back
    # to the collector, or triton's nanobind bindings report them as leaked at exit.
    gc.unfreeze()
