"""Concurrent runs: does anything get lost or mixed up, and what does `--workers` buy?

Three measurements, each on a fresh copy of the project (conf, the shipped raw data, no MLflow
store yet), in a temporary folder:

a. N `kedro run --pipeline=boston` processes started together against the default SQLite store
   (each with its own split seed, so each run has its own split, scaler and model).
b. The same against the PostgreSQL-backed server of `bin/tracking-server` (`--env=team`), then
   a sweep of M configurations with `kedro sweep --workers M` against it.
c. Wall time of a K-configuration sweep with `--workers 2` against `--workers 1`, SQLite.

For a and b it counts FINISHED runs with metrics, runs lost (started, but not FINISHED with
metrics) and registered versions, and checks that each registered version's weights and scaler
came from its own run: the version's pyfunc model (scaler + weights) re-evaluated on its run's
test split (the run's `boston.split.seed`) must give the `test_mse` that run logged. A version
holding another run's weights or scaler gives another MSE.

    uv run python benchmarks/concurrency.py            # a: 8 runs, b: 8 + 32, c: 8 configurations
    uv run python benchmarks/concurrency.py --quick    # 2 runs, 2 + 4, 2 configurations
    uv run python benchmarks/concurrency.py --skip-server   # without PostgreSQL (a and c only)
    uv run python benchmarks/concurrency.py --runs 2 --skip-server --skip-sweep   # (a) alone
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_RAW_FILES = ("boston.txt", "boston_new_rows.csv")
DATA_LAYERS = ("01_raw", "02_intermediate", "03_primary", "04_feature", "05_model_input",
               "06_models", "07_model_output", "08_reporting")  # fmt: skip
MODEL_NAME = "boston_linear_regression"
EXPERIMENT = "linear_nets.boston"
RUN_TIMEOUT_S = 3600
REL_TOLERANCE = 1e-4  # float32 predictions against the float64-logged metric


@dataclass
class Tally:
    """What a batch of runs left in the MLflow store."""

    started: int
    exited_ok: int
    finished_with_metrics: int
    versions: int
    consistent_versions: int
    seconds: float

    @property
    def lost(self) -> int:
        return self.started - self.finished_with_metrics

    def line(self, case: str) -> str:
        return (
            f"{case:<44} {self.finished_with_metrics:>3}/{self.started:<3} FINISHED with metrics"
            f" | lost {self.lost:>2} | exit 0: {self.exited_ok:>2} | versions {self.versions:>2},"
            f" consistent {self.consistent_versions:>2} | {self.seconds:7.1f} s"
        )


def fresh_project(parent: Path) -> Path:
    """A clone-like copy: conf (without conf/local settings), raw data, no MLflow store."""
    project = parent / "project"
    shutil.copytree(
        ROOT / "conf",
        project / "conf",
        ignore=lambda d, names: (
            [n for n in names if n != ".gitkeep"] if Path(d) == ROOT / "conf" / "local" else []
        ),
    )
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    (project / "src").mkdir()  # the package is imported from this checkout's installation
    for layer in DATA_LAYERS:
        (project / "data" / layer).mkdir(parents=True)
    for name in SHIPPED_RAW_FILES:
        shutil.copy(ROOT / "data" / "01_raw" / name, project / "data" / "01_raw" / name)
    return project


def kedro() -> list[str]:
    executable = Path(sys.executable).with_name("kedro")
    return [str(executable)] if executable.exists() else [sys.executable, "-m", "kedro"]


def environment(**extra: str) -> dict[str, str]:
    return {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "MLFLOW_DISABLE_TELEMETRY": "true",
            "PYTHONUNBUFFERED": "1", **extra}  # fmt: skip


def concurrent_runs(project: Path, runs: int, env: dict[str, str], kedro_env: str | None) -> int:
    """Start ``runs`` boston runs at the same moment (split seeds 0, 1, ...); count exits 0."""
    logs = project / "logs"
    logs.mkdir(exist_ok=True)
    processes = []
    for seed in range(runs):
        command = [*kedro(), "run", "--pipeline=boston", "--params", f"boston.split.seed={seed}"]
        if kedro_env:
            command.append(f"--env={kedro_env}")
        log = (logs / f"run-{seed}.log").open("w")
        processes.append((subprocess.Popen(command, cwd=project, env=env, stdout=log,
                                           stderr=subprocess.STDOUT), log))  # fmt: skip
    ok = 0
    for process, log in processes:
        ok += process.wait(timeout=RUN_TIMEOUT_S) == 0
        log.close()
    return ok


def sweep(project: Path, env: dict[str, str], workers: int, kedro_env: str | None) -> int:
    command = [*kedro(), "sweep", "--workers", str(workers), "--yes"]
    if kedro_env:
        command.append(f"--env={kedro_env}")
    with (project / "logs" / f"sweep-{workers}.log").open("w") as log:
        return subprocess.run(command, cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT,
                              timeout=RUN_TIMEOUT_S, check=False).returncode  # fmt: skip


def write_grid(project: Path, env_folder: str, size: int, epochs: int | None = None) -> None:
    """A ``boston_sweep`` grid of ``size`` split seeds (a distinct split, scaler, model each)."""
    folder = project / "conf" / env_folder
    folder.mkdir(exist_ok=True)
    # conf/base's grid keys merge in: pin them to one value each (the defaults)
    lines = ["boston_sweep:", f"  boston.split.seed: {list(range(size))}",
             "  boston.train.optimizer: [sgd]", "  boston.train.lr: [0.1]",
             "  boston.train.batch_size: [null]"]  # fmt: skip
    if epochs:
        lines.append(f"  boston.train.epochs: [{epochs}]")
    (folder / "parameters_sweep.yml").write_text("\n".join(lines) + "\n")


def split_for(seed: int):
    """The test rows of the boston split with ``seed``, as the pipeline computes them."""
    from linear_nets.pipelines.boston.nodes import parse_statlib_records
    from linear_nets.pipelines.regression.nodes import SplitConfig, split_train_test

    table = parse_statlib_records((ROOT / "data" / "01_raw" / "boston.txt").read_bytes())
    return split_train_test(table, SplitConfig(test_size=0.15, seed=seed))[1]


def tally(tracking_uri: str, started: int, exited_ok: int, seconds: float) -> Tally:
    """Count what the store holds and re-evaluate every registered version on its run's split."""
    import mlflow
    import numpy as np

    from linear_nets.pipelines.boston.nodes import FEATURES, TARGET

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id]) if experiment else []
    finished = [
        run for run in runs if run.info.status == "FINISHED" and "test_mse" in run.data.metrics
    ]
    try:
        versions = client.search_model_versions(f"name = '{MODEL_NAME}'")
    except mlflow.exceptions.MlflowException:
        versions = []
    consistent = 0
    for version in versions:
        run = client.get_run(version.run_id)
        logged = run.data.metrics.get("test_mse")
        if logged is None:
            continue
        test = split_for(int(run.data.params["boston.split.seed"]))
        model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{version.version}")
        predicted = np.asarray(model.predict(test[list(FEATURES)])).reshape(-1)
        mse = float(np.mean((predicted - test[TARGET].to_numpy()) ** 2))
        consistent += math.isclose(mse, logged, rel_tol=REL_TOLERANCE)
    return Tally(started, exited_ok, len(finished), len(versions), consistent, seconds)


