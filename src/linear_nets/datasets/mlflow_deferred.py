"""MLflow logging that waits until the whole pipeline has succeeded.

Datasets that log to MLflow (metrics, the pyfunc model) hand their logging here. While a Kedro
run is in progress (the project hook has armed its MLflow run), the logging is queued, then
carried out when the pipeline completes, or dropped when it fails: a FAILED run carries no
final metrics and registers no model. Outside a hooked run the logging happens at once.
"""

from __future__ import annotations

from collections.abc import Callable

Action = Callable[[str], None]
"""Logging to do, given the MLflow run id."""

_queues: dict[str, list[Action]] = {}


def log_when_done(action: Action) -> None:
    """Run ``action(run_id)`` for the active MLflow run now, or after the pipeline succeeds."""
    import mlflow

    run = mlflow.active_run()
    if run is None:
        return
    queue = _queues.get(run.info.run_id)
    if queue is None:
        action(run.info.run_id)
    else:
        queue.append(action)


def arm(run_id: str) -> None:
    """Start queueing the logging aimed at ``run_id``."""
    _queues[run_id] = []


def commit(run_id: str) -> None:
    """Carry out, in order, the logging queued for ``run_id``."""
    for action in _queues.pop(run_id, []):
        action(run_id)


def discard(run_id: str) -> None:
    """Drop the logging queued for ``run_id``."""
    _queues.pop(run_id, None)
