"""The one component that tells MLflow about a ``kedro run``: it owns the run's lifecycle.

kedro-mlflow's own hook is disabled (``DISABLE_HOOKS_FOR_PLUGINS`` in ``settings.py``); the
project keeps kedro-mlflow for its ``conf/<env>/mlflow.yml`` layout, ``kedro mlflow ui`` and
its registry dataset. Owning the lifecycle, through MLflow's public client, is what lets a run's
status tell the truth: kedro-mlflow ends every run it opened FINISHED, Ctrl-C included, and
offers no step between the pipeline's end and the run's end for the registry.

For each ``kedro run`` of a tracked pipeline this hook:

- reads ``mlflow.yml`` (:mod:`.settings`), exports its credentials, points MLflow at the store
  and creates or migrates a SQLite store once, under a lock (:mod:`.store`);
- makes every versioned dataset the pipeline writes save, and load back, the run's own version,
  one no other run of the project has (:mod:`.save_versions`, :mod:`linear_nets.compat`), so a
  run never reads the files of a run beside it;
- opens one run in the experiment ``<experiment.name>.<pipeline>`` (``linear_nets.boston``),
  with its parameters (flattened: ``boston.train.lr``) and tags, after marking KILLED the runs
  of this host whose process died (:mod:`.liveness`);
- after the pipeline succeeded, publishes what it produced (:mod:`.publish`) and ends the run
  FINISHED; a failure ends it FAILED, Ctrl-C or SIGTERM KILLED, and undoes what was published.
  A signal that arrives while the run writes the store (opening it, publishing) waits until
  that is done (:func:`_signals_deferred`).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import re
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from linear_nets import compat
from linear_nets.tracking import liveness, save_versions, settings, store

logger = logging.getLogger(__name__)

_OBJECT_REPR = re.compile(r"^<(?:[\w.]+\.)?(\w+) object at 0x[0-9a-f]+>$")
MAX_PARAM_LENGTH = 6000  # MLflow refuses longer parameter values
_SIGNALS = (signal.SIGINT, signal.SIGTERM)
ABANDONED_RUN_ATTEMPTS = 5
"""Attempts to end an interrupted run at exit, each begun again when yet another signal lands
before the handlers are held."""


class Terminated(KeyboardInterrupt):
    """SIGTERM received during a run: unwinds like Ctrl-C, and the run ends KILLED."""


@dataclass
class _Run:
    """What the hook holds for the MLflow run in progress."""

    run_id: str
    owned: bool  # False when the run was opened before `kedro run` (not ours to end)
    save_version: str
    publication: Any = None
    previous_handlers: dict[int, Any] = field(default_factory=dict)


class MlflowTrackingHook:
    """Open, publish and end one MLflow run per ``kedro run`` (see the module docstring)."""

    def __init__(self) -> None:
        self._settings = settings.TrackingSettings()
        self._project = Path.cwd()
        self._run: _Run | None = None
        self._exit_handler_registered = False

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        import mlflow

        self._project = Path(context.project_path)
        self._settings = settings.load(context.config_loader)
        self._settings.export_credentials()
        uri = _absolute(self._settings.uri, self._project)
        mlflow.set_tracking_uri(uri)
        if self._settings.registry_uri:
            mlflow.set_registry_uri(_absolute(self._settings.registry_uri, self._project))
        store.prepare_store(uri)
        # where kedro-mlflow's CLI (`kedro mlflow ui`) looks for its configuration
        setattr(context, "mlflow", settings.kedro_mlflow_config(self._settings, uri))  # noqa: B010

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        import mlflow

        project = Path(run_params.get("project_path") or self._project)
        save_version = save_versions.reserve(str(run_params["run_id"]), project)
        outputs = {name: catalog.get(name) for name in sorted(pipeline.all_outputs())}
        configs = catalog.to_config()[0]
        versioned = [configs[name] for name in outputs if configs.get(name, {}).get("versioned")]
        paths = [config["filepath"] for config in versioned if "filepath" in config]
        for line in save_versions.adopt_unversioned(paths, project):
            logger.warning("%s", line)
        for dataset in outputs.values():
            compat.pin_save_and_load_version(dataset, save_version)
        if self._run is not None:  # a run of this process that never came back (interrupted)
            self._end(self._run, "KILLED", "interrupted")
        names = run_params.get("pipeline_names") or ["__default__"]
        if not self._settings.tracks(names):
            return
        client = mlflow.MlflowClient()
        with _signals_deferred() as received:  # the store is written: see _signals_deferred
            active = mlflow.active_run()
            if active is not None:  # a run the user opened (a notebook): record into it
                self._run = _Run(active.info.run_id, owned=False, save_version=save_version)
            else:
                uri = mlflow.get_tracking_uri()
                experiment = store.ensure_experiment(self._settings.experiment(names), uri)
                store.check_artifact_root(experiment, uri, project)
                for line in liveness.mark_dead_runs_killed(
                    client, reason="its process was gone when a later run started", project=project
                ):
                    logger.warning("Runs whose process died: %s", line)
                # the client creates the run without MLflow's notebook and Databricks probes
                run = client.create_run(experiment.experiment_id, run_name=",".join(names))
                mlflow.start_run(run_id=run.info.run_id)  # the active run, for log_model
                self._run = _Run(run.info.run_id, owned=True, save_version=save_version)
            if not self._exit_handler_registered:
                atexit.register(self._end_abandoned_run)  # runs before MLflow's own exit handler
                self._exit_handler_registered = True
            log_parameters(client, self._run.run_id, pipeline, catalog)
            tags = run_tags(run_params, pipeline, catalog, save_version)
            client.log_batch(self._run.run_id, tags=_tag_entities(tags))
        if received:  # ended KILLED at exit
            raise _interruption(received[0])
        self._catch_signals(self._run)

    @hook_impl
    def after_pipeline_run(self, pipeline: Any, catalog: Any) -> None:
        from linear_nets.tracking.publish import Publication

        state = self._run
        if state is None:
            return
        try:
            # a signal waits until the publication is whole (seconds): the run then ends
            # FINISHED, with its metrics and model, and the process stops as it was asked to
            with _signals_deferred() as received:
                state.publication = Publication(state.run_id)
                state.publication.publish(pipeline, catalog)
        except BaseException as error:
            status = "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
            self._end(state, status, f"publishing the run failed: {_describe(error)}")
            raise
        self._end(state, "FINISHED", None)
        if received:
            logger.warning(
                "%s came while run %s was publishing: the run was completed first (FINISHED)",
                signal.Signals(received[0]).name,
                state.run_id,
            )
            raise _interruption(received[0])

    @hook_impl
    def on_pipeline_error(self, error: Exception) -> None:
        if self._run is not None:
            self._end(self._run, "FAILED", _describe(error))

    def _catch_signals(self, state: _Run) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def terminate(signum: int, frame: Any) -> None:
            raise Terminated(f"signal {signal.Signals(signum).name}")

        state.previous_handlers[signal.SIGTERM] = signal.signal(signal.SIGTERM, terminate)

    def _end(self, state: _Run, status: str, reason: str | None) -> None:
        """Undo what a failed run published, and end it with ``status``, saying why. A second
        Ctrl-C or SIGTERM meanwhile (a terminal, ``timeout`` and CI runners signal the whole
        process group, often twice) waits until the run's status is recorded."""
        import mlflow

        with _signals_held():
            try:
                client = mlflow.MlflowClient()
                if status != "FINISHED" and state.publication is not None:
                    _attempt("undo what run %s published", state.run_id, state.publication.rollback)
                if reason:
                    tag = partial(client.set_tag, state.run_id, liveness.END_REASON_TAG)
                    _attempt("record why run %s ended", state.run_id, partial(tag, reason[:5000]))
                if state.owned:
                    active = mlflow.active_run()
                    if active is not None and active.info.run_id == state.run_id:
                        _attempt("end run %s", state.run_id, partial(mlflow.end_run, status))
                    else:
                        _attempt(
                            "end run %s",
                            state.run_id,
                            partial(client.set_terminated, state.run_id, status),
                        )
            finally:
                self._release(state)

    def _release(self, state: _Run) -> None:
        if self._run is state:
            self._run = None
        if threading.current_thread() is threading.main_thread():
            for signum, handler in state.previous_handlers.items():
                signal.signal(signum, handler)
        state.previous_handlers.clear()

    def _end_abandoned_run(self) -> None:
        """At exit: a run still in progress was interrupted (Ctrl-C, SIGTERM): end it KILLED
        before MLflow's own exit handler would mark it FINISHED."""
        for _ in range(ABANDONED_RUN_ATTEMPTS):
            try:
                if self._run is not None:
                    self._end(self._run, "KILLED", "interrupted (Ctrl-C or SIGTERM)")
                return
            except KeyboardInterrupt:
                # a repeated signal landed before the handlers were held: without another
                # attempt the run would be left to MLflow's exit handler, which ends it FINISHED
                continue


