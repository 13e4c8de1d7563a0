"""FashionMNISTDataset: torchvision's download and md5 check against a loopback mirror."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch
from kedro.io import DatasetError

from linear_nets.datasets import FashionMNISTDataset, FashionMNISTFileError
from linear_nets.datasets.fashion_mnist import FILES, FashionMNISTSource
from tests.pipelines.fashion_mnist.fake_data import (
    TinyFashionMNIST,
    make_tiny_fashion_mnist,
    serve,
    write_idx,
)

WRONG_MD5 = "0" * 32


@pytest.fixture
def tiny(tmp_path: Path) -> TinyFashionMNIST:
    return make_tiny_fashion_mnist(tmp_path / "mirror")


def _assert_matches(splits: dict[str, torch.Tensor], tiny: TinyFashionMNIST) -> None:
    assert set(splits) == {"train_images", "train_labels", "test_images", "test_labels"}
    for key, tensor in splits.items():
        expected = getattr(tiny, key)
        assert tensor.dtype == expected.dtype, key
        assert torch.equal(tensor, expected), key


def test_idx_round_trip_through_torchvision(tmp_path: Path, tiny: TinyFashionMNIST):
    source = FashionMNISTDataset(root=str(tmp_path / "raw")).load()

    splits = source(mirror=str(tiny.folder), md5=tiny.md5)

    _assert_matches(splits, tiny)
    assert splits["train_images"].shape == (300, 28, 28)
    assert splits["train_images"].dtype == torch.uint8
    assert splits["test_labels"].dtype == torch.int64


def test_idx_round_trip_of_every_byte_value(tmp_path: Path):
    from torchvision.datasets.mnist import read_image_file

    image = torch.arange(28 * 28).remainder(256).to(torch.uint8).reshape(1, 28, 28)
    write_idx(tmp_path / "one.gz", image)
    (tmp_path / "one").write_bytes(gzip.decompress((tmp_path / "one.gz").read_bytes()))

    assert torch.equal(read_image_file(str(tmp_path / "one")), image)


def test_http_mirror_hit_downloads_once(tmp_path: Path, tiny: TinyFashionMNIST):
    root = tmp_path / "raw"
    source = FashionMNISTSource(root)
    with serve(tiny.folder) as (url, requested):
        _assert_matches(source(mirror=url, md5=tiny.md5), tiny)
        fetched = sorted({path.lstrip("/") for path in requested})
        requested.clear()
        _assert_matches(source(mirror=url, md5=tiny.md5), tiny)
        assert requested == []

    assert fetched == sorted(FILES)
    for name in FILES:
        assert (root / name).is_file()
        assert (root / name.removesuffix(".gz")).is_file()
    assert FashionMNISTDataset(root=str(root)).exists()


def test_http_mirror_md5_mismatch_names_the_file(tmp_path: Path, tiny: TinyFashionMNIST):
    pins = {**tiny.md5, "t10k-labels-idx1-ubyte.gz": WRONG_MD5}
    with serve(tiny.folder) as (url, _), pytest.raises(FashionMNISTFileError) as caught:
        FashionMNISTSource(tmp_path / "raw")(mirror=url, md5=pins)

    message = str(caught.value)
    assert "t10k-labels-idx1-ubyte.gz" in message
    assert "corrupt" in message
    assert f"expected {WRONG_MD5}" in message
    assert tiny.md5["t10k-labels-idx1-ubyte.gz"] in message  # the md5 it actually has


def test_http_mirror_missing_file_names_the_file(tmp_path: Path, tiny: TinyFashionMNIST):
    (tiny.folder / "train-labels-idx1-ubyte.gz").unlink()

    with serve(tiny.folder) as (url, _), pytest.raises(FashionMNISTFileError) as caught:
        FashionMNISTSource(tmp_path / "raw")(mirror=url, md5=tiny.md5)

    message = str(caught.value)
    assert f"{url}train-labels-idx1-ubyte.gz" in message
    assert tiny.md5["train-labels-idx1-ubyte.gz"] in message
    assert "404" in message


def test_local_mirror_missing_file_names_the_file(tmp_path: Path, tiny: TinyFashionMNIST):
    (tiny.folder / "t10k-images-idx3-ubyte.gz").unlink()

    with pytest.raises(FashionMNISTFileError, match=r"t10k-images-idx3-ubyte\.gz .* is missing"):
        FashionMNISTSource(tmp_path / "raw")(mirror=str(tiny.folder), md5=tiny.md5)


def test_local_mirror_corrupt_file_is_not_copied(tmp_path: Path, tiny: TinyFashionMNIST):
    (tiny.folder / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip")
    root = tmp_path / "raw"

    with pytest.raises(FashionMNISTFileError) as caught:
        FashionMNISTSource(root)(mirror=str(tiny.folder), md5=tiny.md5)

    message = str(caught.value)
    assert "train-images-idx3-ubyte.gz is corrupt" in message
    assert f"expected {tiny.md5['train-images-idx3-ubyte.gz']}" in message
    assert not (root / "train-images-idx3-ubyte.gz").exists()


def test_default_pins_are_torchvisions(tmp_path: Path, tiny: TinyFashionMNIST):
    """Without ``md5`` the generated files fail the real Fashion-MNIST pins."""
    with pytest.raises(FashionMNISTFileError, match="8d4fb7e6c68d591d4c3dfef9ec88bf0d"):
        FashionMNISTSource(tmp_path / "raw")(mirror=str(tiny.folder))


def test_a_mirror_that_is_neither_url_nor_directory_is_refused(tmp_path: Path):
    with pytest.raises(DatasetError, match="neither a URL nor a directory"):
        FashionMNISTSource(tmp_path / "raw")(mirror=str(tmp_path / "nowhere"))


def test_dataset_is_read_only_and_describes_its_root(tmp_path: Path):
    dataset = FashionMNISTDataset(root=str(tmp_path / "raw"))

    assert not dataset.exists()
    assert dataset.load() == FashionMNISTSource(tmp_path / "raw")
    assert str(tmp_path / "raw") in str(dataset)
    with pytest.raises(DatasetError, match="read-only"):
        dataset.save({})


def test_loading_the_dataset_module_does_not_import_torchvision():
    import subprocess
    import sys

    code = (
        "import sys, linear_nets.datasets, linear_nets.pipelines.fashion_mnist; "
        "sys.exit('torchvision' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
