"""One epoch of the fashion_mnist pipeline's training against the tutorial's loop, side by side.

Both sides train the same softmax regression (``scratch`` or ``linear``, same initial weights)
with the same loss, optimizer, learning rate and batch size from ``parameters_fashion_mnist.yml``,
in this one process, and score the test split after the epoch. The baseline is the tutorial's::

    train_set = FashionMNIST(root, train=True, transform=ToTensor())
    loader = DataLoader(train_set, batch_size, shuffle=True)
    for X_rows, y_rows in loader:             # one PIL image -> ToTensor per row
        X, y = X_rows.to(device), y_rows.to(device)
        y_hat = model(X)
        loss = loss_fn(y_hat, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        metric.add(float(loss) * len(y), accuracy(y_hat, y) * len(y), len(y))
    # then the test accuracy over DataLoader(test_set, batch_size)

Ours is the pipeline's own node, ``train_softmax_regression`` with one epoch: tensors made once
from the IDX files and kept on the device, one shuffle per epoch, slices. To compare like with
like, both sides here train on all 60 000 training images and score the test split after the
epoch (the pipeline itself holds out a validation split and scores the test split once). Each
side's time is one epoch including the test evaluation, the best of ``--repeat``; building the
datasets (the tutorial's ``FashionMNIST`` objects, our load + preprocessing) is timed apart, once.

The last row is the whole default ``kedro run --pipeline=fashion_mnist`` in a subprocess, wall
clock, with its final test accuracy.

Run ``uv run python benchmarks/fashion_mnist.py --mirror DIR`` where DIR holds the four .gz files
(or leave --mirror out once data/01_raw/fashion_mnist is filled); ``--json PATH`` writes the rows.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch.utils.data import DataLoader

from linear_nets.datasets.fashion_mnist import FashionMNISTSource
from linear_nets.engine import ModelConfig, build_model
from linear_nets.engine.devices import resolve_device
from linear_nets.engine.losses import get_loss
from linear_nets.engine.metrics import accuracy
from linear_nets.engine.optim import build_optimizer
from linear_nets.pipelines.fashion_mnist.nodes import (
    N_CLASSES,
    PreprocessConfig,
    SoftmaxTrainConfig,
    fit_pixel_statistics,
    preprocess_pixels,
    train_softmax_regression,
)

ROOT = Path(__file__).resolve().parents[1]
PARAMETERS = ROOT / "conf" / "base" / "parameters_fashion_mnist.yml"
DATA = ROOT / "data" / "01_raw" / "fashion_mnist"
TEST_METRICS = ROOT / "data" / "08_reporting" / "fashion_mnist_test_metrics.json"
N_FEATURES = 28 * 28
KINDS = ("linear", "scratch")


@dataclass(frozen=True)
class EpochRow:
    """One epoch on each side; ``speedup`` is ``baseline_s / ours_s``."""

    case: str
    kind: str
    optimizer: str
    device: str
    batch_size: int
    baseline_s: float
    ours_s: float
    speedup: float
    baseline_test_accuracy: float
    ours_test_accuracy: float


@dataclass(frozen=True)
class RunRow:
    """The whole default pipeline run, from ``kedro run`` to exit."""

    case: str
    epochs: int
    wall_s: float
    final_test_accuracy: float


def defaults() -> tuple[PreprocessConfig, ModelConfig, SoftmaxTrainConfig]:
    """The pipeline's default preprocessing, model and training parameters."""
    params = yaml.safe_load(PARAMETERS.read_text())["fashion_mnist"]
    return (
        PreprocessConfig.model_validate(params["preprocess"]),
        ModelConfig.model_validate(params["model"]),
        SoftmaxTrainConfig.model_validate(params["train"]),
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def tutorial_epoch(
    train_set: Any, test_set: Any, kind: str, config: SoftmaxTrainConfig, device: torch.device
) -> tuple[float, float]:
    """The baseline: one epoch over the per-image DataLoader, then its test accuracy."""
    torch.manual_seed(config.seed)
    model = build_model(kind, N_FEATURES, n_outputs=N_CLASSES, seed=config.seed).to(device)
    loss_fn = get_loss("cross_entropy", scratch=model.scratch)
    optimizer = build_optimizer(config.optimizer, model.parameters(), config.lr)
    started = time.perf_counter()
    model.train()
    loss_sum = correct = seen = 0.0
    for X_rows, y_rows in DataLoader(train_set, config.batch_size, shuffle=True):
        X, y = X_rows.to(device), y_rows.to(device)
        y_hat = model(X)
        loss = loss_fn(y_hat, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss_sum += float(loss.detach()) * len(y)
        correct += float(accuracy(y_hat, y)) * len(y)
        seen += len(y)
    model.eval()
    test_correct = 0.0
    with torch.no_grad():
        for X_rows, y_rows in DataLoader(test_set, config.batch_size):
            X, y = X_rows.to(device), y_rows.to(device)
            test_correct += float(accuracy(model(X), y)) * len(y)
    _sync(device)
    return time.perf_counter() - started, test_correct / len(test_set)


def tutorial_dataset(scratch: Path, archives: Path, **kwargs: Any) -> Any:
    """torchvision's ``FashionMNIST`` as the tutorial builds it, fed from our verified archives.

    With the archives already in its ``raw`` folder, torchvision verifies and extracts them
    instead of downloading.
    """
    from torchvision.datasets import FashionMNIST

    raw = scratch / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, _ in FashionMNIST.resources:
        if not (raw / name).is_file():
            shutil.copyfile(archives / name, raw / name)
    return FashionMNIST(scratch, download=True, **kwargs)


def our_epoch(
    tensors: tuple[torch.Tensor, ...], kind: str, config: SoftmaxTrainConfig
) -> tuple[float, float]:
    """Ours: the pipeline's training node for one epoch, then the test accuracy it recorded."""
    one_epoch = config.model_copy(update={"epochs": 1})
    started = time.perf_counter()
    _, history = train_softmax_regression(
        *tensors, model=ModelConfig(kind=kind), params=one_epoch
    )
    _sync(resolve_device(config.device))
    return time.perf_counter() - started, history["val_accuracy"][-1]  # the test split here


def best(runs: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """The fastest run's seconds, and its test accuracy."""
    return min(runs, key=lambda run: run[0])


def measure_epochs(
    root: Path, mirror: str | None, kinds: Sequence[str], repeat: int
) -> tuple[list[EpochRow], dict[str, float]]:
    """Both sides for each model kind, and each side's one-time set-up seconds."""
    from torchvision.transforms import ToTensor

    preprocess, _, config = defaults()
    device = resolve_device(config.device)
    started = time.perf_counter()
    raw = FashionMNISTSource(root)(mirror=mirror)
    statistics = fit_pixel_statistics(raw["train_images"], preprocess)
    tensors = tuple(
        preprocess_pixels(raw[key], preprocess, statistics) if "images" in key else raw[key]
        for key in ("train_images", "train_labels", "test_images", "test_labels")
    )
    ours_setup = time.perf_counter() - started
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        train_set = tutorial_dataset(Path(scratch), root, train=True, transform=ToTensor())
        test_set = tutorial_dataset(Path(scratch), root, train=False, transform=ToTensor())
    baseline_setup = time.perf_counter() - started
    our_epoch(tensors, kinds[0], config)  # first-call costs (autograd, CUDA context) go untimed

    rows = []
    for kind in kinds:
        baseline_s, baseline_acc = best(
            [tutorial_epoch(train_set, test_set, kind, config, device) for _ in range(repeat)]
        )
        ours_s, ours_acc = best([our_epoch(tensors, kind, config) for _ in range(repeat)])
        rows.append(EpochRow(
            case="fashion_mnist-epoch", kind=kind, optimizer=config.optimizer,
            device=device.type, batch_size=config.batch_size or len(tensors[0]),
            baseline_s=baseline_s, ours_s=ours_s,  # full precision: speedup is their ratio
            speedup=round(baseline_s / ours_s, 1),
            baseline_test_accuracy=round(baseline_acc, 4), ours_test_accuracy=round(ours_acc, 4),
        ))
        print(f"measured one epoch of {kind}", file=sys.stderr, flush=True)
    return rows, {"baseline": baseline_setup, "ours": ours_setup}


def read_test_metrics(path: Path) -> dict[str, Any]:
    """The test metrics the last run saved: the newest version when the catalog versions the
    file (``path`` is then a folder of ``<version>/<name>``), else the file itself."""
    if path.is_dir():
        from kedro.io import Version
        from kedro_datasets.json import JSONDataset

        return JSONDataset(filepath=str(path), version=Version(None, None)).load()
    return json.loads(path.read_text())


def measure_default_run(mirror: str | None) -> RunRow:
    """``kedro run --pipeline=fashion_mnist`` with the default parameters, in a subprocess."""
    command = [sys.executable, "-m", "kedro", "run", "--pipeline=fashion_mnist"]
    if mirror is not None:
        command += ["--params", f"fashion_mnist.source.mirror={mirror}"]
    environment = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, check=False
    )
    wall_s = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"the default run failed:\n{done.stderr[-4000:]}")
    final = read_test_metrics(TEST_METRICS)["test_accuracy"]
    return RunRow(
        case="fashion_mnist-default-run", epochs=defaults()[2].epochs,
        wall_s=round(wall_s, 1), final_test_accuracy=round(final, 4),
    )


def format_table(rows: Sequence[EpochRow], run: RunRow | None, setup: dict[str, float]) -> str:
    """A plain-text table of the epoch rows, then the default run."""
    header = (
        f"{'case':<20} {'kind':<8} {'optim':<10} {'device':<6} {'batch':>5} "
        f"{'baseline s':>10} {'ours s':>8} {'speedup':>8} {'acc baseline':>12} {'acc ours':>9}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row.case:<20} {row.kind:<8} {row.optimizer:<10} {row.device:<6} "
            f"{row.batch_size:>5} {row.baseline_s:>10.2f} {row.ours_s:>8.3f} "
            f"{row.speedup:>7.1f}x {row.baseline_test_accuracy:>12.4f} "
            f"{row.ours_test_accuracy:>9.4f}"
        )
    lines.append(
        f"set-up, once: tutorial FashionMNIST datasets {setup['baseline']:.2f} s; "
        f"ours, IDX files to scaled tensors {setup['ours']:.2f} s"
    )
    if run is not None:
        lines.append(
            f"\nwhole default run (kedro run --pipeline=fashion_mnist, {run.epochs} epochs): "
            f"{run.wall_s:.1f} s wall, final test accuracy {run.final_test_accuracy:.4f}"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mirror", help="base URL or directory of the four .gz files")
    parser.add_argument("--root", type=Path, default=DATA,
                        help="where the pipeline keeps the files; default: %(default)s")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--repeat", type=int, default=3, help="epochs per side; the best counts")
    parser.add_argument("--skip-run", action="store_true", help="skip the whole default run")
    parser.add_argument("--quick", action="store_true",
                        help="the linear model only, one repeat, no default run")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the rows here")
    args = parser.parse_args(argv)
    if args.quick:
        args.kinds, args.repeat, args.skip_run = ["linear"], 1, True
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    return args


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Measure, print the table and optionally write the JSON rows."""
    args = parse_args(argv)
    logging.getLogger("linear_nets").setLevel(logging.WARNING)
    rows, setup = measure_epochs(args.root, args.mirror, args.kinds, args.repeat)
    run = None if args.skip_run else measure_default_run(args.mirror)
    print(format_table(rows, run, setup))
    print(
        f"\nbest of {args.repeat} epoch(s) per side; torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU thread(s)"
    )
    records = [asdict(row) for row in rows] + ([asdict(run)] if run else [])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(records, indent=2) + "\n")
    return records


if __name__ == "__main__":
    main()