def sqlite_uri(project: Path) -> str:
    return f"sqlite:///{project / 'mlflow.db'}"


def case_sqlite(parent: Path, runs: int) -> Tally:
    project = fresh_project(parent / "a")
    start = time.perf_counter()
    ok = concurrent_runs(project, runs, environment(), None)
    return tally(sqlite_uri(project), runs, ok, time.perf_counter() - start)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def case_server(parent: Path, runs: int, sweep_runs: int) -> tuple[Tally, Tally]:
    data = Path(tempfile.mkdtemp(prefix="tracking-", dir="/tmp"))  # reachable by `postgres`
    data.chmod(0o755)
    port = free_port()
    env = environment(TRACKING_SERVER_PORT=str(port))
    server = [str(ROOT / "bin" / "tracking-server")]
    where = ["--data-dir", str(data / "data")]
    uri = f"http://127.0.0.1:{port}"
    try:
        subprocess.run([*server, "start", *where], env=env, check=True, timeout=RUN_TIMEOUT_S)
        project = fresh_project(parent / "b")
        start = time.perf_counter()
        ok = concurrent_runs(project, runs, env, "team")
        together = tally(uri, runs, ok, time.perf_counter() - start)

        project = fresh_project(parent / "b-sweep")
        (project / "logs").mkdir()
        write_grid(project, "team", sweep_runs)
        before = _finished_ids(uri)
        start = time.perf_counter()
        code = sweep(project, env, sweep_runs, "team")
        seconds = time.perf_counter() - start
        print(f"   (kedro sweep --workers {sweep_runs} exited {code})", flush=True)
        swept = tally(uri, sweep_runs, sweep_runs if code == 0 else 0, seconds)
        # the server already holds the first batch: count only what the sweep added
        swept.finished_with_metrics -= len(before)
        swept.versions -= together.versions
        swept.consistent_versions -= together.consistent_versions
    finally:
        subprocess.run([*server, "stop", *where], env=env, check=False, timeout=300)
        shutil.rmtree(data, ignore_errors=True)
    return together, swept


