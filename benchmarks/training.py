"""The engine's training against plain-PyTorch loops and a hand-written floor, side by side.

Both sides train the same ``nn.Linear`` model from the same initial weights with the same MSE
loss, ``torch.optim.SGD``, learning rate, batch size and number of epochs, on the same synthetic
data, in this one process. The baseline is the loop the tutorials teach::

    loader = DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=True)
    for epoch in range(epochs):
        for X_rows, y_rows in loader:
            X_batch, y_batch = X_rows.to(device), y_rows.to(device)
            loss = loss_fn(model(X_batch), y_batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

The strongest plain-PyTorch loop, the second baseline, keeps the tensors in memory on the
training device and lets a ``BatchSampler`` draw each batch's indices, so the loader indexes
the tensors once per batch instead of once per row and collating::

    dataset = TensorDataset(X.to(device), y.to(device))
    sampler = BatchSampler(RandomSampler(dataset), batch_size, drop_last=False)
    loader = DataLoader(dataset, sampler=sampler, batch_size=None)

The plain loop most people would write next, without any ``DataLoader``: tensors on the
device, one ``randperm`` per epoch and an indexing per batch::

    order = torch.randperm(n, device=device)
    for start in range(0, n, batch_size):
        rows = order[start : start + batch_size]
        loss = loss_fn(model(X[rows]), y[rows])
        ...

And the floor, what the arithmetic costs without autograd or an optimizer object: the same
``randperm``, each batch gathered with ``torch.index_select`` into one preallocated buffer,
the gradient of the mean squared error written out by hand (``2/m Xᵀr`` and ``2/m Σr``) and
applied in place.

Ours is ``linear_nets.engine.train`` (tensors moved to the device once, one shuffle per
epoch, its rows gathered 8 MB at a time into one buffer, slices of it), which in addition
records the epoch loss and checks for divergence. Each side's time covers everything from the
tensors in memory to the trained model (loader or batches, moving data to the device, every
epoch) and is the best of ``--repeat`` runs; the sides take turns (one run of each per round),
so a machine whose load changes slows them alike.

Run ``uv run python benchmarks/training.py`` (a couple of minutes on two CPU cores), or
``--quick`` for a few seconds; ``--json PATH`` writes the rows.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

from linear_nets.engine import TrainConfig, build_model, train
from linear_nets.engine.losses import get_loss

CASE = "linear-mse-sgd"
N_FEATURES = 13  # as many as the Boston housing features
LR = 0.05
SEED = 0
SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (1_000, 10_000)
BATCH_SIZE = {10_000: 256, 100_000: 1024}
"""Batch size per row count up to that count; 4096 beyond the last."""
LARGE_BATCH = 4096
EPOCHS = {10_000: 5, 100_000: 2}
"""Epochs per row count up to that count; 1 beyond the last, where one baseline epoch takes
seconds."""


@dataclass(frozen=True)
class Row:
    """One measured case; ``speedup`` is ``baseline_s / ours_s`` (against
    ``DataLoader(shuffle=True)``), ``speedup_vs_batch_sampler`` is ``batch_sampler_s / ours_s``,
    ``speedup_vs_randperm`` is ``randperm_s / ours_s`` and ``ours_vs_floor`` is
    ``ours_s / floor_s`` (how many times the hand-written floor the engine takes)."""

    case: str
    device: str
    n: int
    d: int
    batch_size: int
    epochs: int
    baseline_s: float
    batch_sampler_s: float
    randperm_s: float
    floor_s: float
    ours_s: float
    speedup: float
    speedup_vs_batch_sampler: float
    speedup_vs_randperm: float
    ours_vs_floor: float


def plan(n: int) -> tuple[int, int]:
    """Batch size and epochs for ``n`` rows."""
    batch = next((size for limit, size in BATCH_SIZE.items() if n <= limit), LARGE_BATCH)
    epochs = next((count for limit, count in EPOCHS.items() if n <= limit), 1)
    return batch, epochs


def synthetic_data(n: int, d: int, seed: int = SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` rows of y = X w + b + N(0, 0.01²) with X ~ N(0, 1), on the CPU in float32."""
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=generator)
    w = torch.randn(d, generator=generator)
    return X, X @ w + 4.2 + 0.01 * torch.randn(n, generator=generator)


