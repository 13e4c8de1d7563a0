"""Data-parallel training with torch.distributed, started by PyTorch's elastic launcher.

:func:`launch` runs the function it is handed in ``nproc_per_node`` processes on each of
``nnodes`` machines, through ``torch.distributed.launcher.api.elastic_launch`` (what
``torchrun`` runs), and returns rank 0's value; :func:`linear_nets.engine.fit.fit_parallel`
hands it the fit loop, as Lightning's trainer hands its launcher the function to run. Inside
the job the model is wrapped in ``DistributedDataParallel``, which all-reduces the gradients.
This module imports nothing of the fit loop: the engine reads one way, fit → distributed.

Outside such a job the helpers below are no-ops, so the one fit loop serves both cases.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from linear_nets.engine.config import DistributedConfig
from linear_nets.engine.devices import DeviceError

T = TypeVar("T")
logger = logging.getLogger(__name__)


class WorkerNodeFinished(RuntimeError):
    """This machine trained its share; rank 0, on another machine, keeps the model."""


def _active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank in the job; 0 outside one."""
    return dist.get_rank() if _active() else 0


def world_size() -> int:
    """Processes in the job; 1 outside one."""
    return dist.get_world_size() if _active() else 1


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in ``DistributedDataParallel`` inside a job, else ``model`` itself."""
    if not _active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


@contextlib.contextmanager
def join(module: nn.Module) -> Iterator[None]:
    """Let ranks with fewer batches finish an epoch early (``torch.distributed``'s Join)."""
    from torch.nn.parallel import DistributedDataParallel

    if not isinstance(module, DistributedDataParallel):
        yield
        return
    from torch.distributed.algorithms.join import Join

    with Join([module]):
        yield


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over every rank, in place, inside a job; unchanged outside one."""
    if _active():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def first_found(value: T | None) -> T | None:
    """Inside a job, the first rank's ``value`` that is not None, on every rank (each rank must
    call this at the same point); ``value`` itself outside one."""
    if not _active():
        return value
    values: list[T | None] = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return next((found for found in values if found is not None), None)


def choose_backend(device: torch.device, backend: str) -> str:
    """``nccl`` for cuda and ``gloo`` otherwise when ``backend`` is auto; checks the pair.

    Raises:
        DeviceError: for nccl without cuda, or a device that torch.distributed cannot use.
    """
    if device.type == "mps":
        raise DeviceError("torch.distributed cannot train on mps: set the device to 'cpu'")
    chosen = ("nccl" if device.type == "cuda" else "gloo") if backend == "auto" else backend
    if chosen == "nccl" and device.type != "cuda":
        raise DeviceError(f"backend 'nccl' needs a cuda device, not {device.type!r}")
    return chosen


def launch(
    fn: Callable[..., T],
    args: tuple,
    parallel: DistributedConfig,
    device: torch.device,
    *,
    name: str = "train",
) -> T:
    """Run ``fn(rank_device, *args)`` on every rank of a job; return what rank 0 returned.

    Starts ``parallel.nnodes`` × ``parallel.nproc_per_node`` processes, joins each to the
    process group on its own device (one GPU per local rank for cuda; the CPU's cores shared
    out between the local ranks otherwise) and calls ``fn`` there. ``fn`` and ``args`` must
    pickle (a module-level function; a model as pickled bytes, so that the ranks do not share
    one set of parameters); ``fn`` finds its share of the work with :func:`rank` and
    :func:`world_size`.

    Raises:
        DeviceError: for a backend the device cannot use, or more nccl ranks than GPUs.
        WorkerNodeFinished: on a machine of a multi-machine job that does not hold rank 0.
        Exception: the error of a failed rank (its own rather than a peer's lost connection).
    """
    backend = choose_backend(device, parallel.backend)
    if backend == "nccl" and device.index is None:
        available = torch.cuda.device_count()
        if parallel.nproc_per_node > available:
            raise DeviceError(
                f"{name}.distributed.nproc_per_node={parallel.nproc_per_node} needs as many "
                f"GPUs for nccl, but this machine has {available}"
            )
    results = _launch(parallel, (fn, args, str(device), backend), backend, name)
    failures = [value for value in results.values() if isinstance(value, BaseException)]
    if failures:
        # A rank's own error explains more than a peer's broken connection caused by it.
        raise min(failures, key=lambda exc: isinstance(exc, dist.DistError))
    if 0 not in results:
        total = parallel.nproc_per_node * parallel.nnodes
        raise WorkerNodeFinished(
            f"this machine ran ranks {sorted(results)} of {total} and finished its share; "
            "the machine that ran rank 0 saves the model and logs the run"
        )
    return results[0]


def _launch(parallel: DistributedConfig, args: tuple, backend: str, name: str) -> dict[int, Any]:
    """Run :func:`_worker` with ``args`` on every local rank; their results by global rank."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    launch = LaunchConfig(
        min_nodes=parallel.nnodes,
        max_nodes=parallel.nnodes,
        nproc_per_node=parallel.nproc_per_node,
        run_id=parallel.rdzv_id,
        rdzv_backend="c10d",
        rdzv_endpoint=parallel.rdzv_endpoint,
        rdzv_configs={"join_timeout": parallel.rdzv_timeout_s},
        max_restarts=0,
        monitor_interval=0.1,
        start_method="spawn",
    )
    logger.info(
        "Launching %d x %d %s processes (rendezvous %s)",
        parallel.nnodes,
        parallel.nproc_per_node,
        backend,
        parallel.rdzv_endpoint,
    )
    elastic = logging.getLogger("torch.distributed.elastic")
    level = elastic.level
    elastic.setLevel(logging.WARNING)  # the agent's per-step INFO lines say nothing to a user
    try:
        return elastic_launch(launch, _worker)(*args)
    except ChildFailedError as exc:
        raise RuntimeError(f"{name}: a training process failed:\n{exc}") from None
    finally:
        elastic.setLevel(level)


def _worker(fn: Callable[..., Any], args: tuple, device_name: str, backend: str) -> Any:
    """One rank: join the process group on this rank's device and run ``fn``; hand back its
    value on rank 0 (None elsewhere), or its error on any rank."""
    local_rank = int(os.environ["LOCAL_RANK"])
    local_world = int(os.environ["LOCAL_WORLD_SIZE"])
    device = torch.device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank if device.index is None else device.index)
        torch.cuda.set_device(device)
    else:  # the machine's cores are shared by its ranks
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    dist.init_process_group(backend)
    try:
        value = fn(device, *args)
        return value if dist.get_rank() == 0 else None
    except Exception as exc:  # handed back to the launching process, which raises it
        return exc
    finally:
        dist.destroy_process_group()