def _finished_ids(uri: str) -> set[str]:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return set()
    runs = client.search_runs([experiment.experiment_id], "attributes.status = 'FINISHED'")
    return {run.info.run_id for run in runs if "test_mse" in run.data.metrics}


def case_sweep_speed(parent: Path, configurations: int) -> tuple[float, float, int, int]:
    """Seconds of the same sweep with 1 and with 2 workers, and their exit codes."""
    results = []
    for workers in (1, 2):
        project = fresh_project(parent / f"c{workers}")
        (project / "logs").mkdir()
        write_grid(project, "local", configurations)
        start = time.perf_counter()
        code = sweep(project, environment(), workers, None)
        results.append((time.perf_counter() - start, code))
    (sequential, code_1), (parallel, code_2) = results
    return sequential, parallel, code_1, code_2


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 runs, 2 + 4, 2 configurations")
    parser.add_argument("--skip-server", action="store_true", help="no PostgreSQL case (b)")
    parser.add_argument("--keep", action="store_true", help="keep the project copies and logs")
    parser.add_argument("--runs", type=int, help="boston runs at once in (a) and (b)")
    parser.add_argument("--skip-sweep", action="store_true", help="no sweep speed case (c)")
    args = parser.parse_args(argv)
    if args.runs is not None and args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    runs, sweep_runs, configurations = (2, 4, 2) if args.quick else (8, 32, 8)
    runs = args.runs or runs
    parent = Path(tempfile.mkdtemp(prefix="concurrency-"))
    print(f"project copies and their logs: {parent}", flush=True)
    try:
        print(case_sqlite(parent, runs).line(f"a. {runs} boston runs at once, SQLite"), flush=True)
        if not args.skip_server:
            together, swept = case_server(parent, runs, sweep_runs)
            print(together.line(f"b. {runs} boston runs at once, server"), flush=True)
            print(swept.line(f"b. sweep --workers {sweep_runs}, server"), flush=True)
        if not args.skip_sweep:
            sequential, parallel, code_1, code_2 = case_sweep_speed(parent, configurations)
            print(
                f"c. sweep of {configurations} configurations, SQLite: --workers 1 "
                f"{sequential:.1f} s (exit {code_1}), --workers 2 {parallel:.1f} s "
                f"(exit {code_2}), speedup {sequential / parallel:.2f}",
                flush=True,
            )
    finally:
        if not args.keep:
            shutil.rmtree(parent, ignore_errors=True)


if __name__ == "__main__":
    main()
