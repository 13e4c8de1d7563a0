"""The tabular pipeline on large files: wall time against a small file, and peak memory.

Each case is one whole ``kedro run --pipelines=tabular --params
"tabular.source.filepath=<csv>,tabular.target=y"`` in a fresh copy of the project (conf
without conf/local, its own MLflow store in that copy), on a CSV of y = X w + 3 + N(0, 0.1²)
written under the temporary folder. The cases take turns, round after round, so a machine
whose load changes slows them alike; each figure is the best of ``--rounds``, after an
untimed run of the first case that fills the MLflow store and warms the caches:

- ``1e3x13`` and ``1e6x13``: 10³ and 10⁶ rows of 13 features (goal: the 10⁶ run's wall at most
  2x the 10³ run's);
- ``2e6x50``: 2·10⁶ rows of 50 features, a 2 GB CSV (17 digits a value), trained for 5
  epochs (goal: the peak RSS at most about 2x the numeric data, 8 bytes a value, above the 10³
  run's peak, which is the imports).

The peak RSS is the run's own (``os.wait4``). ``--conf DIR`` takes the project's conf from
another checkout (with ``PYTHONPATH`` at its ``src``: the "before").

    uv run python benchmarks/tabular.py                    # 1e3, 1e6, 2e6x50; two rounds
    uv run python benchmarks/tabular.py --cases 1e3x13 --rounds 1 --no-warm-up   # the smallest
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {"1e3x13": (10**3, 13), "1e6x13": (10**6, 13), "2e6x50": (2 * 10**6, 50)}
EXTRA_PARAMS = {"2e6x50": "tabular.train.epochs=5"}
"""The memory case trains 5 epochs, not 500: its peak does not depend on them, its time would."""
DATA_LAYERS = ("01_raw", "02_intermediate", "03_primary", "04_feature", "05_model_input",
               "06_models", "07_model_output", "08_reporting")  # fmt: skip
CHUNK_ROWS = 200_000
"""Rows generated and written at a time, so that writing a large CSV holds little memory."""


def write_csv(path: Path, n: int, d: int, seed: int = 0) -> int:
    """``n`` rows of ``d`` features and ``y``, written a chunk at a time (Arrow's CSV writer);
    returns the bytes."""
    import numpy as np
    import pyarrow as pa
    from pyarrow import csv

    generator = np.random.default_rng(seed)
    w = generator.standard_normal(d)
    schema = pa.schema([*(pa.field(f"x{i}", pa.float64()) for i in range(d)), ("y", pa.float64())])
    with csv.CSVWriter(str(path), schema) as writer:
        for start in range(0, n, CHUNK_ROWS):
            rows = min(CHUNK_ROWS, n - start)
            X = generator.standard_normal((rows, d))
            y = X @ w + 3.0 + 0.1 * generator.standard_normal(rows)
            writer.write_table(pa.table([*X.T, y], schema=schema))
    return path.stat().st_size


def fresh_project(parent: Path, conf: Path) -> Path:
    """A clone-like copy: ``conf`` without conf/local settings, empty data folders."""
    project = parent / "project"
    shutil.copytree(
        conf,
        project / "conf",
        ignore=lambda d, names: (
            [n for n in names if n != ".gitkeep"] if Path(d) == conf / "local" else []
        ),
    )
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    (project / "src").mkdir()  # the package is imported from the installed checkout
    for layer in DATA_LAYERS:
        (project / "data" / layer).mkdir(parents=True)
    return project


def kedro() -> list[str]:
    executable = Path(sys.executable).with_name("kedro")
    return [str(executable)] if executable.exists() else [sys.executable, "-m", "kedro"]


def run_once(project: Path, csv: Path, timeout_s: float, extra: str = "") -> tuple[float, float]:
    """One tabular run on ``csv``: its wall seconds and its own peak RSS in MB."""
    params = f"tabular.source.filepath={csv},tabular.target=y" + (f",{extra}" if extra else "")
    command = [*kedro(), "run", "--pipelines=tabular", "--params", params]
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "MLFLOW_DISABLE_TELEMETRY": "true"}
    log = project / "run.log"
    started = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=project, env=env, stdout=out, stderr=out)
        deadline = started + timeout_s
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                raise TimeoutError(f"{csv.name}: no end after {timeout_s:.0f} s")
            time.sleep(0.02)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"the run on {csv.name} failed:\n{log.read_text()[-3000:]}")
    return seconds, usage.ru_maxrss / 1024  # KiB on Linux


def measure(
    cases: list[str], rounds: int, conf: Path, timeout_s: float, *, warm_up: bool = True
) -> list[dict]:
    """Write each case's CSV, then run the cases in turn, ``rounds`` times; the best of each."""
    with tempfile.TemporaryDirectory(prefix="linear_nets_tabular_") as scratch:
        folder = Path(scratch)
        project = fresh_project(folder, conf)
        files, sizes = {}, {}
        for case in cases:
            n, d = CASES[case]
            files[case] = folder / f"{case}.csv"
            sizes[case] = write_csv(files[case], n, d)
        if warm_up:  # untimed: fills the store, warms the caches
            run_once(project, files[cases[0]], timeout_s)
        seconds: dict[str, list[float]] = {case: [] for case in cases}
        peaks: dict[str, list[float]] = {case: [] for case in cases}
        for _ in range(rounds):
            for case in cases:
                wall, peak = run_once(project, files[case], timeout_s, EXTRA_PARAMS.get(case, ""))
                seconds[case].append(wall)
                peaks[case].append(peak)
    return [
        {
            "case": case,
            "n": CASES[case][0],
            "d": CASES[case][1],
            "csv_mb": round(sizes[case] / 1e6, 1),
            "numeric_mb": round(CASES[case][0] * (CASES[case][1] + 1) * 8 / 1e6, 1),
            "wall_s": round(min(seconds[case]), 2),
            "peak_rss_mb": round(min(peaks[case]), 1),
        }
        for case in cases
    ]


def report(rows: list[dict]) -> str:
    """The rows, then the two ratios the goals are about."""
    lines = [f"{'case':<8} {'CSV MB':>8} {'numeric MB':>10} {'wall s':>8} {'peak RSS MB':>11}"]
    lines += [
        f"{row['case']:<8} {row['csv_mb']:>8.1f} {row['numeric_mb']:>10.1f} "
        f"{row['wall_s']:>8.2f} {row['peak_rss_mb']:>11.0f}"
        for row in rows
    ]
    by_case = {row["case"]: row for row in rows}
    small = by_case.get("1e3x13")
    if small and "1e6x13" in by_case:
        ratio = by_case["1e6x13"]["wall_s"] / small["wall_s"]
        lines.append(f"wall 1e6 / 1e3: {ratio:.2f}x (goal <= 2)")
    if small and "2e6x50" in by_case:
        large = by_case["2e6x50"]
        above = large["peak_rss_mb"] - small["peak_rss_mb"]
        lines.append(
            f"2e6x50: peak RSS {large['peak_rss_mb']:.0f} MB, {above:.0f} MB above the 1e3 run = "
            f"{above / large['numeric_mb']:.2f}x the numeric data (goal <= ~2)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--rounds", type=int, default=2, help="runs of each case; best counts")
    parser.add_argument("--conf", type=Path, default=ROOT / "conf", help="the project's conf")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per run")
    parser.add_argument("--json", type=Path, help="write the rows to this file")
    parser.add_argument("--no-warm-up", action="store_true", help="no untimed first run")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    rows = measure(
        args.cases, args.rounds, args.conf.resolve(), args.timeout, warm_up=not args.no_warm_up
    )
    print(report(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
