"""Training beyond memory and beyond one process: throughput, peak memory, gap to the optimum.

Every case runs in its own Python process (so its peak RSS is its own) on Parquet partitions
that the ``synthetic_large`` pipeline's generator writes (y = X w + b + N(0, 0.5²), d = 16):

- ``memory``: the partitions read into tensors, then the engine's in-memory training;
- ``stream``: the same rows streamed from the partitions (:class:`PartitionSource`), after the
  one streamed pass that factors [1 X y] by QR (the exact optimum);
- ``ddp``: full-batch training as a torch.distributed job of 1 and of 2 gloo processes
  (``fit_parallel``), and the largest parameter difference between the two.

``memory`` and ``stream`` train the same ``nn.Linear`` with SGD (lr 0.05, cosine decay), batch
4096, for one epoch, or for as many as make 2000 steps on a smaller data set. ``seconds`` is
the training time (for ``ddp``, rank 0's, without starting the processes); ``rows_per_s`` =
rows × epochs / seconds; ``train_mse`` and ``optimum_mse`` come from the streamed QR of
the same rows. On a machine with CUDA the 1e8-row stream also runs
on the GPU as a one-process nccl job; elsewhere the table says it was not run.

- ``qr``: ``train.optimizer: lstsq`` on the partitions, the engine's exact solve by a streamed
  tall-skinny QR (one pass, memory independent of n), against ``read``: the pure Parquet read
  rate of the same files (``pyarrow.parquet.read_table``, nothing else), both after one pass
  that leaves the files in the page cache. ``rel_diff_vs_lstsq`` = max |θ − θ_mem| / max |θ_mem|
  against ``torch.linalg.lstsq`` on all rows in memory (float64), for n ≤ 2e6.

    uv run python benchmarks/scale.py --json rows.json          # n = 1e6, 1e7, 1e8: ~7 GB in /tmp
    uv run python benchmarks/scale.py --quick --json rows.json  # n = 1e4: a few minutes
    uv run python benchmarks/scale.py --only qr                 # the exact solve: n = 1e6, 1e7
    uv run python benchmarks/scale.py --quick --skip-ddp        # the smallest: memory and stream

``--rates`` measures the stream against the plain read instead: on n rows (default 1e7, in
partitions of 250 000 rows: 40) it times, in rounds that take turns, a plain pyarrow read
(``ParquetFile.iter_batches``, each column to numpy), the project's reader
(``read_partitions``: partitions to float32 tensors), the exact streamed solve
(``streamed_qr``: ``solve_streamed_least_squares``, the streamed QR of [1 X y] in float64 that
replaced the normal equations, fed the decoded columns by ``factor_partitions``; this case was
called ``normal_equations`` before), one
streamed SGD epoch (``fit`` on a ``PartitionSource``, batch 4096), that epoch's shuffled stream
with no step taken, and each stream's arithmetic alone on rows in memory (``RATE_CASES``), each
as rows/s and as a share of the plain read, with the process pinned to 1 core, 2 cores and all
of them
(``os.sched_setaffinity``); then each case's peak RSS in a process of its own beside that
process's footprint after its imports.
``--format pandas`` reads the partitions through ``pandas.ParquetDataset`` instead of the
catalog's ``ArrowParquetDataset`` (with ``PYTHONPATH`` at an older ``src``: the "before").

    uv run python benchmarks/scale.py --rates                 # n = 1e7: 650 MB in /tmp
    uv run python benchmarks/scale.py --rates --n-rates 1e5 --rounds 1   # seconds
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

D = 16
NOISE = 0.5
BATCH = 4096
LR = 0.05
FULL = {"stream": (10**6, 10**7, 10**8), "memory": (10**6, 10**7), "ddp": 10**6}
QUICK = {"stream": (10**4,), "memory": (10**4,), "ddp": 10**4}
EXACT = {"full": (10**6, 10**7), "quick": (10**4,)}
"""Sizes of the ``read`` and ``qr`` cases."""
EXACT_COMPARED_UP_TO = 2 * 10**6
"""The largest n whose streamed QR is compared with an in-memory ``torch.linalg.lstsq``."""
DDP_EPOCHS = 3
MIN_STEPS = 2000
"""Small data sets train for more epochs, so that every run takes about this many SGD steps."""
KEYS = (
    "case",
    "device",
    "n",
    "d",
    "nproc",
    "seconds",
    "rows_per_s",
    "peak_rss_mb",
    "train_mse",
    "optimum_mse",
    "max_param_diff_vs_single",
    "rel_diff_vs_lstsq",
)


def _epochs(n: int) -> int:
    return max(1, -(-MIN_STEPS * BATCH // n))


def _partition_rows(n: int) -> int:
    return min(250_000, max(n // 4, 1))  # the pipeline's default partition size


def _folder(root: Path, n: int) -> Path:
    return root / f"n{n:.0e}".replace("+", "")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _dataset(folder: Path, fmt: str = "catalog"):
    """The catalog's ``synthetic_large_data`` (its Parquet options), written in ``folder``;
    ``fmt="pandas"`` reads the partitions through ``pandas.ParquetDataset`` instead."""
    import yaml
    from kedro.io import AbstractDataset

    catalog = yaml.safe_load((ROOT / "conf" / "base" / "catalog_synthetic_large.yml").read_text())
    config = {**catalog["synthetic_large_data"], "path": str(folder)}
    config.pop("metadata", None)
    if fmt == "pandas":
        config["dataset"] = {**config["dataset"], "type": "pandas.ParquetDataset"}
    return AbstractDataset.from_config("synthetic_large_data", config)


def _config(n: int):
    from linear_nets.pipelines.synthetic_large.nodes import LargeDataConfig

    return LargeDataConfig(n=n, d=D, partition_rows=_partition_rows(n), noise=NOISE, seed=0)


def generate(folder: Path, n: int) -> None:
    """Write the partitions of ``n`` rows, one at a time."""
    from linear_nets.pipelines.synthetic_large.nodes import generate_large_data

    _dataset(folder).save(generate_large_data(_config(n)))


def _warm_up() -> None:
    """The first optimizer imports torch._dynamo (seconds): keep it out of the timings."""
    import torch

    torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)


def _row(case: str, n: int, **values: object) -> dict[str, object]:
    row = dict.fromkeys(KEYS)
    row.update({"case": case, "n": n, "d": D, "nproc": 1, "device": "cpu", **values})
    return row


def run_exact_case(case: str, folder: Path, n: int, device: str) -> dict[str, object]:
    """``read``: the pure Parquet read rate; ``qr``: the engine's streamed exact solve."""
    import pyarrow.parquet as pq
    import torch

    files = sorted(folder.glob("*.parquet"))
    for path in files:  # both cases start with the files in the page cache
        pq.read_table(path)
    if case == "read":
        started = time.perf_counter()
        rows = sum(pq.read_table(path).num_rows for path in files)
        seconds = time.perf_counter() - started
        return _row(case, n, device="cpu", seconds=seconds, rows_per_s=rows / seconds)

    from linear_nets.engine import PartitionSource, TrainConfig, build_model, fit
    from linear_nets.engine.sources import read_partitions

    partitions = _dataset(folder).load()
    counts = {path.stem: pq.ParquetFile(path).metadata.num_rows for path in files}
    config = TrainConfig(device=device, optimizer="lstsq", lr=1.0, epochs=1)
    source = PartitionSource(partitions, counts, batch_size=None)
    result = fit(build_model("linear", D), source, config)
    w, b = result.model.cpu().coefficients()
    theta = torch.cat([b.reshape(1), w.flatten()]).double()
    difference = None
    if n <= EXACT_COMPARED_UP_TO:
        parts = [(X, y) for _name, X, y in read_partitions(partitions, "y")]
        X = torch.cat([X for X, _ in parts]).double()
        y = torch.cat([y for _, y in parts]).double()
        design = torch.cat([torch.ones(len(X), 1, dtype=torch.float64), X], dim=1)
        reference = torch.linalg.lstsq(design, y.unsqueeze(1)).solution.squeeze(1)
        difference = float((theta - reference).abs().max() / reference.abs().max())
    mse = result.history["train_loss"][-1]
    return _row(
        case,
        n,
        device=device,
        seconds=result.seconds,
        rows_per_s=n / result.seconds,
        peak_rss_mb=round(_peak_rss_mb(), 1),
        train_mse=mse,
        optimum_mse=mse,
        rel_diff_vs_lstsq=difference,
    )


