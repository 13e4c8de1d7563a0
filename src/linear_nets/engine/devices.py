"""Turn a device setting (auto, cpu, cuda, cuda:N, mps) into a ``torch.device``."""

from __future__ import annotations

import torch


class DeviceError(ValueError):
    """The requested device does not exist on this machine."""


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """Resolve ``spec`` to an available device; ``auto`` prefers cuda, then mps, then cpu.

    Raises:
        DeviceError: if the device is unknown or not present on this machine.
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    name = spec.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise DeviceError(
            f"unknown device {spec!r}: expected auto, cpu, cuda, cuda:N or mps"
        ) from exc
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {spec!r} was requested but CUDA is not available here "
                f"(torch {torch.__version__}); set the device to 'auto' or 'cpu'"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise DeviceError(
                f"device {spec!r} was requested but only {count} CUDA device(s) exist"
            )
        return device
    if device.type == "mps":
        if not _mps_available():
            raise DeviceError(
                f"device {spec!r} was requested but Apple MPS is not available here; "
                "set the device to 'auto' or 'cpu'"
            )
        return device
    raise DeviceError(f"unsupported device {spec!r}: expected auto, cpu, cuda, cuda:N or mps")
