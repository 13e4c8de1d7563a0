"""Data-parallel training: no-ops outside a job, and 2 gloo processes reproduce 1 process."""

from __future__ import annotations

import functools
import json
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch

from linear_nets.engine import (
    DeviceError,
    DistributedConfig,
    PartitionSource,
    TrainConfig,
    build_model,
    distributed,
    fit,
    fit_parallel,
)
from tests.support import LOOPBACK, free_port, run_bounded

LAUNCH_TIMEOUT_S = 300  # two spawned interpreters importing torch on a busy two-core machine
PARTITIONS, ROWS, D = 4, 64, 3


def _write(folder: Path, scale: float = 1.0) -> tuple[dict, dict[str, int]]:
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    w = torch.tensor([1.5, -2.0, 0.5])
    loaders, rows = {}, {}
    for i in range(PARTITIONS):
        X = torch.randn(ROWS, D, generator=generator) * scale
        y = X @ w + 0.7 + 0.1 * torch.randn(ROWS, generator=generator)
        frame = pd.DataFrame(X.numpy(), columns=["x1", "x2", "x3"])
        frame["y"] = y.numpy()
        path = folder / f"part-{i}.parquet"
        frame.to_parquet(path)
        loaders[f"part-{i}"] = functools.partial(pd.read_parquet, path)
        rows[f"part-{i}"] = ROWS
    return loaders, rows


def test_outside_a_job_the_helpers_change_nothing() -> None:
    model = torch.nn.Linear(2, 1)
    sums = torch.tensor([1.0, 2.0])
    assert (distributed.rank(), distributed.world_size()) == (0, 1)
    assert distributed.wrap(model, torch.device("cpu")) is model
    assert distributed.all_reduce_sum(sums) is sums and sums.tolist() == [1.0, 2.0]
    with distributed.join(model):
        pass


def test_backend_follows_the_device() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert distributed.choose_backend(cpu, "auto") == "gloo"
    assert distributed.choose_backend(cuda, "auto") == "nccl"
    assert distributed.choose_backend(cuda, "gloo") == "gloo"
    with pytest.raises(DeviceError, match="nccl' needs a cuda device"):
        distributed.choose_backend(cpu, "nccl")
    with pytest.raises(DeviceError, match="mps"):
        distributed.choose_backend(torch.device("mps"), "auto")


def test_disabled_runs_the_fit_in_this_process(tmp_path: Path) -> None:
    loaders, rows = _write(tmp_path)
    source = PartitionSource(loaders, rows, batch_size=32, seed=0)
    config = TrainConfig(device="cpu", lr=0.1, epochs=2, batch_size=32)
    result = fit_parallel(build_model("linear", D), source, config, DistributedConfig())
    assert len(result.history["train_loss"]) == 2


def test_more_processes_than_partitions_is_refused_before_launching(tmp_path: Path) -> None:
    loaders, rows = _write(tmp_path)
    source = PartitionSource(loaders, rows, seed=0)
    parallel = DistributedConfig(enabled=True, nproc_per_node=PARTITIONS + 1)
    config = TrainConfig(device="cpu", lr=0.1, epochs=1)
    with pytest.raises(ValueError, match=f"{PARTITIONS} partition"):
        fit_parallel(build_model("linear", D), source, config, parallel)


def test_nccl_is_refused_without_a_gpu(tmp_path: Path) -> None:
    loaders, rows = _write(tmp_path)
    parallel = DistributedConfig(enabled=True, backend="nccl")
    with pytest.raises(DeviceError, match="nccl"):
        fit_parallel(
            build_model("linear", D),
            PartitionSource(loaders, rows),
            TrainConfig(device="cpu", lr=0.1, epochs=1),
            parallel,
        )


# Runs in its own process group (run_bounded), so a stuck rendezvous or worker cannot outlive it.
LAUNCH = textwrap.dedent(
    """
    import functools, json, sys
    import pandas as pd
    from linear_nets.engine import (DistributedConfig, PartitionSource, TrainConfig,
                                    TrainingDivergedError, build_model, fit_parallel)

    folder, port, scale_lr = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    names = [f"part-{i}" for i in range(4)]
    loaders = {n: functools.partial(pd.read_parquet, f"{folder}/{n}.parquet") for n in names}
    source = PartitionSource(loaders, {n: 64 for n in names}, batch_size=None, seed=0)
    config = TrainConfig(device="cpu", optimizer="sgd", lr=0.1 * scale_lr, epochs=30)
    parallel = DistributedConfig(
        enabled=True, nproc_per_node=2, rdzv_endpoint=f"127.0.0.1:{port}", rdzv_timeout_s=120
    )
    try:
        result = fit_parallel(build_model("linear", 3), source, config, parallel, name="t.train")
    except TrainingDivergedError as exc:
        print(json.dumps({"diverged": str(exc)}))
    except ValueError as exc:
        print(json.dumps({"refused": str(exc)}))
    else:
        state = {k: v.flatten().tolist() for k, v in result.model.state_dict().items()}
        print(json.dumps({"state": state, "history": result.history}))
    """
)


def _launch(folder: Path, lr_scale: float = 1.0) -> dict:
    port = str(free_port())
    code, out, err = run_bounded(
        [sys.executable, "-c", LAUNCH, str(folder), port, str(lr_scale)],
        timeout_s=LAUNCH_TIMEOUT_S,
    )
    assert code == 0, err[-4000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_two_gloo_processes_reproduce_one_process_full_batch(tmp_path: Path) -> None:
    loaders, rows = _write(tmp_path)
    single = fit(
        build_model("linear", D),
        PartitionSource(loaders, rows, batch_size=None, seed=0),
        TrainConfig(device="cpu", optimizer="sgd", lr=0.1, epochs=30),
    )
    assert LOOPBACK == "127.0.0.1"  # the rendezvous below listens on loopback only
    job = _launch(tmp_path)
    for key, value in single.model.state_dict().items():
        torch.testing.assert_close(
            torch.tensor(job["state"][key]), value.flatten(), rtol=0, atol=1e-5
        )
    torch.testing.assert_close(
        torch.tensor(job["history"]["train_loss"]),
        torch.tensor(single.history["train_loss"]),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.slow
def test_divergence_in_the_job_reaches_the_caller(tmp_path: Path) -> None:
    _write(tmp_path, scale=30.0)
    job = _launch(tmp_path, lr_scale=10.0)
    assert "t.train.lr=1" in job["diverged"]


@pytest.mark.slow
def test_a_value_that_is_not_finite_in_one_ranks_share_is_named_by_the_job(
    tmp_path: Path,
) -> None:
    _write(tmp_path)
    path = tmp_path / "part-3.parquet"  # rank 1's share is part-1 and part-3
    frame = pd.read_parquet(path)
    frame.loc[10, "x3"] = float("nan")
    frame.to_parquet(path)
    job = _launch(tmp_path)
    assert "partition 'part-3', row 10, column 'x3': nan" in job["refused"]
    assert "learning rate" not in job["refused"]


def test_outside_a_job_the_first_found_is_the_value_itself() -> None:
    assert distributed.first_found("here") == "here"
    assert distributed.first_found(None) is None
