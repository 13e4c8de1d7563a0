"""The embedded SQLite store: created and migrated once, whatever the number of processes
starting together.

Every process holds ``<store>.lock`` (a ``filelock`` beside the database) while it opens
(creates, migrates) the store, creates an experiment or moves an alias; the first one does the
work, the others find it done. SQLite writers then wait for each other (``?timeout=`` in the
URI, see ``conf/base/mlflow.yml``) instead of failing on ``database is locked``. Stores other
than ``sqlite:///`` files (a tracking server) create and migrate themselves.

Moving ``@champion`` (read the champion, compare, set the alias) must be one step across
processes, and MLflow's API has no compare-and-set. :func:`promotion_lock` is the lock for it on
any store: the file lock above for a SQLite file, and on a tracking server (or any other
registry) a :class:`RegistryLock`, a registry entry ``<model>.promotion-lock`` whose creation the
server makes atomic (its name is unique: a second creation fails ``RESOURCE_ALREADY_EXISTS``).

MLflow records artifact locations as absolute paths. The project never rewrites them: a
project folder that moved is reported (:func:`check_artifact_root`) with what to do.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from linear_nets.tracking import liveness

logger = logging.getLogger(__name__)

ARTIFACTS_DIR = "mlruns"
"""MLflow's default artifact root beside a local store, ``./mlruns`` of the working folder."""
LOCK_TIMEOUT_S = 120.0
LEASE_S = 60.0
"""A registry lock held this long (as its waiters see it) is taken for abandoned and broken: a
promotion holds it for a few requests, each bounded by the HTTP limits (:mod:`.http_limits`)."""
LOCK_SUFFIX = ".promotion-lock"


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


class LockTimeout(TimeoutError):
    """A lock stayed held by another process for longer than the waiter would wait."""


