"""Project commands added to the ``kedro`` CLI: ``kedro sweep``."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import click
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project


@click.group(name="linear-nets")
def cli() -> None:
    """Commands of the linear-nets project."""


def expand_grid(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of a ``{"a.b.c": [values]}`` grid, as ``{"a.b.c": value}`` dicts."""
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise click.UsageError(
                f"sweep grid entry {key!r} must be a non-empty list, got {values!r}"
            )
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` → ``{"a": {"b": 1}}``, the shape of Kedro runtime parameters."""
    nested: dict[str, Any] = {}
    for dotted, value in flat.items():
        *parents, leaf = dotted.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


@cli.command()
@click.option(
    "--pipeline",
    "pipeline_name",
    default="boston",
    show_default=True,
    help="Pipeline to run once per configuration.",
)
@click.option("--env", "-e", default=None, help="Kedro configuration environment.")
def sweep(pipeline_name: str, env: str | None) -> None:
    """Run a pipeline once per combination of the ``<pipeline>_sweep`` grid in the parameters.

    Each run is its own MLflow run, tagged ``sweep=<id>`` and named after its configuration,
    ready for the MLflow UI's compare view. A configuration that fails is reported and the
    sweep goes on.
    """
    project = Path.cwd()
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env) as session:
        params = session.load_context().config_loader["parameters"]
    grid = params.get(f"{pipeline_name}_sweep")
    if not grid:
        raise click.UsageError(
            f"no '{pipeline_name}_sweep' grid in the parameters (conf/base/parameters_*.yml)"
        )
    configs = expand_grid(dict(grid))
    sweep_id = time.strftime("%Y%m%d-%H%M%S")
    click.echo(f"Sweep {sweep_id}: {len(configs)} runs of '{pipeline_name}'")
    outcomes = []
    for number, config in enumerate(configs, start=1):
        label = " ".join(f"{key.rsplit('.', 1)[-1]}={value}" for key, value in config.items())
        click.echo(f"[{number}/{len(configs)}] {label}")
        runtime = nest(config) | {"sweep": {"id": sweep_id, "label": label}}
        try:
            with KedroSession.create(project_path=project, env=env, runtime_params=runtime) as run:
                run.run(pipeline_names=[pipeline_name])
            outcomes.append((label, "ok"))
        except Exception as error:  # noqa: BLE001 (one failed configuration must not stop the sweep)
            outcomes.append((label, f"FAILED: {str(error).splitlines()[0]}"))
    click.echo(f"\nSweep {sweep_id} done; compare the runs with: kedro mlflow ui")
    for label, outcome in outcomes:
        click.echo(f"  {label:<50} {outcome}")
