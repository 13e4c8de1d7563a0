"""The one component that tells MLflow about a ``kedro run``: kedro-mlflow's hook, driven.

kedro-mlflow opens an MLflow run per ``kedro run``, logs parameters and closes the run. This
hook wraps it (the plugin's own registration is disabled in ``settings.py``) to add what the
project needs around it:

- the SQLite store is created/migrated under a file lock before anything opens it, and its
  artifact roots follow the project folder (:mod:`linear_nets.tracking.store`);
- one experiment per pipeline, ``<experiment.name>.<pipeline>`` (``linear_nets.boston``);
- every versioned dataset the pipeline writes is pinned to load the run's own save version,
  so a run never reads files of a run beside it, and that version is one no other run of the
  project has, even one started in the same millisecond (:mod:`.save_versions`);
- parameters logged once, typed ones flattened (``boston.train.lr``), and tags without object
  reprs; the git commit as ``mlflow.source.git.commit``;
- the datasets' MLflow logging is deferred until the pipeline succeeded, then done in phases
  (:mod:`linear_nets.tracking.deferred`); a failure there ends the run FAILED;
- Ctrl-C and SIGTERM end the run KILLED; runs of this host whose process died are marked KILLED
  at the start of the next run (:mod:`linear_nets.tracking.liveness`).
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
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from linear_nets.tracking import deferred, liveness, mlflow_checks, save_versions, store

logger = logging.getLogger(__name__)

MLFLOW_CONFIG_PATTERNS = ["mlflow*", "mlflow*/**", "**/mlflow*"]
_OBJECT_REPR = re.compile(r"^<(?:[\w.]+\.)?(\w+) object at 0x[0-9a-f]+>$")


class Terminated(KeyboardInterrupt):
    """SIGTERM received during a run: unwinds like Ctrl-C, and the run ends KILLED."""


class _Run:
    """What the hook holds for the MLflow run in progress."""

    def __init__(self, run_id: str, owned: bool) -> None:
        self.run_id = run_id
        self.owned = owned  # False when the run was opened before `kedro run` (not ours to end)
        self.log = deferred.DeferredLog(run_id)
        self.token = deferred.activate(self.log)
        self.logged_params: set[str] = set()
        self.previous_sigterm: Any = None


class MlflowTrackingHook:
    """kedro-mlflow's hook plus the project's run lifecycle (see the module docstring)."""

    def __init__(self) -> None:
        self._mlflow: Any = None  # kedro-mlflow's MlflowHook, created with each context
        self._uri: str | None = None
        self._experiment_prefix = "linear_nets"
        self._run: _Run | None = None
        self._exit_handler_registered = False
        self.relocated: list[str] = []  # artifact roots moved into this project at start-up

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        from kedro.config import MissingConfigException
        from kedro_mlflow.framework.hooks.mlflow_hook import MlflowHook

        # a fresh one per session: kedro-mlflow's keeps the last run id, and would re-open that
        # run in the nodes of a later untracked pipeline run in the same process
        self._mlflow = MlflowHook()
        loader = context.config_loader
        loader.config_patterns.setdefault("mlflow", MLFLOW_CONFIG_PATTERNS)
        try:
            conf = dict(loader["mlflow"])
        except MissingConfigException:
            conf = {}
        self._uri = (conf.get("server") or {}).get("mlflow_tracking_uri") or "sqlite:///mlflow.db"
        tracking = dict(conf.get("tracking") or {})
        experiment = dict(tracking.get("experiment") or {})
        self._experiment_prefix = experiment.get("name") or context._package_name or "linear_nets"
        # kedro-mlflow opens the "Default" experiment (which migrating the store creates); the
        # run's own experiment, named after its pipeline, is chosen in before_pipeline_run.
        experiment["name"] = "Default"
        loader["mlflow"] = conf | {"tracking": tracking | {"experiment": experiment}}
        self.relocated = store.prepare_store(self._uri, Path(context.project_path))
        with store.store_lock(self._uri):
            self._mlflow.after_context_created(context)

    @hook_impl
    def after_catalog_created(self, catalog: Any) -> None:
        # kedro-mlflow names its metric datasets after their catalog entries (only the catalog)
        if self._mlflow is not None:
            self._mlflow.after_catalog_created(
                catalog=catalog,
                conf_catalog=None,
                conf_creds=None,
                parameters=None,
                save_version=None,
                load_versions=None,
            )

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        import mlflow
        from kedro_mlflow.framework.hooks.utils import _assert_mlflow_enabled

        project = Path(run_params.get("project_path") or Path.cwd())
        save_version = save_versions.reserve(str(run_params["run_id"]), project)
        pin_own_versions(pipeline, catalog, save_version)
        if self._run is not None:  # a run of this process that never came back (interrupted)
            self._end(self._run, "KILLED", "interrupted")
        names = run_params.get("pipeline_names") or ["__default__"]
        config = self._mlflow.mlflow_config
        if _assert_mlflow_enabled(names, config) and not mlflow.active_run():
            self._use_experiment(f"{self._experiment_prefix}.{'+'.join(names)}")
            client = mlflow.MlflowClient()
            killed = liveness.mark_dead_runs_killed(
                client, reason="its process was gone when a later run started"
            )
            if killed:
                logger.warning("Marked KILLED the runs whose process died: %s", killed)
        mlflow_checks.skip_notebook_probes_without_ipython()  # start_run's notebook probes
        self._mlflow.before_pipeline_run(run_params, pipeline, catalog)
        run = mlflow.active_run()
        if run is None or not self._mlflow._is_mlflow_enabled:
            return
        self._run = _Run(run.info.run_id, owned=not self._mlflow._already_active_mlflow)
        self._catch_sigterm(self._run)
        if not self._exit_handler_registered:
            atexit.register(self._end_abandoned_run)  # runs before MLflow's own exit handler
            self._exit_handler_registered = True
        mlflow.set_tags(run_tags(run_params, pipeline, catalog, save_version))
        with contextlib.suppress(mlflow.MlflowException):  # session id; see kedro.save_version
            mlflow.MlflowClient().delete_tag(run.info.run_id, "run_id")

    @hook_impl
    def before_node_run(
        self, node: Any, catalog: Any, inputs: dict[str, Any], is_async: bool
    ) -> None:
        if self._mlflow is None:
            return
        from pydantic import BaseModel

        if self._run is not None and deferred.active_log() is not self._run.log:
            # a worker thread of ThreadRunner: context variables do not follow it there
            deferred.activate(self._run.log)

        params: dict[str, Any] = {}
        for name, value in inputs.items():
            if not (name.startswith("params:") or name == "parameters"):
                continue
            if self._run is not None and name in self._run.logged_params:
                continue
            params[name] = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
            if self._run is not None:
                self._run.logged_params.add(name)
        # kedro-mlflow logs them (flattened with "."), and re-opens the run in a worker thread
        self._mlflow.before_node_run(node, catalog, params, is_async)

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        state = self._run
        if state is not None:
            try:
                state.log.commit()
            except BaseException as error:
                status = "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
                self._end(state, status, f"logging at the end failed: {_describe(error)}")
                raise
        self._mlflow.after_pipeline_run(run_params, pipeline, catalog)  # ends it FINISHED
        if state is not None:
            self._release(state)

    @hook_impl
    def on_pipeline_error(
        self, error: Exception, run_params: dict[str, Any], pipeline: Any, catalog: Any
    ) -> None:
        state = self._run
        if state is None:
            if self._mlflow is not None and self._mlflow._is_mlflow_enabled:
                self._mlflow.on_pipeline_error(error, run_params, pipeline, catalog)
            return
        self._end(state, "FAILED", _describe(error))

    def _use_experiment(self, name: str) -> None:
        """Make ``name`` the experiment kedro-mlflow opens the run in (created once)."""
        import mlflow

        experiment = self._mlflow.mlflow_config.tracking.experiment
        options = experiment.create_experiment_kwargs
        created = store.ensure_experiment(
            name,
            mlflow.get_tracking_uri(),
            artifact_location=options.artifact_location,
            tags=options.tags,
        )
        experiment.name = name
        experiment._experiment = created
        mlflow.set_experiment(experiment_id=created.experiment_id)

    def _catch_sigterm(self, state: _Run) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def terminate(signum: int, frame: Any) -> None:
            raise Terminated(f"signal {signal.Signals(signum).name}")

        state.previous_sigterm = signal.signal(signal.SIGTERM, terminate)

    def _release(self, state: _Run) -> None:
        """Forget ``state``: stop deferring, give SIGTERM its previous handler."""
        if self._run is state:
            self._run = None
        deferred.deactivate(state.token)
        if state.previous_sigterm is not None and (
            threading.current_thread() is threading.main_thread()
        ):
            signal.signal(signal.SIGTERM, state.previous_sigterm)

    def _end(self, state: _Run, status: str, reason: str) -> None:
        """Undo what the run registered, and end it with ``status``, saying why."""
        import mlflow

        try:
            try:
                state.log.rollback()
            except Exception:  # the run must still end with its status
                logger.exception("Could not delete the model versions of run %s", state.run_id)
            client = mlflow.MlflowClient()
            client.set_tag(state.run_id, liveness.END_REASON_TAG, reason[:5000])
            if state.owned:
                while (active := mlflow.active_run()) is not None:
                    mlflow.end_run(status)
                    if active.info.run_id == state.run_id:
                        break
                else:
                    client.set_terminated(state.run_id, status)
        finally:
            self._release(state)

    def _end_abandoned_run(self) -> None:
        """At exit: a run still in progress was interrupted (Ctrl-C, SIGTERM): end it KILLED
        before MLflow's own exit handler would mark it FINISHED."""
        if self._run is not None:
            self._end(self._run, "KILLED", "interrupted (Ctrl-C or SIGTERM)")