@contextlib.contextmanager
def promotion_lock(client: Any, model: str, *, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the lock under which ``@champion`` of registered model ``model`` is read, compared
    and moved, whatever the store of ``client``: the SQLite file's lock for a local store (all
    models), a :class:`RegistryLock` on ``model`` for a tracking server or any other store."""
    path = sqlite_path(client.tracking_uri)
    if path is not None:
        with locked(path):
            yield
        return
    with RegistryLock(client, model, timeout_s=timeout_s):
        yield


class RegistryLock:
    """A cross-process lock kept in the model registry itself, through MLflow's public client.

    Acquiring creates the registered model ``<model>.promotion-lock`` (tags name the holder:
    run, host, pid, time); the registry's unique names make that creation atomic, so exactly
    one process holds it. Releasing deletes it (the creator of a registered model may delete it
    on a server with sign-in). A waiter retries with a short, jittered backoff, up to
    ``timeout_s`` (then :class:`LockTimeout`, naming the holder). A lock whose holder is gone
    (a process of this host that no longer runs) or that stayed held ``lease_s`` is broken, by
    one waiter at a time (``<model>.promotion-lock.break``) and only after reading it again: a
    lock taken meanwhile is never broken.
    """

    TOKEN = "linear_nets.lock.token"
    RUN = "linear_nets.lock.run_id"
    SINCE = "linear_nets.lock.since"

    def __init__(
        self,
        client: Any,
        model: str,
        *,
        timeout_s: float = LOCK_TIMEOUT_S,
        lease_s: float = LEASE_S,
    ) -> None:
        self.client = client
        self.model = model
        self.name = f"{model}{LOCK_SUFFIX}"
        self.breaker = f"{self.name}.break"
        self.timeout_s = timeout_s
        self.lease_s = lease_s
        self.token = uuid.uuid4().hex
        self._first_seen: dict[str, float] = {}  # holder token -> when this waiter first saw it

    def __enter__(self) -> RegistryLock:
        deadline = time.monotonic() + self.timeout_s
        delay = 0.02
        while True:
            if self._create(self.name):
                return self
            holder = self._holder(self.name)
            if holder is None:  # released between our attempt and the read: try again now
                continue
            if holder.get(self.TOKEN) == self.token:  # our creation went through on a retry
                return self
            reason = self._abandoned(holder)
            if reason and self._break(holder, reason):
                continue
            if time.monotonic() > deadline:
                raise LockTimeout(
                    f"{self.name} stayed held for more than {self.timeout_s:g} s by "
                    f"{_holder_text(holder)}: another run is promoting {self.model}; try again "
                    f"when it ends (an abandoned lock is broken after {self.lease_s:g} s)"
                )
            time.sleep(delay * (0.5 + random.random()))  # jitter: waiters spread out
            delay = min(delay * 2, 0.5)

    def __exit__(self, *exc: object) -> None:
        holder = self._holder(self.name)
        if holder is not None and holder.get(self.TOKEN) == self.token:
            self._delete(self.name)
        else:
            logger.warning(
                "The promotion lock %s was broken while this process held it (held longer than "
                "%.0f s?)",
                self.name,
                self.lease_s,
            )

    def _tags(self) -> dict[str, str]:
        import mlflow

        active = mlflow.active_run()
        return {
            **liveness.process_tags(),
            self.TOKEN: self.token,
            self.RUN: active.info.run_id if active is not None else "",
            self.SINCE: time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }

    def _create(self, name: str) -> bool:
        from mlflow.exceptions import MlflowException

        description = (
            f"A lock, not a model: held by linear_nets while a run reads, compares and moves "
            f"@champion of {self.model}, deleted when it is done (tags name the holder). "
            f"One left behind by a dead process is broken after {self.lease_s:g} s."
        )
        try:
            self.client.create_registered_model(name, tags=self._tags(), description=description)
        except MlflowException as error:
            # taken; or taken and released at once: the store reads the existing entry back
            # to word its refusal, and finds it gone
            if error.error_code in ("RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST"):
                return False
            raise
        return True

    def _holder(self, name: str) -> dict[str, str] | None:
        """The tags of lock ``name``, or None when nobody holds it."""
        from mlflow.exceptions import MlflowException

        try:
            return dict(self.client.get_registered_model(name).tags)
        except MlflowException as error:
            if error.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise

    def _delete(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.delete_registered_model(name)
        except MlflowException as error:
            if error.error_code == "RESOURCE_DOES_NOT_EXIST":
                return
            if error.error_code == "PERMISSION_DENIED":
                raise PermissionError(
                    f"{name} is a lock left by {_holder_text(self._holder(name) or {})} that this "
                    f"user may not delete: the server's admin deletes the registered model "
                    f"{name} (it holds no model)"
                ) from None
            raise

    def _abandoned(self, holder: dict[str, str]) -> str | None:
        """Why the lock ``holder`` holds is abandoned, or None while it may still be in use."""
        pid = holder.get(liveness.PID_TAG, "")
        here = holder.get(liveness.HOST_TAG) == socket.gethostname()
        start = holder.get(liveness.START_TAG, "")
        if here and pid.isdigit() and not liveness.is_alive(int(pid), start):
            return f"its process {pid} is gone"
        first = self._first_seen.setdefault(holder.get(self.TOKEN, ""), time.monotonic())
        if time.monotonic() - first >= self.lease_s:
            return f"held for more than {self.lease_s:g} s"
        return None

    def _break(self, holder: dict[str, str], reason: str) -> bool:
        """Delete the lock ``holder`` holds, if it still does, as the only breaker; whether
        this process was the breaker (otherwise another one is breaking it)."""
        if not self._create(self.breaker):
            breaker = self._holder(self.breaker)
            if breaker is not None and self._abandoned(breaker):
                self._delete(self.breaker)  # a breaker died while breaking
            return False
        try:
            now = self._holder(self.name)
            if now is not None and now.get(self.TOKEN) == holder.get(self.TOKEN):
                self._delete(self.name)
                logger.warning(
                    "Broke the promotion lock %s of %s: %s", self.name, _holder_text(holder), reason
                )
        finally:
            self._delete(self.breaker)
        return True


def _holder_text(holder: dict[str, str]) -> str:
    run = holder.get(RegistryLock.RUN)
    host, pid = holder.get(liveness.HOST_TAG, "?"), holder.get(liveness.PID_TAG, "?")
    since = holder.get(RegistryLock.SINCE, "?")
    return f"{f'run {run}' if run else 'a process'} (host {host}, pid {pid}, since {since})"
