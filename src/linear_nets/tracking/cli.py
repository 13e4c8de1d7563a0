"""``kedro runs``: keep the MLflow store true to what happened and to where the project is.

``kedro runs clean`` marks KILLED the runs of this host still RUNNING whose process is gone
(SIGKILL, power loss); ``kedro runs relocate`` points the store's artifact locations into this
project folder after it was moved or copied. Every ``kedro run`` does both on its own.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.group(name="runs")
def runs() -> None:
    """Housekeeping of the MLflow runs of this project."""


def _open_store(env: str | None) -> tuple[str, list[str]]:
    """Set the project's MLflow store up as a run would (the tracking hook creates, migrates
    and re-roots it); return its URI and the artifact roots the hook moved."""
    import mlflow
    from kedro.framework.project import settings
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from linear_nets.tracking.hook import MlflowTrackingHook

    project = Path.cwd()
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env) as session:
        session.load_context()
    hooks = [hook for hook in settings.HOOKS if isinstance(hook, MlflowTrackingHook)]
    return mlflow.get_tracking_uri(), [line for hook in hooks for line in hook.relocated]


@runs.command()
@click.option("--env", "-e", default=None, help="Kedro configuration environment.")
def clean(env: str | None) -> None:
    """Mark KILLED the RUNNING runs of this host whose process no longer exists."""
    import mlflow

    from linear_nets.tracking.liveness import mark_dead_runs_killed

    uri, _ = _open_store(env)
    killed = mark_dead_runs_killed(
        mlflow.MlflowClient(uri), reason="its process was gone (kedro runs clean)"
    )
    for run_id in killed:
        click.echo(f"KILLED {run_id}")
    click.echo(f"{len(killed)} run(s) marked KILLED in {uri}")


@runs.command()
@click.option("--env", "-e", default=None, help="Kedro configuration environment.")
def relocate(env: str | None) -> None:
    """Point the store's artifact locations into this project folder (after a move or copy)."""
    from linear_nets.tracking.store import ARTIFACTS_DIR

    uri, moved = _open_store(env)
    for line in moved:
        click.echo(f"moved {line}")
    click.echo(f"Artifact locations in {uri} point into {Path.cwd() / ARTIFACTS_DIR}")
