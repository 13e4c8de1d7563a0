"""Project hooks: what kedro-mlflow does not record on its own.

kedro-mlflow opens one MLflow run per ``kedro run`` and logs plain parameters. This hook adds
the typed (pydantic) parameters flattened to ``<pipeline>.train.lr``-style keys, and tags each
run with the training device, the torch version and the git commit.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from pydantic import BaseModel

logger = logging.getLogger(__name__)


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """Flatten nested dicts and pydantic models into ``{"a.b.c": leaf}``."""
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if not isinstance(value, dict):
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        flat.update(flatten(f"{prefix}.{key}" if prefix else str(key), item))
    return flat


def git_commit(path: Path) -> str:
    """The commit checked out at ``path`` (``-dirty`` with local changes), or ``unknown``."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=path,
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=path,
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


class MlflowRunDetailsHook:
    """Tag the MLflow run and log typed parameters, flattened, as kedro-mlflow runs them."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        import mlflow
        import torch

        from linear_nets.engine.config import TrainConfig
        from linear_nets.engine.devices import DeviceError, resolve_device

        if mlflow.active_run() is None:
            return
        tags = {
            "torch_version": torch.__version__,
            "git_commit": git_commit(Path(run_params.get("project_path") or Path.cwd())),
        }
        for name in sorted(pipeline.inputs()):
            if not name.startswith("params:"):
                continue
            value = catalog.load(name)
            if isinstance(value, TrainConfig):
                try:
                    tags["device"] = str(resolve_device(value.device))
                except DeviceError:
                    tags["device"] = f"{value.device} (unavailable)"
        mlflow.set_tags(tags)

    @hook_impl
    def before_node_run(self, node: Any, inputs: dict[str, Any]) -> None:
        import mlflow

        if mlflow.active_run() is None:
            return
        params: dict[str, Any] = {}
        for name, value in inputs.items():
            if name.startswith("params:") and isinstance(value, BaseModel):
                params.update(flatten(name.removeprefix("params:"), value))
        if params:
            mlflow.log_params({key: "None" if v is None else v for key, v in params.items()})