def run_case(case: str, folder: Path, n: int, nproc: int, device: str) -> dict[str, object]:
    """One measurement, in this process; returns its row."""
    import torch

    if case in ("read", "qr"):
        return run_exact_case(case, folder, n, device)

    from linear_nets.engine import (
        DistributedConfig,
        PartitionSource,
        TrainConfig,
        build_model,
        fit,
        fit_parallel,
        train,
    )
    from linear_nets.pipelines.synthetic_large.nodes import solve_streamed_least_squares

    _warm_up()
    partitions = _dataset(folder).load()
    solved = solve_streamed_least_squares(partitions)
    from linear_nets.engine import StreamedQR

    equations = StreamedQR.from_dict(solved)
    rows = solved["partition_rows"]
    config = TrainConfig(
        device=device,
        optimizer="sgd",
        lr=LR,
        lr_schedule="cosine",
        epochs=_epochs(n),
        batch_size=BATCH,
    )
    epochs = config.epochs
    if case == "memory":
        from linear_nets.engine.sources import read_partitions

        parts = [(X, y) for _name, X, y in read_partitions(partitions, "y")]
        X = torch.cat([X for X, _ in parts])
        y = torch.cat([y for _, y in parts])
        del parts
        result = train("linear", X, y, config)
    elif case == "stream" and device == "cpu":
        source = PartitionSource(partitions, rows, batch_size=BATCH, seed=0)
        result = fit(build_model("linear", D), source, config)
    else:  # ddp, or the stream on cuda as a one-process nccl job
        full_batch = case == "ddp"
        epochs = DDP_EPOCHS if full_batch else epochs
        config = config.model_copy(
            update={
                "lr": 0.5 if full_batch else LR,
                "lr_schedule": "constant" if full_batch else "cosine",
                "epochs": epochs,
                "batch_size": None if full_batch else BATCH,
            }
        )
        source = PartitionSource(partitions, rows, batch_size=config.batch_size, seed=0)
        parallel = DistributedConfig(enabled=True, nproc_per_node=nproc)
        result = fit_parallel(build_model("linear", D), source, config, parallel)
    w, b = result.model.cpu().coefficients()
    return _row(
        case,
        n,
        nproc=nproc,
        device=device,
        seconds=result.seconds,
        rows_per_s=n * epochs / result.seconds,
        peak_rss_mb=round(_peak_rss_mb(), 1),
        train_mse=equations.mse(w.double(), float(b)),
        optimum_mse=solved["mse"],
        params=torch.cat([w.flatten(), b.reshape(1)]).tolist(),
    )