def tutorial_loop(
    X: torch.Tensor, y: torch.Tensor, device: torch.device, batch_size: int, epochs: int
) -> torch.nn.Module:
    """The baseline: ``DataLoader(TensorDataset(X, y), shuffle=True)`` and a plain SGD loop."""
    torch.manual_seed(SEED)
    model = build_model("linear", X.shape[1], seed=SEED).to(device)
    loss_fn = get_loss("mse")
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    loader = DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=True)
    for _ in range(epochs):
        for X_rows, y_rows in loader:
            X_batch, y_batch = X_rows.to(device), y_rows.to(device)
            loss = loss_fn(model(X_batch), y_batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model


def batch_sampler_loop(
    X: torch.Tensor, y: torch.Tensor, device: torch.device, batch_size: int, epochs: int
) -> torch.nn.Module:
    """The strongest plain-PyTorch loop: tensors on the device, one index per batch drawn by
    ``BatchSampler(RandomSampler)``, ``DataLoader(batch_size=None)`` without collation."""
    torch.manual_seed(SEED)
    model = build_model("linear", X.shape[1], seed=SEED).to(device)
    loss_fn = get_loss("mse")
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    dataset = TensorDataset(X.to(device), y.to(device))
    sampler = BatchSampler(RandomSampler(dataset), batch_size, drop_last=False)
    loader = DataLoader(dataset, sampler=sampler, batch_size=None)
    for _ in range(epochs):
        for X_batch, y_batch in loader:
            loss = loss_fn(model(X_batch), y_batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model


def randperm_loop(
    X: torch.Tensor, y: torch.Tensor, device: torch.device, batch_size: int, epochs: int
) -> torch.nn.Module:
    """The plain loop without a DataLoader: tensors on the device, ``randperm``, ``X[rows]``."""
    torch.manual_seed(SEED)
    model = build_model("linear", X.shape[1], seed=SEED).to(device)
    loss_fn = get_loss("mse")
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    X, y = X.to(device), y.to(device)
    for _ in range(epochs):
        order = torch.randperm(len(X), device=device)
        for start in range(0, len(X), batch_size):
            rows = order[start : start + batch_size]
            loss = loss_fn(model(X[rows]), y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model


@torch.no_grad()
def floor_loop(
    X: torch.Tensor, y: torch.Tensor, device: torch.device, batch_size: int, epochs: int
) -> torch.nn.Module:
    """The floor: the same SGD with the MSE gradient by hand, batches gathered into one
    preallocated buffer, no autograd and no optimizer object."""
    model = build_model("linear", X.shape[1], seed=SEED).to(device)
    w, b = model.net.weight[0], model.net.bias  # views: updated in place
    X, y = X.to(device), y.to(device)
    X_buffer, y_buffer = X.new_empty((batch_size, X.shape[1])), y.new_empty(batch_size)
    for _ in range(epochs):
        order = torch.randperm(len(X), device=device)
        for start in range(0, len(X), batch_size):
            rows = order[start : start + batch_size]
            m = len(rows)
            X_batch = torch.index_select(X, 0, rows, out=X_buffer[:m])
            y_batch = torch.index_select(y, 0, rows, out=y_buffer[:m])
            residual = torch.addmv(b.expand(m), X_batch, w).sub_(y_batch)  # X w + b - y
            w.sub_(X_batch.T @ residual, alpha=2 * LR / m)  # d mean(r²) / dw = 2/m Xᵀr
            b.sub_(residual.sum(), alpha=2 * LR / m)
    return model


def engine(
    X: torch.Tensor, y: torch.Tensor, device: torch.device, batch_size: int, epochs: int
) -> torch.nn.Module:
    """Ours: the project's training engine with the same model, loss, optimizer and batches."""
    config = TrainConfig(
        device=str(device), optimizer="sgd", lr=LR, epochs=epochs, batch_size=batch_size,
        loss="mse", seed=SEED,
    )
    return train("linear", X, y, config, name="benchmark").model


LOOPS: dict[str, Callable[..., torch.nn.Module]] = {
    "baseline": tutorial_loop,
    "batch_sampler": batch_sampler_loop,
    "randperm": randperm_loop,
    "floor": floor_loop,
    "ours": engine,
}
"""Every side, in the order each round runs them."""


def interleaved_times(
    repeat: int, *args: object
) -> tuple[dict[str, float], dict[str, torch.nn.Module]]:
    """Each side's fastest of ``repeat`` runs in seconds, the sides taking turns (one run of
    each per round), and the model each side's last run trained."""
    times: dict[str, list[float]] = {name: [] for name in LOOPS}
    models: dict[str, torch.nn.Module] = {}
    for _ in range(repeat):
        for name, run in LOOPS.items():
            started = time.perf_counter()
            models[name] = run(*args)
            if any(p.is_cuda for p in models[name].parameters()):
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - started)
    return {name: min(values) for name, values in times.items()}, models


@torch.no_grad()
def mse(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    """The trained model's MSE on all rows, to show both sides learned the same thing."""
    model = model.cpu()
    return float(((model(X) - y) ** 2).mean())


def measure(n: int, device: torch.device, repeat: int) -> tuple[Row, float, float]:
    """Time the baselines and ours on ``n`` rows; return the row, the tutorial loop's and our
    final MSE."""
    X, y = synthetic_data(n, N_FEATURES)
    batch_size, epochs = plan(n)
    seconds, models = interleaved_times(repeat, X, y, device, batch_size, epochs)
    ours_s = seconds["ours"]
    row = Row(
        case=CASE, device=device.type, n=n, d=N_FEATURES, batch_size=batch_size, epochs=epochs,
        # full precision: each ratio is exactly the ratio of two of these
        baseline_s=seconds["baseline"], batch_sampler_s=seconds["batch_sampler"],
        randperm_s=seconds["randperm"], floor_s=seconds["floor"], ours_s=ours_s,
        speedup=round(seconds["baseline"] / ours_s, 1),
        speedup_vs_batch_sampler=round(seconds["batch_sampler"] / ours_s, 1),
        speedup_vs_randperm=round(seconds["randperm"] / ours_s, 2),
        ours_vs_floor=round(ours_s / seconds["floor"], 2),
    )
    return row, mse(models["baseline"], X, y), mse(models["ours"], X, y)


def devices() -> list[torch.device]:
    """The CPU, and the GPU when there is one."""
    found = [torch.device("cpu")]
    if torch.cuda.is_available():
        found.append(torch.device("cuda"))
    return found


def warm_up(device: torch.device) -> None:
    """One small run of each side, so first-call costs (CUDA context, imports) go untimed."""
    X, y = synthetic_data(512, N_FEATURES)
    for run in LOOPS.values():
        run(X, y, device, 64, 1)


def format_table(results: Sequence[tuple[Row, float, float]]) -> str:
    """A plain-text table of the rows with each side's final MSE."""
    header = (
        f"{'case':<15} {'device':<6} {'n':>9} {'d':>3} {'batch':>6} {'epochs':>6} "
        f"{'shuffle s':>10} {'sampler s':>10} {'randperm s':>10} {'floor s':>9} {'ours s':>9} "
        f"{'vs shuffle':>10} {'vs sampler':>10} {'vs randperm':>11} {'÷ floor':>8} "
        f"{'MSE baseline':>13} {'MSE ours':>10}"
    )
    lines = [header, "-" * len(header)]
    for row, baseline_mse, our_mse in results:
        lines.append(
            f"{row.case:<15} {row.device:<6} {row.n:>9} {row.d:>3} {row.batch_size:>6} "
            f"{row.epochs:>6} {row.baseline_s:>10.3f} {row.batch_sampler_s:>10.3f} "
            f"{row.randperm_s:>10.4f} {row.floor_s:>9.4f} {row.ours_s:>9.4f} "
            f"{row.speedup:>9.1f}x {row.speedup_vs_batch_sampler:>9.1f}x "
            f"{row.speedup_vs_randperm:>10.2f}x {row.ours_vs_floor:>7.2f}x "
            f"{baseline_mse:>13.3g} {our_mse:>10.3g}"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=lambda text: int(float(text)), nargs="+", default=list(SIZES),
        metavar="N", help="row counts (1e6 or 1000000); default: %(default)s",
    )
    parser.add_argument("--quick", action="store_true",
                        help=f"sizes {' '.join(map(str, QUICK_SIZES))} and one repeat")
    parser.add_argument("--repeat", type=int, default=3, help="runs per side; the best counts")
    parser.add_argument("--cpu-only", action="store_true", help="skip the GPU even if present")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the rows here")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.repeat = list(QUICK_SIZES), 1
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    return args


def main(argv: Sequence[str] | None = None) -> list[Row]:
    """Measure every size on every device, print the table and optionally write the JSON."""
    args = parse_args(argv)
    logging.getLogger("linear_nets").setLevel(logging.WARNING)
    targets = [torch.device("cpu")] if args.cpu_only else devices()
    results = []
    for device in targets:
        warm_up(device)
        for n in args.sizes:
            results.append(measure(n, device, args.repeat))
            print(f"measured n={n} on {device.type}", file=sys.stderr, flush=True)
    rows = [row for row, _, _ in results]
    print(format_table(results))
    print(
        f"\nbest of {args.repeat} run(s) per side; torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU thread(s); "
        f"median speedup {statistics.median(row.speedup for row in rows):.1f}x against "
        "DataLoader(shuffle=True), "
        f"{statistics.median(row.speedup_vs_batch_sampler for row in rows):.1f}x against "
        "DataLoader over a BatchSampler, "
        f"{statistics.median(row.speedup_vs_randperm for row in rows):.2f}x against the plain "
        f"randperm loop; ours takes {statistics.median(row.ours_vs_floor for row in rows):.2f}x "
        "the hand-written floor (median over the rows)"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(row) for row in rows], indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