def _attempt(what: str, run_id: str, step: Any) -> None:
    """Do one step of ending a run; when it fails (a tracking server that went away) say so
    and go on: the run's status must still be attempted, and the next run (or ``kedro runs
    clean``) marks a run left RUNNING by a dead process KILLED once the store answers."""
    try:
        step()
    except Exception as error:
        logger.warning("Could not %s: %s", what % run_id, _describe(error).splitlines()[0])


@contextlib.contextmanager
def _signals_held() -> Any:
    """Within: SIGINT and SIGTERM are ignored (main thread only; elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    while len(previous) < len(_SIGNALS):
        try:
            for signum in _SIGNALS:
                if signum not in previous:
                    previous[signum] = signal.signal(signum, signal.SIG_IGN)
        except KeyboardInterrupt:
            # A signal already on its way (the second SIGTERM a process group gets) ran its
            # handler between two of these calls: carry on, it is ignored from here. (Its
            # handler may then be lost and SIG_IGN restored instead; the run's own handlers
            # are put back by ``_release``.)
            continue
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def _signals_deferred() -> Any:
    """Within: SIGINT and SIGTERM are recorded in the yielded list instead of interrupting
    (main thread only). An interruption raised inside the MLflow client can leave a SQLite write
    transaction of this process open: every later write, of this process (ending its run) and
    of every run sharing the store, then waits for it and fails ``database is locked``."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def record(signum: int, frame: Any) -> None:
        received.append(signum)

    previous = {signum: signal.signal(signum, record) for signum in _SIGNALS}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _interruption(signum: int) -> KeyboardInterrupt:
    """What a signal raises once it may: Ctrl-C's KeyboardInterrupt, or :class:`Terminated`."""
    if signum == signal.SIGINT:
        return KeyboardInterrupt()
    return Terminated(f"signal {signal.Signals(signum).name}")


