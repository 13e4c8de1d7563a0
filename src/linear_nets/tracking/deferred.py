"""MLflow logging that waits until the whole pipeline has succeeded, then happens in phases.

Datasets that log to MLflow (metrics, the model) hand their logging to :func:`log_when_done`.
While a Kedro run is in progress the tracking hook holds a :class:`DeferredLog` for its MLflow
run; the actions queue there and run once the pipeline completed, phase by phase:

1. ``"model"``: log the model and register a version;
2. ``"metrics"``: the final metrics;
3. ``"promote"``: move the ``@champion`` alias.

If any action fails (or the process is interrupted meanwhile), every model version this run
registered is deleted and the aliases are put back as they were, and the error propagates:
the hook ends the run FAILED (KILLED on a signal). Outside a hooked run the logging happens
at once, into the active MLflow run if there is one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar, Token

Action = Callable[[str], None]
"""Logging to do, given the MLflow run id."""

PHASES = ("model", "metrics", "promote")

logger = logging.getLogger(__name__)


class DeferredLog:
    """The logging one MLflow run holds back, queued per phase."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self._queues: dict[str, list[Action]] = {phase: [] for phase in PHASES}

    def add(self, action: Action, phase: str) -> None:
        """Queue ``action`` for ``phase``."""
        self._queues[_checked(phase)].append(action)

    def commit(self) -> None:
        """Carry out the queued actions in phase order; on any failure undo the registrations
        (see :meth:`rollback`) and re-raise."""
        queues, self._queues = self._queues, {phase: [] for phase in PHASES}
        aliases: dict[str, dict[str, str]] | None = None
        try:
            for phase in PHASES:
                if phase == "promote" and queues[phase]:
                    aliases = _aliases_of_models_registered_by(self.run_id)
                for action in queues[phase]:
                    action(self.run_id)
        except BaseException:
            self.rollback(aliases)
            raise

    def rollback(self, aliases: dict[str, dict[str, str]] | None = None) -> list[str]:
        """Drop what is queued, put ``aliases`` (``{model: {alias: version}}``) back and delete
        every model version registered by this run. Returns ``name/version`` of the deleted."""
        self._queues = {phase: [] for phase in PHASES}
        from mlflow import MlflowClient

        client = MlflowClient()
        for name, before in (aliases or {}).items():
            now = client.get_registered_model(name).aliases
            for alias in set(now) - set(before):
                client.delete_registered_model_alias(name, alias)
            for alias, version in before.items():
                if now.get(alias) != version:
                    client.set_registered_model_alias(name, alias, version)
        deleted = []
        for version in client.search_model_versions(f"run_id = '{self.run_id}'"):
            client.delete_model_version(version.name, version.version)
            deleted.append(f"{version.name}/{version.version}")
        if deleted:
            logger.warning("Deleted the model versions of run %s: %s", self.run_id, deleted)
        return deleted


def _aliases_of_models_registered_by(run_id: str) -> dict[str, dict[str, str]]:
    from mlflow import MlflowClient

    client = MlflowClient()
    names = {version.name for version in client.search_model_versions(f"run_id = '{run_id}'")}
    return {name: dict(client.get_registered_model(name).aliases) for name in names}


def _checked(phase: str) -> str:
    if phase not in PHASES:
        raise ValueError(f"unknown logging phase {phase!r}; expected one of {PHASES}")
    return phase


_current: ContextVar[DeferredLog | None] = ContextVar("linear_nets_deferred_log", default=None)


def activate(log: DeferredLog) -> Token[DeferredLog | None]:
    """Make ``log`` receive the :func:`log_when_done` calls of this context (the hook, at the
    start of a run); hand the token back to :func:`deactivate` at the end."""
    return _current.set(log)


def deactivate(token: Token[DeferredLog | None]) -> None:
    """Stop deferring into the log :func:`activate` returned ``token`` for."""
    _current.reset(token)


def active_log() -> DeferredLog | None:
    """The :class:`DeferredLog` of the run in progress in this context, if any."""
    return _current.get()


def log_when_done(action: Action, phase: str = "metrics") -> None:
    """Run ``action(run_id)`` once the pipeline has succeeded (in ``phase``), or at once into the
    active MLflow run when no Kedro run is deferring."""
    _checked(phase)
    log = _current.get()
    if log is not None:
        log.add(action, phase)
        return
    import mlflow

    run = mlflow.active_run()
    if run is not None:
        action(run.info.run_id)
