"""Device resolution shared by every pipeline, including a requested but absent CUDA."""

from __future__ import annotations

import pytest
import torch

from linear_nets.engine import DeviceError, TrainConfig, devices, resolve_device, train


@pytest.fixture
def no_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend this machine has neither CUDA nor MPS, whatever it really has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)


@pytest.mark.usefixtures("no_accelerator")
def test_auto_falls_back_to_the_cpu() -> None:
    assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.usefixtures("no_accelerator")
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", " CUDA "])
def test_absent_cuda_raises(spec: str) -> None:
    with pytest.raises(DeviceError, match="CUDA is not available"):
        resolve_device(spec)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_absent_cuda_raises_on_this_machine() -> None:
    with pytest.raises(DeviceError, match="set the device to 'auto' or 'cpu'"):
        resolve_device("cuda")


@pytest.mark.usefixtures("no_accelerator")
def test_absent_mps_raises() -> None:
    with pytest.raises(DeviceError, match="MPS is not available"):
        resolve_device("mps")


@pytest.mark.usefixtures("no_accelerator")
def test_training_on_an_absent_device_fails_before_it_starts() -> None:
    X = torch.randn(8, 2)
    with pytest.raises(DeviceError, match="'cuda'"):
        train("linear", X, X.sum(dim=1), TrainConfig(device="cuda", lr=0.1, epochs=1))


def test_cuda_index_beyond_the_device_count_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(DeviceError, match="only 1 CUDA device"):
        resolve_device("cuda:1")


def test_auto_prefers_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


@pytest.mark.parametrize("spec", ["cpu", torch.device("cpu"), "CPU"])
def test_cpu_is_always_there(spec: str | torch.device) -> None:
    assert resolve_device(spec) == torch.device("cpu")


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", ""])
def test_unknown_device_names_raise(spec: str) -> None:
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device(spec)


def test_the_config_and_the_resolver_refuse_a_name_with_one_message() -> None:
    from pydantic import ValidationError

    with pytest.raises(DeviceError) as resolved:
        resolve_device("gpu")
    with pytest.raises(ValidationError) as validated:
        TrainConfig(device="gpu", lr=0.1, epochs=1)
    assert str(resolved.value) in str(validated.value)
    assert "expected auto, cpu, cuda, cuda:N or mps" in str(resolved.value)