def pin_own_versions(pipeline: Any, catalog: Any, save_version: str) -> list[str]:
    """Make every versioned dataset the pipeline writes save ``save_version`` (the run's
    session id) and load that same version.

    Kedro loads the newest version by default: the one a concurrent run may have just written.
    Returns the names of the datasets pinned.
    """
    from kedro.io.core import AbstractVersionedDataset, Version

    pinned = []
    for name in sorted(pipeline.all_outputs()):
        dataset = catalog.get(name)
        version = getattr(dataset, "_version", None)
        if (
            isinstance(dataset, AbstractVersionedDataset)
            and version is not None
            and version.load is None
        ):
            dataset._version = Version(save_version, save_version)
            pinned.append(name)
    return pinned


def run_tags(
    run_params: dict[str, Any], pipeline: Any, catalog: Any, save_version: str
) -> dict[str, str]:
    """The tags the project sets on a run (and readable values for kedro-mlflow's)."""
    import torch

    from linear_nets.engine.config import TrainConfig
    from linear_nets.engine.devices import DeviceError, resolve_device

    # kedro-mlflow tagged the run with every run parameter that has a value: make them readable
    tags = {key: _readable(value) for key, value in run_params.items() if value}
    tags.pop("run_id", None)
    if tags.get("runner", "None") == "None":  # no runner given: Kedro's default
        tags["runner"] = "SequentialRunner"
    tags["kedro.save_version"] = save_version
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
