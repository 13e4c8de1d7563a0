"""``kedro sweep``: one ``kedro run`` per configuration of a grid, sequential or in parallel.

Each configuration runs as its own ``kedro run`` process (its own Kedro session and MLflow run)
with ``--params`` carrying the configuration and the reserved runtime parameter
``sweep: {id, label}``, so ``--workers N`` runs N of them at once against either MLflow store.
The grid is checked before anything runs: every key must be a known parameter, and its size
must be sane (above ``CONFIRM_ABOVE`` runs it asks for ``--yes``; above ``REFUSE_ABOVE`` it is
refused). The sweep exits non-zero when any configuration failed, listing which and why.

At its end the sweep promotes at most its best registered version, chosen on the champion
metric: for the regression pipelines ``cv_rmse``, cross-validated on each run's training rows.
The test rows are scored and reported once per run, never used to choose; the grid may not vary
the champion metric, so no two runs are ranked on different figures.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linear_nets.params_check import (
    KnownKeys,
    base_parameters,
    check_run_parameters,
    describe_unknown,
    known_keys,
    params_option,
    run_command,
    typed_parameters,
    unknown_keys,
)

CONFIRM_ABOVE = 50  # runs: a bigger grid asks for --yes
REFUSE_ABOVE = 10_000  # runs: a bigger grid is refused whatever the flags
SECONDS_PER_RUN = 15.0  # a boston run on one core, process start included: for estimates only
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
LOG_FOLDER = Path("data") / "08_reporting" / "sweeps"
SELECTION_KEYS = (".registry.champion_metric", ".registry.higher_is_better")
"""Parameters a grid may not vary: the sweep's best is chosen on one metric, in one direction."""
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b.*:")


class SweepError(Exception):
    """A sweep that must not start: no grid, an unknown key, or too many runs."""


@dataclass(frozen=True)
class Configuration:
    """One point of the grid and the ``kedro run`` command that runs it."""

    number: int
    values: dict[str, Any]
    label: str
    command: list[str]
    reproduce: str


@dataclass(frozen=True)
class Outcome:
    """How one configuration's ``kedro run`` ended."""

    configuration: Configuration
    returncode: int
    seconds: float
    log: Path
    reason: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def expand_grid(grid: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of a ``{"a.b.c": [values]}`` grid, as ``{"a.b.c": value}`` dicts."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]


def grid_size(grid: Mapping[str, Any]) -> int:
    """The number of runs of a grid, without expanding it; every entry must be a list."""
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"sweep grid entry {key!r} must be a non-empty list, got {values!r}")
    return math.prod(len(values) for values in grid.values())


def check_size(runs: int, workers: int, assume_yes: bool) -> str | None:
    """Refuse an impossible grid; for a large one without ``--yes`` return the question to ask.

    Returns:
        None when the sweep may start, else what to confirm (the count and the estimate).
    """
    hours = runs * SECONDS_PER_RUN / workers / 3600
    estimate = (
        f"{runs} runs ≈ {hours:.1f} h with {workers} worker(s) at ~{SECONDS_PER_RUN:.0f} s a run, "
        f"and {runs} MLflow runs and model versions"
    )
    if runs > REFUSE_ABOVE:
        raise SweepError(f"sweep grid too large: {estimate}; the limit is {REFUSE_ABOVE} runs")
    if runs > CONFIRM_ABOVE and not assume_yes:
        return f"{estimate}: more than {CONFIRM_ABOVE} runs"
    return None


def check_grid_keys(grid: Mapping[str, Any], known: KnownKeys) -> None:
    """Every grid key must be a known parameter; ``sweep`` is reserved for the sweep itself."""
    reserved = [key for key in grid if key.split(".", 1)[0] == "sweep"]
    if reserved:
        raise SweepError(f"sweep grid key(s) {reserved} use the reserved parameter 'sweep'")
    unknown = unknown_keys(grid, known)
    if unknown:
        raise SweepError(describe_unknown(unknown, known, "sweep grid"))
    selection = [key for key in grid if key.endswith(SELECTION_KEYS)]
    if selection:
        raise SweepError(
            f"sweep grid key(s) {selection} change what the runs are compared on: a sweep "
            "picks its best run on one champion metric (cv_rmse, cross-validated on the "
            "training rows), so set it once in the parameters instead"
        )


def label_of(values: Mapping[str, Any]) -> str:
    """``optimizer=adam lr=0.1``: the last part of each key and its value."""
    return " ".join(f"{key.rsplit('.', 1)[-1]}={value}" for key, value in values.items())


def configurations(
    grid: Mapping[str, list[Any]], pipeline: str, env: str | None, sweep_id: str
) -> list[Configuration]:
    """The ``kedro run`` command of every grid point, with the reserved ``sweep`` parameter."""
    kedro = _kedro_executable()
    configs = []
    for number, values in enumerate(expand_grid(grid), start=1):
        label = label_of(values)
        params = params_option({**values, "sweep.id": sweep_id, "sweep.label": label})
        command = [*kedro, "run", f"--pipeline={pipeline}"]
        if env:
            command.append(f"--env={env}")
        command += ["--params", params]
        reproduce = run_command([pipeline], env or "", values)
        configs.append(Configuration(number, values, label, command, reproduce))
    return configs


