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

from linear_nets.datasets import mlflow_deferred

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


def _find(value: Any, kind: type) -> list[Any]:
    """Every instance of ``kind`` in ``value``, looking inside pydantic models and dicts."""
    if isinstance(value, kind):
        return [value]
    if isinstance(value, BaseModel):
        value = dict(value)
    if isinstance(value, dict):
        return [found for item in value.values() for found in _find(item, kind)]
    return []


class MlflowRunDetailsHook:
    """Tag the MLflow run, log typed parameters flattened, and hold back the datasets' MLflow
    logging (metrics, the pyfunc model) until the pipeline has succeeded."""

    def __init__(self) -> None:
        self._run_id: str | None = None

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        import mlflow
        import torch

        from linear_nets.engine.config import TrainConfig
        from linear_nets.engine.devices import DeviceError, resolve_device

        run = mlflow.active_run()
        if run is None:
            return
        self._run_id = run.info.run_id
        mlflow_deferred.arm(self._run_id)
        tags = {
            "torch_version": torch.__version__,
            "git_commit": git_commit(Path(run_params.get("project_path") or Path.cwd())),
        }
        for name in sorted(pipeline.inputs()):
            if not name.startswith("params:"):
                continue
            for config in _find(catalog.load(name), TrainConfig):
                try:
                    tags["device"] = str(resolve_device(config.device))
                except DeviceError:
                    tags["device"] = f"{config.device} (unavailable)"
        sweep = (run_params.get("runtime_params") or {}).get("sweep")
        if isinstance(sweep, dict):
            names = ",".join(run_params.get("pipeline_names") or [])
            tags["sweep"] = str(sweep.get("id"))
            tags["mlflow.runName"] = f"{names} {sweep.get('label', '')}".strip()
        mlflow.set_tags(tags)

    @hook_impl(tryfirst=True)  # before kedro-mlflow's own hook ends the run
    def after_pipeline_run(self) -> None:
        if self._run_id is not None:
            mlflow_deferred.commit(self._run_id)
            self._run_id = None

    @hook_impl
    def on_pipeline_error(self) -> None:
        if self._run_id is not None:
            mlflow_deferred.discard(self._run_id)
            self._run_id = None

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


class RunSummaryHook:
    """Print what a training run produced: final metrics, model and plot files, MLflow run id."""

    def __init__(self) -> None:
        self._run_id: str | None = None

    @hook_impl
    def before_pipeline_run(self) -> None:
        import mlflow

        run = mlflow.active_run()
        self._run_id = run.info.run_id if run else None

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        from kedro_datasets_experimental.pytorch import PyTorchDataset
        from rich.console import Console
        from rich.table import Table

        from linear_nets.datasets import MlflowMetricsDataset, MlflowPyfuncModelDataset

        metrics: dict[str, float] = {}
        files: list[tuple[str, str]] = []
        for name in sorted(pipeline.all_outputs()):
            dataset = catalog.get(name)
            described = dataset._describe() if dataset is not None else {}
            if isinstance(dataset, MlflowMetricsDataset):
                values = dataset.load()
                metrics.update({k: v for k, v in values.items() if isinstance(v, int | float)})
            elif isinstance(dataset, PyTorchDataset):
                files.append(("model", _saved_path(described)))
            elif isinstance(dataset, MlflowPyfuncModelDataset):
                files.append(("registered", f"models:/{described['registered_model_name']}/latest"))
            elif str(described.get("filepath", "")).endswith(".png"):
                files.append(("plot", str(described["filepath"])))
        if not metrics and not files:
            return
        names = ", ".join(run_params.get("pipeline_names") or ["__default__"])
        root = Path(run_params.get("project_path") or Path.cwd())
        table = Table(title=f"kedro run --pipelines={names}: done", show_header=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for key, value in metrics.items():
            table.add_row(key, f"{value:.6g}")
        order = {"model": 0, "registered": 1, "plot": 2}
        for kind, path in sorted(files, key=lambda item: order[item[0]]):
            table.add_row(kind, _relative(path, root))
        if self._run_id:
            table.add_row("mlflow run", f"{self._run_id}  (kedro mlflow ui)")
        Console().print(table)


def _relative(path: str, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path


def _saved_path(described: dict[str, Any]) -> str:
    """Where a versioned dataset wrote this run's version."""
    filepath = Path(str(described["filepath"]))
    version = described.get("version")
    save = getattr(version, "save", None)
    return str(filepath / save / filepath.name) if save else str(filepath)
