"""Start-up cost of the project's commands against the bare import floor, side by side.

The floor is what any ``kedro run`` of this project must pay::

    python -c "import kedro.framework.session, kedro_mlflow, mlflow, torch"

A second, informational floor defers garbage collection the way the project's settings do
during start-up (``linear_nets.startup``: one collection per million new objects, not per 700;
the bare import spends about 0.8 s in collections that free nothing). It shows how much of a
command's gain over the bare floor comes from that alone; the ratios are to the bare floor, as
issue #11 sets them. (The project also freezes what start-up built, which makes its exit faster
than the floor's; this floor does not.)

Then ``kedro --version``, ``kedro --help``, ``kedro run --pipeline=boston`` (defaults, warm
caches, an existing ``mlflow.db``) and, with ``--mirror DIR``, ``kedro run
--pipeline=fashion_mnist`` reading the four Fashion-MNIST files from that folder. Every command
runs in a throw-away copy of the project (conf/, the shipped raw data, a fresh MLflow store), so
the checkout's data and runs are untouched; one untimed boston run (and fashion_mnist run) first
fills the store and the caches. The rounds alternate the commands, so a busy machine slows all
of them alike; each figure is the best of ``--repeat`` rounds.

Run ``uv run python benchmarks/startup.py`` (a few minutes on two cores) or with
``--mirror /path/to/fashion-mnist``; ``--json PATH`` writes the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from linear_nets.startup import STARTUP_THRESHOLD

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_RAW_FILES = ("boston.txt", "boston_new_rows.csv")
FLOOR = "import kedro.framework.session, kedro_mlflow, mlflow, torch"
HELD_FLOOR = f"import gc; gc.set_threshold({STARTUP_THRESHOLD}); {FLOOR}"
TRAINED_IN = re.compile(r"Trained in ([\d.]+) s")
FASHION_SLACK_S = 3.0  # issue #11: fashion_mnist within the floor + its training + 3 s
BOSTON_TARGET = 1.5


@dataclass(frozen=True)
class Row:
    """One command: the best wall time of the rounds, and its ratio to the floor's."""

    command: str
    best_s: float
    all_s: list[float]
    ratio: float
    train_s: float | None = None  # fashion_mnist: the training time it logged in its best round


def make_copy(folder: Path) -> Path:
    """A project copy in ``folder`` with an empty MLflow store named by its absolute path."""
    project = folder / "project"
    shutil.copytree(
        ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("*.yml", "*.yaml")
    )
    for config in (ROOT / "conf").rglob("*.y*ml"):
        relative = config.relative_to(ROOT / "conf")
        if relative.parts[0] == "local":
            continue  # a fresh clone has no local settings
        text = config.read_text()
        if relative.name == "mlflow.yml":
            text = text.replace("sqlite:///mlflow.db", f"sqlite:///{project / 'mlflow.db'}")
        (project / "conf" / relative).write_text(text)
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    (project / "src").mkdir()  # the package is installed from the checkout
    (project / "data" / "01_raw").mkdir(parents=True)
    for name in SHIPPED_RAW_FILES:
        shutil.copy(ROOT / "data" / "01_raw" / name, project / "data" / "01_raw" / name)
    return project


def timed(command: list[str], cwd: Path) -> tuple[float, str]:
    """Run ``command``; its wall time and output. A failing command stops the benchmark."""
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "COLUMNS": "120"}
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=1800
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return wall, done.stdout + done.stderr


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds; each figure is the best")
    parser.add_argument("--mirror", type=Path, help="folder with the four Fashion-MNIST .gz files")
    parser.add_argument("--json", type=Path, help="write the rows to this file")
    args = parser.parse_args(argv)
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print(
            "note: PYTHONDONTWRITEBYTECODE is set, so no command caches its compiled modules: "
            "unless the environment was compiled (bin/uv sync --compile-bytecode), every figure "
            "includes compiling torch and MLflow",
            file=sys.stderr,
        )

    kedro = str(Path(sys.executable).with_name("kedro"))
    commands: dict[str, list[str]] = {
        f'python -c "{FLOOR}"': [sys.executable, "-c", FLOOR],
        "the same, collections deferred as in start-up": [sys.executable, "-c", HELD_FLOOR],
        "kedro --version": [kedro, "--version"],
        "kedro --help": [kedro, "--help"],
        "kedro run --pipeline=boston": [kedro, "run", "--pipeline=boston"],
    }
    if args.mirror:
        mirror = f"fashion_mnist.source.mirror={args.mirror.resolve()}"
        commands["kedro run --pipeline=fashion_mnist"] = [
            kedro, "run", "--pipeline=fashion_mnist", "--params", mirror,
        ]  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="startup-") as folder:
        project = make_copy(Path(folder))
        for name, command in commands.items():  # untimed: the store, the caches, the data
            if name.startswith("kedro run"):
                timed(command, project)
        times: dict[str, list[float]] = {name: [] for name in commands}
        trained: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeat):
            for name, command in commands.items():
                wall, output = timed(command, project)
                times[name].append(wall)
                found = TRAINED_IN.findall(output)
                trained[name].append(sum(map(float, found)) if found else 0.0)

    floor = min(next(iter(times.values())))
    rows = []
    for name, walls in times.items():
        best = min(walls)
        train_s = trained[name][walls.index(best)] if "fashion_mnist" in name else None
        rows.append(Row(name, round(best, 3), [round(w, 3) for w in walls], best / floor, train_s))

    width = max(len(row.command) for row in rows)
    print(f"{'command':<{width}}  {'best s':>7}  {'× floor':>7}  rounds (s)")
    for row in rows:
        rounds = ", ".join(f"{w:.2f}" for w in row.all_s)
        print(f"{row.command:<{width}}  {row.best_s:7.2f}  {row.ratio:7.2f}  {rounds}")
    boston = next(row for row in rows if row.command.endswith("boston"))
    held = rows[1].best_s
    print(
        f"\nboston: {boston.ratio:.2f}× the floor (target ≤ {BOSTON_TARGET}×); "
        f"{boston.best_s / held:.2f}× the floor with collections deferred ({held:.2f} s)"
    )
    fashion = next((row for row in rows if row.train_s is not None), None)
    if fashion is not None:
        overhead = fashion.best_s - floor - fashion.train_s
        print(
            f"fashion_mnist: {fashion.best_s:.2f} s = floor {floor:.2f} s + training "
            f"{fashion.train_s:.2f} s + {overhead:.2f} s (target ≤ {FASHION_SLACK_S:.0f} s)"
        )
    if args.json:
        args.json.write_text(json.dumps([asdict(row) for row in rows], indent=2))
    return rows


if __name__ == "__main__":
    main()
