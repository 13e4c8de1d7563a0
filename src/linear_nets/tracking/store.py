"""The embedded SQLite store: created and migrated once, whatever the number of processes
starting together.

Every process holds ``<store>.lock`` (a ``filelock`` beside the database) while it opens
(creates, migrates) the store, creates an experiment or moves an alias; the first one does the
work, the others find it done. SQLite writers then wait for each other (``?timeout=`` in the
URI, see ``conf/base/mlflow.yml``) instead of failing on ``database is locked``. Stores other
than ``sqlite:///`` files (a tracking server) are left to their server.

MLflow records artifact locations as absolute paths. The project never rewrites them: a
project folder that moved is reported (:func:`check_artifact_root`) with what to do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

ARTIFACTS_DIR = "mlruns"
"""MLflow's default artifact root beside a local store, ``./mlruns`` of the working folder."""
LOCK_TIMEOUT_S = 120.0


class MovedProjectError(RuntimeError):
    """The store's artifact locations name a folder this project is no longer in."""


def sqlite_path(uri: str | None) -> Path | None:
    """The database file of a ``sqlite:///`` URI (relative to the working folder, as MLflow
    opens it), or ``None`` for any other store."""
    if not uri or not uri.startswith("sqlite:///"):
        return None
    # the URL path of sqlite:///x.db is /x.db, of sqlite:////a/x.db it is //a/x.db
    path = unquote(urlsplit(uri).path)[1:]
    return Path(path) if path and path != ":memory:" else None


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<path>.lock`` (its folder created if missing)."""
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock", timeout=LOCK_TIMEOUT_S):
        yield


@contextlib.contextmanager
def store_lock(uri: str | None) -> Iterator[None]:
    """Hold the store's lock (no-op for stores that are not SQLite files)."""
    path = sqlite_path(uri)
    if path is None:
        yield
        return
    with locked(path):
        yield


def prepare_store(uri: str) -> None:
    """Create or migrate the SQLite store at ``uri`` once, under the store lock."""
    if sqlite_path(uri) is None:
        return
    with store_lock(uri):
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_experiments(max_results=1)  # creates the tables, or checks the schema
        client.search_registered_models(max_results=1)


def ensure_experiment(name: str, uri: str) -> Any:
    """The active experiment called ``name`` (created, or restored if deleted), under the lock
    so that processes starting together create it once."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    with store_lock(uri):
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            client.create_experiment(name)
        elif experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return client.get_experiment_by_name(name)


def check_artifact_root(experiment: Any, uri: str, project_path: Path) -> None:
    """Refuse to record into an experiment of a local store whose artifacts live in the
    ``mlruns/`` of another folder: the project was moved or copied after that store was made."""
    if sqlite_path(uri) is None:
        return
    location = str(experiment.artifact_location).removeprefix("file://")
    if not location.startswith("/"):
        return
    head, found, _ = location.partition(f"/{ARTIFACTS_DIR}/")
    here = Path(project_path).resolve()
    if not found or Path(head).resolve() == here:
        return
    raise MovedProjectError(
        f"the MLflow store {uri} keeps its artifacts in {head}/{ARTIFACTS_DIR}, but this "
        f"project is {here}: it was moved or copied. Move it back, or link the old folder "
        f"to this one (ln -s {here} {head}), or start a new store (mv mlflow.db mlflow.db.old); "
        "see README, 'Moving a project'"
    )