RATE_CASES = ("arrow", "reader", "streamed_qr", "sgd_epoch", "shuffle", "qr_math", "sgd_math")
"""``arrow`` is the plain pyarrow read every other case is compared with. ``shuffle`` is the SGD
epoch's stream with no step taken (the read, the copy into the shuffle buffer, the shuffled
blocks); the ``_math`` ones repeat a stream's arithmetic on rows already in memory (the same
blocks, thread counts and steps). Together they bound what each stream can reach: on one core
it pays its input and its arithmetic one after the other."""
STREAM_CASES = ("arrow", "reader", "streamed_qr", "sgd_epoch")
"""The cases whose peak RSS is measured, each in a fresh process."""
SHUFFLE_BUFFER = 250_000  # PartitionSource's default


def _pin(cores: int | None) -> None:
    """Run this process (and the threads it starts) on its first ``cores`` cores."""
    if cores is not None:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:cores])


def _rate_case(case: str, folder: Path, fmt: str):
    """A callable that runs ``case`` once over the partitions in ``folder``."""
    if case == "arrow":
        import pyarrow.parquet as pq

        files = sorted(folder.glob("*.parquet"))

        def read() -> None:
            for path in files:
                for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536):
                    for column in batch.columns:
                        column.to_numpy()

        return read
    from linear_nets.engine import PartitionSource, TrainConfig, build_model, fit
    from linear_nets.engine.sources import read_partitions
    from linear_nets.pipelines.synthetic_large.nodes import solve_streamed_least_squares

    partitions = _dataset(folder, fmt).load()
    if case in ("qr_math", "sgd_math"):
        return _math_case(case, partitions)
    if case == "reader":
        return lambda: sum(len(y) for _name, _X, y in read_partitions(partitions, "y"))
    if case == "streamed_qr":
        return lambda: solve_streamed_least_squares(partitions)
    rows = solve_streamed_least_squares(partitions)["partition_rows"]
    config = TrainConfig(device="cpu", optimizer="sgd", lr=LR, epochs=1, batch_size=BATCH)

    def source() -> PartitionSource:
        return PartitionSource(partitions, rows, batch_size=BATCH, shuffle_buffer=SHUFFLE_BUFFER)

    if case == "shuffle":
        return lambda: sum(len(y) for _X, y in source())
    return lambda: fit(build_model("linear", D), source(), config)