def _absolute(uri: str, project: Path) -> str:
    """A relative ``sqlite:///`` path resolved against the project, as kedro-mlflow did."""
    path = store.sqlite_path(uri)
    if path is None or path.is_absolute():
        return uri
    rest = uri[len("sqlite:///") + len(str(path).split("?")[0]) :]
    return f"sqlite:///{(project / path).as_posix()}{rest}"


def log_parameters(client: Any, run_id: str, pipeline: Any, catalog: Any) -> dict[str, str]:
    """Log the ``params:`` inputs of the pipeline, flattened (``boston.train.lr``); typed ones
    as their fields. Returns what was logged."""
    from mlflow.entities import Param

    values: dict[str, Any] = {}
    for name in sorted(pipeline.inputs()):
        if name == "parameters":
            values |= _flat(_plain(catalog.load(name)))
        elif name.startswith("params:"):
            value = _plain(catalog.load(name))
            key = name.removeprefix("params:")
            values |= _flat(value, key) if isinstance(value, dict) else {key: value}
    logged = {key: str(value)[:MAX_PARAM_LENGTH] for key, value in values.items()}
    entities = [Param(key, value) for key, value in logged.items()]
    for start in range(0, len(entities), 100):  # MLflow takes at most 100 params per batch
        client.log_batch(run_id, params=entities[start : start + 100])
    return logged


