"""Helpers for tests that run pipelines through a Kedro session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project


def run_pipeline(
    project: Path, pipeline: str, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run ``pipeline`` through a real Kedro session in ``project``, as ``kedro run`` does."""
    bootstrap_project(project)
    with KedroSession.create(project_path=project, runtime_params=params) as session:
        return session.run(pipeline_names=[pipeline])


def mlflow_client(project: Path) -> mlflow.MlflowClient:
    """A client on the project copy's SQLite store."""
    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