def _math_case(case: str, partitions):
    """A stream's arithmetic alone, on its partitions read into memory beforehand: the streamed
    QR's ``add`` of each partition, or one SGD epoch's steps on shuffled blocks of
    ``SHUFFLE_BUFFER`` rows (column-major views, as ``PartitionSource`` hands them out)."""
    import torch

    from linear_nets.engine import StreamedQR, TrainConfig, build_model, fit
    from linear_nets.engine.sources import read_partitions, streaming_threads

    parts = [(X, y) for _name, X, y in read_partitions(partitions, "y")]
    if case == "qr_math":

        def solve() -> None:
            with streaming_threads():
                qr = StreamedQR(parts[0][0].shape[1])
                for X, y in parts:
                    qr.add(X, y)
                qr.solve()

        return solve
    X = torch.cat([X for X, _ in parts]).T.contiguous()  # (features, n), as the blocks are
    y = torch.cat([y for _, y in parts])
    parts.clear()  # the rows are in X and y now
    full = SHUFFLE_BUFFER - SHUFFLE_BUFFER % BATCH
    blocks = [
        (X[:, start : start + full].T, y[start : start + full]) for start in range(0, len(y), full)
    ]

    class InMemory:
        def __len__(self) -> int:
            return sum(-(-len(block_y) // BATCH) for _, block_y in blocks)

        def to(self, device):
            return self

        def __iter__(self):
            with streaming_threads():
                for block_X, block_y in blocks:
                    for start in range(0, len(block_y), BATCH):
                        yield block_X[start : start + BATCH], block_y[start : start + BATCH]

    config = TrainConfig(device="cpu", optimizer="sgd", lr=LR, epochs=1, batch_size=BATCH)
    return lambda: fit(build_model("linear", D), InMemory(), config)


def run_rates(folder: Path, n: int, rounds: int, fmt: str) -> dict[str, object]:
    """Every rate case in turn, ``rounds`` times, in this (pinned) process: the best seconds."""
    import torch

    _warm_up()
    runs = {case: _rate_case(case, folder, fmt) for case in RATE_CASES}
    seconds: dict[str, list[float]] = {case: [] for case in RATE_CASES}
    for _ in range(rounds):
        for case, run in runs.items():
            started = time.perf_counter()
            run()
            seconds[case].append(time.perf_counter() - started)
    best = {case: min(values) for case, values in seconds.items()}
    return {
        "n": n,
        "cores": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "format": fmt,
        "seconds": best,
        "share_of_arrow": {case: best["arrow"] / best[case] for case in RATE_CASES},
    }


def run_rss(case: str, folder: Path, fmt: str) -> dict[str, object]:
    """``case`` once in this fresh process: its peak RSS, and the RSS after the imports."""
    import pyarrow.parquet  # noqa: F401  (the imports every case pays)
    import torch  # noqa: F401

    import linear_nets.engine
    import linear_nets.pipelines.synthetic_large.nodes  # noqa: F401

    _warm_up()
    imports = _peak_rss_mb()
    run = _rate_case(case, folder, fmt)
    run()
    return {"case": case, "imports_mb": imports, "peak_rss_mb": _peak_rss_mb()}


def measure_rates(
    root: Path, n: int, rounds: int, fmt: str, *, timeout_s: float, keep: bool
) -> list[dict[str, object]]:
    """The rates with 1 core, 2 cores and all of them, then each case's peak RSS (all cores)."""
    folder = _folder(root, n)
    total = len(os.sched_getaffinity(0))
    try:
        if not (folder.exists() and any(folder.glob("*.parquet"))):
            _child(["--generate", str(folder), "--n", str(n)], timeout_s)
        results = []
        for cores in sorted({1, min(2, total), total}):
            args = ["--rate-child", str(folder), "--n", str(n), "--rounds", str(rounds)]
            args += ["--cores", str(cores), "--format", fmt]
            results.append(_child(args, timeout_s))
        for case in STREAM_CASES:
            args = ["--rss-child", case, str(folder), "--format", fmt]
            results.append(_child(args, timeout_s))
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    return results


def _bounds(result: dict[str, object]) -> str:
    """What its input and its arithmetic alone allow each stream (the QR's input is the
    reader, the SGD epoch's the shuffled stream): on one core the two take turns (shares add
    as times: 1 / (1/input + 1/math)); on more they can overlap (the slower of the two)."""
    share = result["share_of_arrow"]
    cells = []
    for stream, source, math in (
        ("streamed_qr", "reader", "qr_math"),
        ("sgd_epoch", "shuffle", "sgd_math"),
    ):
        given, alone = share[source], share[math]
        bound = 1 / (1 / given + 1 / alone) if result["cores"] == 1 else min(given, alone)
        cells.append(f"{stream} {bound:.2f}x (reached {share[stream] / bound:.0%} of it)")
    return "; ".join(cells)


def report_rates(results: list[dict[str, object]]) -> str:
    """One line per core count (rows/s and share of the plain read), then the RSS lines."""
    lines = [
        f"{'cores':>5} {'torch dflt':>10} {'format':>7} "
        + " ".join(f"{case + ' rows/s':>24}" for case in RATE_CASES)
    ]
    for result in results:
        if "seconds" not in result:
            continue
        cells = []
        for case in RATE_CASES:
            rate = result["n"] / result["seconds"][case]
            cells.append(f"{rate:>14.4g} ({result['share_of_arrow'][case]:.2f}x)")
        lines.append(
            f"{result['cores']:>5} {result['torch_threads']:>10} {result['format']:>7} "
            + " ".join(f"{cell:>24}" for cell in cells)
        )
    for result in results:
        if "seconds" in result:
            lines.append(
                f"{result['cores']:>5} cores: the most a stream can reach, " + _bounds(result)
            )
    buffer_mb = 2 * SHUFFLE_BUFFER * (D + 1) * 4 / 2**20
    for result in results:
        if "peak_rss_mb" in result:
            limit = 2 * result["imports_mb"] + buffer_mb
            lines.append(
                f"peak RSS {result['case']:<17} {result['peak_rss_mb']:7.0f} MB; imports "
                f"{result['imports_mb']:.0f} MB; goal <= 2 x imports + shuffle buffer "
                f"({buffer_mb:.0f} MB) = {limit:.0f} MB"
            )
    lines.append(
        "(x: the share of the plain pyarrow read rate; goals: reader >= 0.8, "
        "streamed QR and SGD epoch >= 0.5)"
    )
    return "\n".join(lines)


def _child(args: list[str], timeout_s: float) -> dict[str, object]:
    """Run this script with ``args`` in a fresh process; its last stdout line is its row."""
    command = [sys.executable, str(Path(__file__).resolve()), *args]
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    done = subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=timeout_s, env=env
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(root: Path, sizes: dict, timeout_s: float) -> list[dict[str, object]]:
    """Every case, each in its own process, on data written under ``root`` (removed after)."""
    import torch

    wanted = sorted(
        {*sizes["stream"], *sizes["memory"], *sizes["exact"]}
        | ({sizes["ddp"]} if sizes["ddp"] else set())
    )
    rows: list[dict[str, object]] = []
    try:
        for n in wanted:
            folder = _folder(root, n)
            _child(["--generate", str(folder), "--n", str(n)], timeout_s)
            if n in sizes["exact"]:  # interleaved: the read rate, the solve, the read rate again
                for case in ("read", "qr", "read")[: 2 if n < 10**6 else 3]:
                    rows.append(_child(["--case", case, str(folder), "--n", str(n)], timeout_s))
            if n in sizes["memory"]:
                rows.append(_child(["--case", "memory", str(folder), "--n", str(n)], timeout_s))
            if n in sizes["stream"]:
                rows.append(_child(["--case", "stream", str(folder), "--n", str(n)], timeout_s))
                if n == max(sizes["stream"]) and torch.cuda.is_available():
                    args = ["--case", "stream", str(folder), "--n", str(n), "--device", "cuda"]
                    rows.append(_child(args, timeout_s))
            if n == sizes["ddp"]:
                single = None
                for nproc in (1, 2):
                    args = ["--case", "ddp", str(folder), "--n", str(n), "--nproc", str(nproc)]
                    row = _child(args, timeout_s)
                    if single is None:
                        single = row["params"]
                    else:
                        row["max_param_diff_vs_single"] = max(
                            abs(a - b) for a, b in zip(row["params"], single, strict=True)
                        )
                    rows.append(row)
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for row in rows:
        row.pop("params", None)
    return rows


def _find(rows, case: str, n: int | None = None, nproc: int = 1, device: str = "cpu"):
    for row in rows:
        if (
            row["case"] == case
            and row["nproc"] == nproc
            and row["device"] == device
            and (n is None or row["n"] == n)
        ):
            return row
    return None


def report(rows: list[dict[str, object]], sizes: dict) -> str:
    """The rows as a table, then the ratios the targets are about."""
    lines = [
        f"{'case':7} {'device':6} {'n':>8} {'nproc':>5} {'seconds':>9} {'rows/s':>11} "
        f"{'peak RSS MB':>11} {'train MSE':>10} {'optimum':>10} {'gap %':>8} {'Δparam':>9}"
    ]
    exact = [row for row in rows if row["case"] in ("read", "qr")]
    rows = [row for row in rows if row not in exact]
    for row in rows:
        gap = 100 * (row["train_mse"] - row["optimum_mse"]) / row["optimum_mse"]
        diff = row["max_param_diff_vs_single"]
        lines.append(
            f"{row['case']:7} {row['device']:6} {row['n']:>8.0e} {row['nproc']:>5} "
            f"{row['seconds']:>9.2f} {row['rows_per_s']:>11.4g} {row['peak_rss_mb']:>11.0f} "
            f"{row['train_mse']:>10.6f} {row['optimum_mse']:>10.6f} {gap:>8.4f} "
            f"{'' if diff is None else f'{diff:.2e}':>9}"
        )
    if not rows:
        return report_exact(exact)
    n_both = max(sizes["memory"])
    memory, stream = _find(rows, "memory", n_both), _find(rows, "stream", n_both)
    if memory and stream:
        ratio = stream["rows_per_s"] / memory["rows_per_s"]
        lines.append(
            f"\nstreaming / in-memory throughput at n={n_both:.0e}: {ratio:.2f}x (goal >= 0.5)"
        )
    streams = [row for row in rows if row["case"] == "stream" and row["device"] == "cpu"]
    rss = ", ".join(f"n={row['n']:.0e}: {row['peak_rss_mb']:.0f} MB" for row in streams)
    lines.append(f"peak RSS of the stream: {rss} (goal <= 1500 MB, flat in n)")
    gaps = [
        100 * (row["train_mse"] - row["optimum_mse"]) / row["optimum_mse"]
        for row in rows
        if row["case"] in ("memory", "stream")
    ]
    lines.append(f"largest train-MSE gap to the streamed optimum: {max(gaps):.4f} % (goal <= 0.1)")
    one, two = _find(rows, "ddp", nproc=1), _find(rows, "ddp", nproc=2)
    if one and two:
        lines.append(
            f"DDP, 2 gloo processes vs 1 at n={two['n']:.0e} (full batch, {DDP_EPOCHS} epochs): "
            f"speedup {one['seconds'] / two['seconds']:.2f}x, largest parameter difference "
            f"{two['max_param_diff_vs_single']:.2e}"
        )
    cuda = [row for row in rows if row["device"] == "cuda"]
    if cuda:
        lines.append(
            f"CUDA + nccl, 1 GPU, n={cuda[0]['n']:.0e}: {cuda[0]['rows_per_s']:.4g} rows/s"
        )
    else:
        lines.append("CUDA + nccl: not run (no GPU on this machine)")
    return "\n".join(lines) + ("\n\n" + report_exact(exact) if exact else "")


def report_exact(rows: list[dict[str, object]]) -> str:
    """The ``read`` and ``qr`` rows, and the streamed QR's rate as a share of the read rate
    (the mean of the read passes before and after it)."""
    lines = [
        f"{'case':5} {'n':>8} {'seconds':>9} {'rows/s':>11} {'peak RSS MB':>11} "
        f"{'train MSE':>10} {'rel. diff vs lstsq':>18}"
    ]
    for row in rows:
        mse, diff, rss = row["train_mse"], row["rel_diff_vs_lstsq"], row["peak_rss_mb"]
        lines.append(
            f"{row['case']:5} {row['n']:>8.0e} {row['seconds']:>9.3f} {row['rows_per_s']:>11.4g} "
            f"{'' if rss is None else f'{rss:.0f}':>11} {'' if mse is None else f'{mse:.6f}':>10} "
            f"{'' if diff is None else f'{diff:.2e}':>18}"
        )
    for n in sorted({row["n"] for row in rows}):
        reads = [row["rows_per_s"] for row in rows if row["n"] == n and row["case"] == "read"]
        solve = _find(rows, "qr", n)
        if reads and solve:
            share = solve["rows_per_s"] / (sum(reads) / len(reads))
            lines.append(
                f"streamed QR / Parquet read rate at n={n:.0e}: {share:.0%} (goal >= 50 %)"
                + (
                    f"; relative difference to in-memory lstsq {solve['rel_diff_vs_lstsq']:.1e}"
                    " (goal <= 1e-10)"
                    if solve["rel_diff_vs_lstsq"] is not None
                    else ""
                )
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the rows to this file")
    parser.add_argument("--quick", action="store_true", help="n = 1e4 only")
    parser.add_argument(
        "--only", choices=["qr"], help="qr: only the exact solve against the Parquet read rate"
    )
    parser.add_argument("--data", type=Path, default=Path("/tmp/linear_nets_scale"))
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per case")
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--case", nargs=2, metavar=("CASE", "FOLDER"), help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--nproc", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    parser.add_argument("--skip-ddp", action="store_true", help="no ddp cases (two launches)")
    parser.add_argument("--rates", action="store_true", help="the stream against a plain read")
    parser.add_argument("--n-rates", type=lambda text: int(float(text)), default=10**7)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --rates; best counts")
    parser.add_argument("--format", choices=("catalog", "pandas"), default="catalog")
    parser.add_argument("--keep", action="store_true", help="keep the --rates partitions")
    parser.add_argument("--rate-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rss-child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--cores", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rate_child:
        _pin(args.cores)
        print(json.dumps(run_rates(args.rate_child, args.n, args.rounds, args.format)))
        return
    if args.rss_child:
        print(json.dumps(run_rss(args.rss_child[0], Path(args.rss_child[1]), args.format)))
        return
    if args.rates:
        results = measure_rates(
            args.data,
            args.n_rates,
            args.rounds,
            args.format,
            timeout_s=args.timeout,
            keep=args.keep,
        )
        print(report_rates(results))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return
    if args.generate:
        generate(args.generate, args.n)
        print(json.dumps({"generated": args.n}))
        return
    if args.case:
        case, folder = args.case
        print(json.dumps(run_case(case, Path(folder), args.n, args.nproc, args.device)))
        return
    sizes = {**(QUICK if args.quick else FULL), "exact": EXACT["quick" if args.quick else "full"]}
    if args.only == "qr":
        sizes.update(stream=(), memory=(), ddp=None)
    if args.skip_ddp:
        sizes["ddp"] = None
    started = time.perf_counter()
    rows = measure(args.data, sizes, args.timeout)
    print(report(rows, sizes))
    print(f"(all cases: {time.perf_counter() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
