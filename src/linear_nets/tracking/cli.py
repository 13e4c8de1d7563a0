"""``kedro runs clean``: keep the MLflow store true to what happened.

It marks KILLED the runs of this host still RUNNING whose process is gone (SIGKILL, power
loss), deletes the model versions those runs registered and gives ``@champion`` back to the best
version of a finished run where it pointed at one of them. Every ``kedro run`` does the same
when it starts.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.group(name="runs")
def runs() -> None:
    """Housekeeping of the MLflow runs of this project."""


@runs.command()
@click.option("--env", "-e", default=None, help="Kedro configuration environment.")
def clean(env: str | None) -> None:
    """Mark KILLED the RUNNING runs of this host whose process no longer exists, and remove
    the model versions they registered, the models they logged and their files under data/."""
    import mlflow
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from linear_nets.tracking.liveness import mark_dead_runs_killed

    project = Path.cwd()
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env) as session:
        session.load_context()  # the tracking hook points MLflow at the environment's store
    uri = mlflow.get_tracking_uri()
    lines = mark_dead_runs_killed(
        mlflow.MlflowClient(uri), reason="its process was gone (kedro runs clean)", project=project
    )
    for line in lines:
        click.echo(line)
    killed = sum(line.startswith("KILLED ") for line in lines)
    click.echo(f"{killed} run(s) marked KILLED in {uri}")
