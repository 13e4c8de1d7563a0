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
        from rich.console import Console
        from rich.table import Table

        from linear_nets.tracking.publish import find_outputs, saved_file

        outputs = find_outputs(pipeline, catalog)
        root = Path(run_params.get("project_path") or Path.cwd())
        metrics: dict[str, float] = {}
        for name in outputs.metrics:
            values = catalog.load(name)
            metrics.update({k: v for k, v in values.items() if isinstance(v, int | float)})
        rows: list[tuple[str, str]] = [("model in", model) for _, model in self._models]
        plots: list[Path] = []
        for name in sorted(pipeline.all_outputs()):
            kind = _kind(name, outputs)
            if kind is None:
                continue
            if kind == "plot":  # one row for all of them: they share the run's version folder
                plots.append(saved_file(catalog, name))
                continue
            path = _relative(saved_file(catalog, name), root)
            if kind == "predictions":
                path += f"  ({len(catalog.load(name))} rows)"
            rows.append((kind, path))
        if plots:
            where = _relative(plots[0].parent.parent.parent, root)
            names = ", ".join(plot.name for plot in plots)
            rows.append(("plots", f"{names} (in {where}/<name>/{plots[0].parent.name}/)"))
        if not metrics and not rows:
            return
        names = ", ".join(run_params.get("pipeline_names") or ["__default__"])
        table = Table(title=f"kedro run --pipelines={names}: done", show_header=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for key, value in metrics.items():
            table.add_row(key, f"{value:.6g}")
        registered: list[str] = []
        if outputs.models and self._run_id:
            registry_rows, registered = _registry_rows(self._run_id)
            rows += registry_rows
        for kind, text in rows:
            table.add_row(kind, text)
        if self._run_id:
            table.add_row("mlflow run", f"{self._run_id}  (kedro mlflow ui)")
        for model in registered:
            table.add_row("serve it", _serve_command(model))
        Console().print(table)


_SUFFIX_KINDS = (
    ("_plot", "plot"),
    ("coefficients", "coefficients"),
    (".model", "model"),
    ("_model", "model"),
)


def _kind(name: str, outputs: Any) -> str | None:
    """How the summary names a file the run wrote, or None to leave it out."""
    if name in outputs.metrics:
        return "metrics"
    if name in outputs.models:
        return "model package"
    if name.endswith("predictions") and "test" not in name:
        return "predictions"
    return next((kind for suffix, kind in _SUFFIX_KINDS if name.endswith(suffix)), None)


def _registry_inputs(pipeline: Any, catalog: Any) -> list[tuple[str, Any]]:
    """The pipeline's inputs that load a model from the MLflow registry."""
    from kedro_mlflow.io.models import MlflowModelRegistryDataset

    from linear_nets.datasets.registered_model import RegisteredModelDataset

    found = []
    for name in sorted(pipeline.inputs()):
        if name.startswith("params:"):
            continue
        dataset = catalog.get(name)
        if isinstance(dataset, MlflowModelRegistryDataset | RegisteredModelDataset):
            found.append((name, dataset))
    return found


def _registry_rows(run_id: str) -> tuple[list[tuple[str, str]], list[str]]:
    """What happened to the run's model (its version and champion outcome, or the refusal),
    and the names of the registered models it has a version of."""
    import mlflow

    from linear_nets.tracking import registry

    client = mlflow.MlflowClient()
    tags = client.get_run(run_id).data.tags
    if registry.NOT_REGISTERED_TAG in tags:
        return [("not registered", tags[registry.NOT_REGISTERED_TAG])], []
    rows = []
    if registry.VERSION_TAG in tags:
        rows.append(("registered", f"version {tags[registry.VERSION_TAG]}"))
    if registry.CHAMPION_TAG in tags:
        rows.append(("champion", tags[registry.CHAMPION_TAG]))
    versions = client.search_model_versions(f"run_id = '{run_id}'")
    names = sorted({version.name for version in versions})
    return rows, names


def _relative(path: Path | str, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def _serve_command(model: str) -> str:
    """The project's server for ``model``'s champion (it verifies the model's files before
    any of them runs), pointed at a tracking server when the run used one: the local store
    ``mlflow.db`` is MLflow's default in the project's folder."""
    import mlflow

    from linear_nets.tracking.store import sqlite_path

    uri = mlflow.get_tracking_uri()
    path = sqlite_path(uri)
    default = path is not None and path.resolve() == (Path.cwd() / "mlflow.db").resolve()
    store = "" if default else f"MLFLOW_TRACKING_URI={uri} "
    return f"{store}bin/uv run python -m linear_nets.serving.server -m models:/{model}@champion"