def _plain(value: Any) -> Any:
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value


def _tag_entities(tags: dict[str, str]) -> list[Any]:
    from mlflow.entities import RunTag

    return [RunTag(key, value[:5000]) for key, value in tags.items()]


def run_tags(
    run_params: dict[str, Any], pipeline: Any, catalog: Any, save_version: str
) -> dict[str, str]:
    """The tags the project sets on a run (and readable values for kedro-mlflow's)."""
    import getpass

    import torch

    from linear_nets.engine.config import TrainConfig
    from linear_nets.engine.devices import DeviceError, resolve_device

    # every run parameter of Kedro's that has a value, readable
    tags = {key: _readable(value) for key, value in run_params.items() if value}
    with contextlib.suppress(Exception):  # MLflow's own user tag (no user in some containers)
        tags["mlflow.user"] = getpass.getuser()
    tags["mlflow.source.type"] = "LOCAL"
    tags["mlflow.source.name"] = "kedro run"
    tags.pop("run_id", None)
    if tags.get("runner", "None") == "None":  # no runner given: Kedro's default
        tags["runner"] = "SequentialRunner"
    tags[liveness.SAVE_VERSION_TAG] = save_version
    tags["torch_version"] = torch.__version__
    commit, dirty = git_commit(Path(run_params.get("project_path") or Path.cwd()))
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags["linear_nets.git_dirty"] = str(dirty).lower()
    tags |= liveness.process_tags()
    for name in sorted(pipeline.inputs()):
        if not name.startswith("params:"):
            continue
        for config in _find(catalog.load(name), TrainConfig):
            try:
                tags["device"] = str(resolve_device(config.device))
            except DeviceError:
                tags["device"] = f"{config.device} (unavailable)"
    runtime = dict(run_params.get("runtime_params") or {})
    sweep = runtime.pop("sweep", None)
    names = run_params.get("pipeline_names") or ["__default__"]
    command = f"kedro run --pipelines={','.join(names)}"
    if runtime:
        flat = ",".join(f"{key}={value}" for key, value in _flat(runtime).items())
        command += f' --params="{flat}"'
    if run_params.get("env"):
        command += f" --env={run_params['env']}"
    tags["kedro_command"] = command
    if isinstance(sweep, dict):
        tags["sweep"] = str(sweep.get("id"))
        tags["mlflow.runName"] = f"{','.join(names)} {sweep.get('label', '')}".strip()
    return tags


def _readable(value: Any) -> str:
    """A tag value a person can read: no ``<object at 0x…>``, lists joined, dicts as JSON."""
    if isinstance(value, list | tuple | set):
        return ",".join(str(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    text = str(value)
    match = _OBJECT_REPR.match(text)
    return match.group(1) if match else text


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        flat |= _flat(value, dotted) if isinstance(value, dict) else {dotted: value}
    return flat


def _find(value: Any, kind: type) -> list[Any]:
    """Every instance of ``kind`` in ``value``, looking inside pydantic models and dicts."""
    from pydantic import BaseModel

    if isinstance(value, kind):
        return [value]
    if isinstance(value, BaseModel):
        value = dict(value)
    if isinstance(value, dict):
        return [found for item in value.values() for found in _find(item, kind)]
    return []


def git_commit(path: Path) -> tuple[str | None, bool]:
    """The commit checked out at ``path`` and whether tracked files have local changes;
    ``(None, False)`` outside a git checkout."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=path, capture_output=True, text=True, check=True, timeout=5
        )
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None, False
    return commit, bool(dirty)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