def failure_reason(output: str) -> str:
    """The error a failed ``kedro run`` ended with: its last exception line and what follows."""
    lines = [line.strip("│ ").rstrip() for line in output.splitlines()]
    lines = [line for line in lines if line]
    for index in range(len(lines) - 1, -1, -1):
        if _EXCEPTION_LINE.match(lines[index]):
            return " ".join(lines[index:])
    return " ".join(lines[-5:]) or "no output"


def run_configuration(config: Configuration, project: Path, logs: Path) -> Outcome:
    """Run one configuration's ``kedro run`` to the end; its whole output goes to a log file."""
    log = logs / f"{config.number:05d}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    start = time.perf_counter()
    with log.open("w") as out:
        out.write(f"$ {config.reproduce}\n")
        out.flush()
        returncode = subprocess.run(
            config.command,
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        ).returncode
    seconds = time.perf_counter() - start
    reason = "" if returncode == 0 else failure_reason(log.read_text(errors="replace"))
    return Outcome(config, returncode, seconds, log, reason)


def run_all(
    configs: list[Configuration], project: Path, logs: Path, workers: int
) -> Iterator[Outcome]:
    """Run the configurations, ``workers`` at a time, yielding each outcome as it ends."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run_configuration, config, project, logs) for config in configs]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def load_sweep(project: Path, pipeline: str, env: str | None) -> dict[str, list[Any]]:
    """Read the ``<pipeline>_sweep`` grid and check it and the parameters before any run.

    Opening the project's session also points MLflow at the environment's store (kedro-mlflow
    does that when the context is created), which the promotion at the end relies on.
    """
    from kedro.framework.project import pipelines
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env) as session:
        context = session.load_context()
        loader = context.config_loader
        params = loader["parameters"]
        pipelines.set_requested([pipeline])
        if pipeline not in pipelines:
            raise SweepError(f"no pipeline named {pipeline!r}")
        base = base_parameters(
            Path(loader.conf_source), loader.base_env, loader.config_patterns["parameters"]
        )
        known = known_keys(base, typed_parameters(pipelines[pipeline]))
    grid = params.get(f"{pipeline}_sweep")
    if not grid:
        raise SweepError(
            f"no '{pipeline}_sweep' grid in the parameters (conf/base/parameters_*.yml)"
        )
    try:
        check_run_parameters(params, {}, known, env or loader.default_run_env)
    except ValueError as error:
        raise SweepError(str(error)) from error
    check_grid_keys(grid, known)
    return dict(grid)


def promote(sweep_id: str) -> list[str]:
    """Promote the sweep's best registered version (``linear_nets.tracking.registry``)."""
    if importlib.util.find_spec("linear_nets.tracking") is None or (
        importlib.util.find_spec("linear_nets.tracking.registry") is None
    ):
        return ["no promotion: linear_nets.tracking.registry is not part of this version"]
    from linear_nets.tracking.registry import promote_sweep

    return promote_sweep(sweep_id)


def run_sweep(
    project: Path,
    pipeline: str,
    *,
    env: str | None,
    workers: int,
    assume_yes: bool,
    echo: Callable[[str], None],
    confirm: Callable[[str], bool],
) -> int:
    """Check the grid, run every configuration, report, promote; return the exit code."""
    grid = load_sweep(project, pipeline, env)
    runs = grid_size(grid)
    question = check_size(runs, workers, assume_yes)
    if question is not None and not confirm(f"{question}. Start it?"):
        echo(f"Not started: {question}; pass --yes to start it.")
        return EXIT_USAGE
    sweep_id = time.strftime("%Y%m%d-%H%M%S")
    configs = configurations(grid, pipeline, env, sweep_id)
    logs = project / LOG_FOLDER / sweep_id
    logs.mkdir(parents=True, exist_ok=True)
    echo(f"Sweep {sweep_id}: {runs} runs of '{pipeline}', {workers} at a time; logs in {logs}")
    outcomes: list[Outcome] = []
    for outcome in run_all(configs, project, logs, workers):
        outcomes.append(outcome)
        status = "ok" if outcome.ok else f"FAILED (exit {outcome.returncode})"
        echo(
            f"[{len(outcomes)}/{runs}] {status:<18} {outcome.configuration.label}"
            f"  ({outcome.seconds:.1f} s)"
        )
    outcomes.sort(key=lambda outcome: outcome.configuration.number)
    failed = [outcome for outcome in outcomes if not outcome.ok]
    echo(f"\nSweep {sweep_id} done: {runs - len(failed)} of {runs} runs succeeded.")
    if len(failed) < runs:
        for line in promote(sweep_id):
            echo(line)
    if not failed:
        echo(f'Compare the runs with: kedro mlflow ui  (filter: tags.sweep = "{sweep_id}")')
        return EXIT_OK
    echo(f"{len(failed)} configuration(s) failed:")
    for outcome in failed:
        echo(f"  {outcome.configuration.label}")
        echo(f"    why:       {outcome.reason}")
        echo(f"    reproduce: {outcome.configuration.reproduce}")
        echo(f"    log:       {outcome.log}")
    return EXIT_FAILED


def _kedro_executable() -> list[str]:
    kedro = Path(sys.executable).with_name("kedro")
    return [str(kedro)] if kedro.exists() else [sys.executable, "-m", "kedro"]
