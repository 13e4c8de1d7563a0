"""Project hooks: the end-of-run summary. The MLflow side of a run is
:class:`linear_nets.tracking.hook.MlflowTrackingHook`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from kedro.framework.hooks import hook_impl


class MissingModelError(click.ClickException):
    """A pipeline needs a registered model that no run has registered yet (one line on the CLI)."""


class RunSummaryHook:
    """Check that the registered models a run loads exist, then print what the run produced:
    final metrics, model and plot files, the registered version and whether it became champion
    (or why it was not registered), predictions and the model that made them, the MLflow run."""

    def __init__(self) -> None:
        self._run_id: str | None = None
        self._models: list[tuple[str, str]] = []

    @hook_impl
    def before_pipeline_run(self, pipeline: Any, catalog: Any) -> None:
        import mlflow

        run = mlflow.active_run()
        self._run_id = run.info.run_id if run else None
        self._models = [
            (name, self._resolve(dataset)) for name, dataset in _registry_inputs(pipeline, catalog)
        ]

    @staticmethod
    def _resolve(dataset: Any) -> str:
        """``models:/name@alias (version N)``, or a one-line error naming the pipeline to run."""
        import mlflow

        uri = dataset.model_uri
        try:
            if dataset.alias:
                version = mlflow.MlflowClient().get_model_version_by_alias(
                    dataset.model_name, dataset.alias
                )
                return f"{uri} (version {version.version}, run {version.run_id})"
            mlflow.MlflowClient().get_registered_model(dataset.model_name)
        except mlflow.exceptions.MlflowException:
            trained_by = (dataset.metadata or {}).get("trained_by")
            hint = f": run `kedro run --pipeline={trained_by}` first" if trained_by else ""
            raise MissingModelError(f"no model {uri} in the MLflow registry yet{hint}") from None
        return uri

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        from kedro_datasets_experimental.pytorch import PyTorchDataset
        from rich.console import Console
        from rich.table import Table

        from linear_nets.datasets import MlflowMetricsDataset, MlflowPyfuncModelDataset

        metrics: dict[str, float] = {}
        rows: list[tuple[str, str]] = [("model in", model) for _, model in self._models]
        files: list[tuple[str, str]] = []
        registered = False
        for name in sorted(pipeline.all_outputs()):
            dataset = catalog.get(name)
            described = dataset._describe() if dataset is not None else {}
            if isinstance(dataset, MlflowMetricsDataset):
                values = dataset.load()
                metrics.update({k: v for k, v in values.items() if isinstance(v, int | float)})
            elif isinstance(dataset, PyTorchDataset):
                files.append(("model", _saved_path(described)))
            elif isinstance(dataset, MlflowPyfuncModelDataset):
                registered = True
            elif str(described.get("filepath", "")).endswith(".png"):
                files.append(("plot", _saved_path(described)))
            elif self._models and described.get("filepath"):
                count = len(catalog.load(name))
                files.append(("predictions", f"{_saved_path(described)}  ({count} rows)"))
        if not metrics and not files and not rows:
            return
        names = ", ".join(run_params.get("pipeline_names") or ["__default__"])
        root = Path(run_params.get("project_path") or Path.cwd())
        table = Table(title=f"kedro run --pipelines={names}: done", show_header=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for key, value in metrics.items():
            table.add_row(key, f"{value:.6g}")
        rows += [(kind, _relative(path, root)) for kind, path in files]
        if registered and self._run_id:
            rows += _registry_rows(self._run_id)
        for kind, text in rows:
            table.add_row(kind, text)
        if self._run_id:
            table.add_row("mlflow run", f"{self._run_id}  (kedro mlflow ui)")
        Console().print(table)


def _registry_inputs(pipeline: Any, catalog: Any) -> list[tuple[str, Any]]:
    """The pipeline's inputs that load a model from the MLflow registry."""
    from kedro_mlflow.io.models import MlflowModelRegistryDataset

    found = []
    for name in sorted(pipeline.inputs()):
        if name.startswith("params:"):
            continue
        dataset = catalog.get(name)
        if isinstance(dataset, MlflowModelRegistryDataset):
            found.append((name, dataset))
    return found


def _registry_rows(run_id: str) -> list[tuple[str, str]]:
    """What happened to the run's model: its version and champion outcome, or the refusal."""
    import mlflow

    from linear_nets.tracking import registry

    tags = mlflow.MlflowClient().get_run(run_id).data.tags
    if registry.NOT_REGISTERED_TAG in tags:
        return [("not registered", tags[registry.NOT_REGISTERED_TAG])]
    rows = []
    if registry.VERSION_TAG in tags:
        rows.append(("registered", f"version {tags[registry.VERSION_TAG]}"))
    if registry.CHAMPION_TAG in tags:
        rows.append(("champion", tags[registry.CHAMPION_TAG]))
    return rows


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
