"""Project commands added to the ``kedro`` CLI: ``kedro run`` (Kedro's, with short errors) and
``kedro sweep``."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run

from linear_nets.terminal import parameter_message, short_message
from linear_nets.tracking.cli import runs

# Configured in conf/logging.yml to write to info.log only.
error_log = logging.getLogger("linear_nets.errors")


@click.group(name="linear-nets")
def cli() -> None:
    """Commands of the linear-nets project."""


@cli.command(name="run", params=list(kedro_run.params), help=kedro_run.help)
@click.option(
    "--verbose",
    is_flag=True,
    help="Show the traceback of an error here too (info.log always has it).",
)
def run(verbose: bool, pipeline: str | None, pipelines: list[str], **options: Any) -> Any:
    """Kedro's own ``kedro run``, with two changes: ``--pipeline=NAME`` (this project's spelling)
    means ``--pipelines=NAME`` without Kedro's deprecation note, and an error prints its short
    message (the field, for a parameter) instead of a traceback, unless ``--verbose``."""
    if pipeline:
        if pipelines:
            raise click.UsageError("Options '--pipeline' and '--pipelines' cannot be used together")
        pipelines = [pipeline]
    try:
        return kedro_run.callback(pipeline=None, pipelines=pipelines, **options)
    except (click.ClickException, click.exceptions.Exit, click.Abort):
        raise
    except Exception as error:
        error_log.error("kedro run failed", exc_info=error)
        if verbose:
            raise
        raise click.ClickException(
            f"{_message(error, pipelines, options)}\n"
            "(the traceback is in info.log; --verbose shows it here)"
        ) from None


def _message(error: Exception, pipelines: list[str], options: dict[str, Any]) -> str:
    """The short message of a failed run; for invalid parameters one line per field, from
    pydantic's own errors (validated again here: Kedro's error keeps only their text)."""
    from kedro.validation.exceptions import ParameterValidationError

    if isinstance(error, ParameterValidationError):
        lines = _invalid_parameter_fields(pipelines, options)
        if lines:
            return parameter_message(lines)
    return short_message(error)


def _invalid_parameter_fields(pipelines: list[str], options: dict[str, Any]) -> list[str]:
    from kedro.framework.project import pipelines as registry
    from kedro.framework.project import settings
    from kedro.pipeline import Pipeline

    from linear_nets.params_check import invalid_fields, typed_parameters

    conf_source = options.get("conf_source") or str(Path.cwd() / settings.CONF_SOURCE)
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=conf_source,
        env=options.get("env"),
        runtime_params=options.get("params") or {},
        **settings.CONFIG_LOADER_ARGS,
    )
    try:
        pipeline = sum((registry[name] for name in pipelines or ["__default__"]), Pipeline([]))
    except KeyError:
        return []
    typed = typed_parameters(pipeline)
    return invalid_fields(loader["parameters"], typed, _nearest_parameter(pipelines))


def _nearest_parameter(names: list[str]) -> Callable[[str], str | None]:
    """The typed parameter key of the pipelines ``names`` nearest to a dotted path, if any."""

    def nearest(path: str) -> str | None:
        from kedro.framework.project import pipelines as registry
        from kedro.pipeline import Pipeline

        from linear_nets.params_check import known_keys, typed_parameters

        try:
            pipeline = sum((registry[name] for name in names or ["__default__"]), Pipeline([]))
        except KeyError:
            return None
        return known_keys({}, typed_parameters(pipeline)).nearest(path)

    return nearest


@cli.command()
@click.option(
    "--pipeline",
    "pipeline_name",
    default="boston",
    show_default=True,
    help="Pipeline to run once per configuration.",
)
@click.option("--env", "-e", default=None, help="Kedro configuration environment.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Configurations run at once, each in its own `kedro run` process.",
)
@click.option("--yes", "-y", is_flag=True, help="Start a grid of more than 50 runs without asking.")
def sweep(pipeline_name: str, env: str | None, workers: int, yes: bool) -> None:
    """Run a pipeline once per combination of the ``<pipeline>_sweep`` grid in the parameters.

    Each configuration is its own ``kedro run`` and MLflow run, tagged ``sweep=<id>``, named
    after its configuration and tagged ``reproduce`` with its command. Exits 1 when any
    configuration failed (listing which and why), 2 when the grid is refused before any run.
    """
    from linear_nets.sweep import SweepError, run_sweep

    try:
        code = run_sweep(
            Path.cwd(),
            pipeline_name,
            env=env,
            workers=workers,
            assume_yes=yes,
            echo=click.echo,
            # without a terminal to answer, a large grid needs --yes
            confirm=lambda question: sys.stdin.isatty() and click.confirm(question, default=False),
        )
    except SweepError as error:
        raise click.UsageError(str(error)) from error
    sys.exit(code)


cli.add_command(runs)
