"""The embedded SQLite store: created and migrated once, whatever the number of processes
starting together, and re-rooted when the project folder moves.

Every process takes an exclusive ``flock`` on ``<store>.lock`` beside the database while it
opens (creates, migrates) the store, creates an experiment or rewrites artifact roots; the
first one does the work, the others find it done. SQLite writers then wait for each other
(``?timeout=`` in the URI, see ``conf/base/mlflow.yml``) instead of failing on
``database is locked``. Stores other than ``sqlite:///`` files (a tracking server) are left
to their server.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

logger = logging.getLogger(__name__)

ARTIFACTS_DIR = "mlruns"
"""MLflow's default artifact root beside a local store, ``./mlruns`` of the working folder."""

# Columns holding artifact locations: MLflow stores them absolute.
_LOCATION_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("model_versions", "source"),
    ("model_versions", "storage_location"),
    ("logged_models", "artifact_location"),
)


def sqlite_path(uri: str | None) -> Path | None:
    """The database file of a ``sqlite:///`` URI (relative to the working folder, as MLflow
    opens it), or ``None`` for any other store."""
    if not uri or not uri.startswith("sqlite:///"):
        return None
    # the URL path of sqlite:///x.db is /x.db, of sqlite:////a/x.db it is //a/x.db
    path = unquote(urlsplit(uri).path)[1:]
    return Path(path) if path and path != ":memory:" else None


@contextlib.contextmanager
def locked_file(path: Path) -> Iterator[IO[str]]:
    """``path`` (created with its folder if missing) open for reading and appending, under an
    exclusive ``flock`` that other processes taking it wait for; what was written is flushed
    before the lock is released."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield handle
        finally:
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def store_lock(uri: str | None) -> Iterator[None]:
    """Hold the store's file lock (no-op for stores that are not SQLite files)."""
    path = sqlite_path(uri)
    if path is None:
        yield
        return
    with locked_file(path.with_name(path.name + ".lock")):
        yield


def prepare_store(uri: str, project_path: Path) -> list[str]:
    """Create or migrate the store at ``uri`` and point its artifact roots into
    ``project_path``, under the store lock. Returns the relocations made (see :func:`relocate`)."""
    path = sqlite_path(uri)
    if path is None:
        return []
    with store_lock(uri):
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_experiments(max_results=1)  # creates the tables, or checks the schema
        client.search_registered_models(max_results=1)
        return _relocate(path, project_path)


def relocate(uri: str, project_path: Path) -> list[str]:
    """Rewrite the artifact locations stored in the SQLite store at ``uri`` that point into
    another folder's ``mlruns/`` so that they point into ``project_path/mlruns/``.

    MLflow records artifact locations as absolute paths; after the project folder moved (or
    was copied), they still name the old folder: models would not load, and new runs would
    write there. Returns one line per old root that was rewritten.
    """
    path = sqlite_path(uri)
    if path is None:
        return []
    with store_lock(uri):
        return _relocate(path, project_path)


def _relocate(database: Path, project_path: Path) -> list[str]:
    if not database.is_file():
        return []
    new_root = (Path(project_path).resolve() / ARTIFACTS_DIR).as_posix()
    with contextlib.closing(sqlite3.connect(database, timeout=60)) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        if "experiment_tags" not in tables:
            return []
        recorded = _recorded_root(connection)
        if recorded == new_root:
            return []
        old_roots = {recorded} - {None, new_root}
        with connection:
            for old in sorted(old_roots):
                for table, column in _LOCATION_COLUMNS:
                    if table in tables:
                        _replace_prefix(connection, table, column, old, new_root)
            _record_root(connection, new_root)
    moved = [f"{old} -> {new_root}" for old in sorted(old_roots)]
    for line in moved:
        logger.info("MLflow artifact root moved: %s", line)
    return moved


# The root the store's locations were last pointed at, kept as a tag of the Default experiment
# (which every store has): later relocations rewrite that root only, and leave any artifact
# location a user configured elsewhere alone.
_ROOT_TAG = "linear_nets.artifact_root"
_DEFAULT_EXPERIMENT = 0


def _recorded_root(connection: Any) -> str | None:
    """The root recorded by the last relocation or else the one the store was created in:
    that of the Default experiment, which MLflow puts in ``./mlruns`` when it creates a store."""
    row = connection.execute(
        "SELECT value FROM experiment_tags WHERE experiment_id = ? AND key = ?",
        (_DEFAULT_EXPERIMENT, _ROOT_TAG),
    ).fetchone()
    if row:
        return row[0]
    row = connection.execute(
        "SELECT artifact_location FROM experiments WHERE experiment_id = ?",
        (_DEFAULT_EXPERIMENT,),
    ).fetchone()
    return _root_of(row[0]) if row and row[0] else None


def _record_root(connection: Any, root: str) -> None:
    connection.execute(
        "DELETE FROM experiment_tags WHERE experiment_id = ? AND key = ?",
        (_DEFAULT_EXPERIMENT, _ROOT_TAG),
    )
    connection.execute(
        "INSERT INTO experiment_tags (key, value, experiment_id) VALUES (?, ?, ?)",
        (_ROOT_TAG, root, _DEFAULT_EXPERIMENT),
    )


def _root_of(location: str) -> str | None:
    """``/a/b/mlruns`` for ``file:///a/b/mlruns/1/…`` or ``/a/b/mlruns/1/…``; ``None`` for
    locations that are not local files."""
    path = location.removeprefix("file://")
    if not path.startswith("/"):
        return None
    head, _, _ = path.partition(f"/{ARTIFACTS_DIR}/")
    return f"{head}/{ARTIFACTS_DIR}"


def _replace_prefix(connection: Any, table: str, column: str, old: str, new: str) -> None:
    for prefix in ("file://", ""):
        connection.execute(
            f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
            f"WHERE substr({column}, 1, ?) = ?",
            (prefix + new, len(prefix + old) + 1, len(prefix + old) + 1, prefix + old + "/"),
        )


def ensure_experiment(name: str, uri: str, **create_kwargs: Any) -> Any:
    """The active experiment called ``name`` (created, or restored if deleted), under the lock
    so that processes starting together create it once."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    with store_lock(uri):
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            client.create_experiment(name, **create_kwargs)
        elif experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return client.get_experiment_by_name(name)
