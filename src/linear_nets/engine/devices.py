"""Turn a device setting (auto, cpu, cuda, cuda:N, mps) into a ``torch.device``."""

from __future__ import annotations

import re

import torch

DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
"""The one list of device settings: ``TrainConfig.device`` and :func:`resolve_device` read it."""
_DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_EXPECTED = f"expected {', '.join(DEVICES[:-1])} or {DEVICES[-1]}"


class DeviceError(ValueError):
    """The requested device does not exist on this machine."""


def check_device_name(spec: str) -> str:
    """Normalise ``spec`` (case, spaces) and check that it names a known kind of device.

    Raises:
        DeviceError: if the name is none of :data:`DEVICES`.
    """
    name = spec.strip().lower()
    if not _DEVICE_PATTERN.match(name):
        raise DeviceError(f"unknown device {spec!r}: {_EXPECTED}")
    return name


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def _unavailable(spec: str, what: str) -> DeviceError:
    return DeviceError(
        f"device {spec!r} was requested but {what} is not available here "
        f"(torch {torch.__version__}); set the device to 'auto' or 'cpu'"
    )


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """Resolve ``spec`` to an available device; ``auto`` prefers cuda, then mps, then cpu.

    Raises:
        DeviceError: if the device is unknown or not present on this machine.
    """
    name = check_device_name(str(spec))
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise _unavailable(name, "CUDA")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise DeviceError(
                f"device {name!r} was requested but only {count} CUDA device(s) exist"
            )
    elif device.type == "mps" and not _mps_available():
        raise _unavailable(name, "Apple MPS")
    return device
