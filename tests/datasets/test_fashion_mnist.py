"""FashionMNISTDataset: bounded downloads, md5 checks on every read, against a loopback mirror."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch
from kedro.io import DatasetError

from linear_nets.datasets import FashionMNISTDataset, FashionMNISTFileError
from linear_nets.datasets.download import DownloadLimits
from linear_nets.datasets.fashion_mnist import FILES, MD5, MIRROR, FashionMNISTSource
from tests.pipelines.fashion_mnist.fake_data import (
    TinyFashionMNIST,
    make_tiny_fashion_mnist,
    md5_of,
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


def test_idx_round_trip(tmp_path: Path, tiny: TinyFashionMNIST):
    source = FashionMNISTDataset(root=str(tmp_path / "raw")).load()

    splits = source(mirror=str(tiny.folder), md5=tiny.md5)

    _assert_matches(splits, tiny)
    assert splits["train_images"].shape == (300, 28, 28)
    assert splits["train_images"].dtype == torch.uint8
    assert splits["test_labels"].dtype == torch.int64


@pytest.mark.slow  # imports torchvision
def test_idx_parsing_agrees_with_torchvision_on_every_byte_value(tmp_path: Path):
    from torchvision.datasets.mnist import read_image_file

    tiny = make_tiny_fashion_mnist(tmp_path / "mirror", n_train=3, n_test=2)
    image = torch.arange(28 * 28).remainder(256).to(torch.uint8).reshape(1, 28, 28)
    images = torch.cat([image, image.flip(1), image.flip(2)])
    write_idx(tiny.folder / FILES[0], images)
    pins = {**tiny.md5, FILES[0]: md5_of(tiny.folder / FILES[0])}
    (tmp_path / "one").write_bytes(gzip.decompress((tiny.folder / FILES[0]).read_bytes()))

    splits = FashionMNISTSource(tmp_path / "raw")(mirror=str(tiny.folder), md5=pins)

    assert torch.equal(splits["train_images"], images)
    assert torch.equal(read_image_file(str(tmp_path / "one")), images)


@pytest.mark.slow  # imports torchvision
def test_the_default_mirror_and_pins_are_torchvisions():
    from torchvision.datasets import FashionMNIST

    assert FashionMNIST.mirrors == [MIRROR]
    assert dict(FashionMNIST.resources) == MD5
    assert tuple(MD5) == FILES


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
    assert sorted(path.name for path in root.iterdir()) == sorted(FILES)  # nothing extracted
    assert FashionMNISTDataset(root=str(root)).exists()


def test_http_mirror_md5_mismatch_names_the_file(tmp_path: Path, tiny: TinyFashionMNIST):
    pins = {**tiny.md5, "t10k-labels-idx1-ubyte.gz": WRONG_MD5}
    with serve(tiny.folder) as (url, _), pytest.raises(FashionMNISTFileError) as caught:
        FashionMNISTSource(tmp_path / "raw")(mirror=url, md5=pins)

    message = str(caught.value)
    assert "t10k-labels-idx1-ubyte.gz is corrupt on the mirror" in message
    assert f"the pin is {WRONG_MD5}" in message
    assert tiny.md5["t10k-labels-idx1-ubyte.gz"] in message  # the md5 it actually has
    assert not (tmp_path / "raw" / "t10k-labels-idx1-ubyte.gz").exists()


def test_http_mirror_missing_file_names_the_file(tmp_path: Path, tiny: TinyFashionMNIST):
    (tiny.folder / "train-labels-idx1-ubyte.gz").unlink()

    with serve(tiny.folder) as (url, _), pytest.raises(FashionMNISTFileError) as caught:
        FashionMNISTSource(tmp_path / "raw")(mirror=url, md5=tiny.md5)

    message = str(caught.value)
    assert f"{url}train-labels-idx1-ubyte.gz" in message
    assert tiny.md5["train-labels-idx1-ubyte.gz"] in message
    assert "404" in message
    assert "fashion_mnist.source.mirror" in message  # the parameter that makes a mirror stand in
    assert not (tmp_path / "raw" / "train-labels-idx1-ubyte.gz").exists()


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
    make_tiny_fashion_mnist(tmp_path / "raw")
    assert dataset.exists()
    with pytest.raises(DatasetError, match="read-only"):
        dataset.save({})


@pytest.mark.slow  # a fresh interpreter importing torch
def test_loading_the_dataset_module_does_not_import_torchvision():
    import subprocess
    import sys

    code = (
        "import sys, linear_nets.datasets, linear_nets.pipelines.fashion_mnist; "
        "sys.exit('torchvision' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_the_datasets_package_imports_neither_torch_nor_numpy():
    import subprocess
    import sys

    code = "import sys, linear_nets.datasets; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def _cached(tmp_path: Path, tiny: TinyFashionMNIST) -> Path:
    root = tmp_path / "raw"
    FashionMNISTSource(root)(mirror=str(tiny.folder), md5=tiny.md5)
    return root


def _zero_labels(archive: Path, count: int) -> None:
    """The issue's tampering: zero ``count`` labels of a cached file, gzip it again."""
    payload = bytearray(gzip.decompress(archive.read_bytes()))
    payload[8 : 8 + count] = bytes(count)
    archive.write_bytes(gzip.compress(bytes(payload), mtime=0))


def test_an_altered_cached_file_is_fetched_again_not_trained_on(
    tmp_path: Path, tiny: TinyFashionMNIST, caplog: pytest.LogCaptureFixture
):
    root = _cached(tmp_path, tiny)
    _zero_labels(root / "train-labels-idx1-ubyte.gz", 150)

    with serve(tiny.folder) as (url, requested):
        splits = FashionMNISTSource(root)(mirror=url, md5=tiny.md5)

    assert requested == ["/train-labels-idx1-ubyte.gz"]
    _assert_matches(splits, tiny)
    assert f"{root / 'train-labels-idx1-ubyte.gz'} has md5" in caplog.text


@pytest.mark.parametrize("damage", ["altered", "truncated"])
def test_a_damaged_cached_file_without_a_mirror_is_an_error_naming_it(
    tmp_path: Path, tiny: TinyFashionMNIST, damage: str
):
    root = _cached(tmp_path, tiny)
    archive = root / "train-labels-idx1-ubyte.gz"
    if damage == "altered":
        _zero_labels(archive, 150)
    else:
        archive.write_bytes(archive.read_bytes()[:100])
    (tiny.folder / "train-labels-idx1-ubyte.gz").unlink()  # the mirror cannot repair it

    with pytest.raises(FashionMNISTFileError) as caught:
        FashionMNISTSource(root)(mirror=str(tiny.folder), md5=tiny.md5)

    message = str(caught.value)
    assert f"the cached {archive} is corrupt" in message
    assert f"expected {tiny.md5['train-labels-idx1-ubyte.gz']}" in message


def _repin(tiny: TinyFashionMNIST, name: str, payload: bytes) -> dict[str, str]:
    (tiny.folder / name).write_bytes(gzip.compress(payload, mtime=0))
    return {**tiny.md5, name: md5_of(tiny.folder / name)}


@pytest.mark.parametrize(
    ("name", "cut", "message"),
    [
        ("t10k-images-idx3-ubyte.gz", 1000, r"is truncated or padded: its header announces"),
        ("t10k-labels-idx1-ubyte.gz", 5, r"is truncated or padded"),
        ("t10k-labels-idx1-ubyte.gz", 105, r"is truncated: 4 bytes, shorter than the IDX header"),
    ],
)
def test_a_truncated_idx_payload_is_an_error_naming_the_file(
    tmp_path: Path, tiny: TinyFashionMNIST, name: str, cut: int, message: str
):
    """A file cut short before it was pinned passes its md5, and is still refused by name."""
    payload = gzip.decompress((tiny.folder / name).read_bytes())
    pins = _repin(tiny, name, payload[: max(len(payload) - cut, 4)])

    with pytest.raises(FashionMNISTFileError, match=message) as caught:
        FashionMNISTSource(tmp_path / "raw")(mirror=str(tiny.folder), md5=pins)
    assert str(tmp_path / "raw" / name) in str(caught.value)


def test_a_label_outside_the_ten_classes_is_refused_with_its_row(
    tmp_path: Path, tiny: TinyFashionMNIST
):
    labels = tiny.train_labels.clone()
    labels[7] = 12
    write_idx(tiny.folder / FILES[1], labels)
    pins = {**tiny.md5, FILES[1]: md5_of(tiny.folder / FILES[1])}

    with pytest.raises(FashionMNISTFileError, match=r"label 12 at row 7 is not a class \(0-9\)"):
        FashionMNISTSource(tmp_path / "raw")(mirror=str(tiny.folder), md5=pins)


def test_images_and_labels_of_different_counts_are_refused(tmp_path: Path, tiny: TinyFashionMNIST):
    write_idx(tiny.folder / FILES[3], tiny.test_labels[:-1])
    pins = {**tiny.md5, FILES[3]: md5_of(tiny.folder / FILES[3])}

    with pytest.raises(FashionMNISTFileError, match="holds 100 test images but .* holds 99 labels"):
        FashionMNISTSource(tmp_path / "raw")(mirror=str(tiny.folder), md5=pins)


def test_a_mirror_that_never_answers_is_bounded_by_the_deadline(tmp_path: Path):
    import socket
    import time

    listener = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    limits = DownloadLimits(
        timeout_s=30, deadline_s=0.5, max_bytes=10**8, param="fashion_mnist.source"
    )
    started = time.monotonic()
    try:
        with pytest.raises(FashionMNISTFileError) as caught:
            FashionMNISTSource(tmp_path / "raw")(
                mirror=f"http://127.0.0.1:{listener.getsockname()[1]}/", limits=limits
            )
    finally:
        listener.close()

    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert "train-images-idx3-ubyte.gz (md5 8d4fb7e6c68d591d4c3dfef9ec88bf0d)" in message
    assert "fashion_mnist.source.deadline_s=0.5 s" in message


def test_a_file_above_the_size_cap_is_refused(tmp_path: Path, tiny: TinyFashionMNIST):
    limits = DownloadLimits(
        timeout_s=30, deadline_s=30, max_bytes=1000, param="fashion_mnist.source"
    )
    with serve(tiny.folder) as (url, _), pytest.raises(FashionMNISTFileError) as caught:
        FashionMNISTSource(tmp_path / "raw")(mirror=url, md5=tiny.md5, limits=limits)

    assert "fashion_mnist.source.max_bytes=1000" in str(caught.value)
    assert "train-images-idx3-ubyte.gz" in str(caught.value)


def test_a_full_disk_names_the_cause_and_leaves_no_partial_copy(
    small_disk: Path, tiny: TinyFashionMNIST, tmp_path: Path
):
    from tests.support import leftovers

    padded = tmp_path / "padded"  # the tiny archives padded past the 64 KiB disk
    padded.mkdir()
    md5 = {}
    for name in FILES:
        (padded / name).write_bytes((tiny.folder / name).read_bytes() + b"\0" * 40_000)
        md5[name] = md5_of(padded / name)
    with pytest.raises(OSError, match="No space left on device"):
        FashionMNISTSource(small_disk / "raw")(mirror=str(padded), md5=md5)
    copied = leftovers(small_disk)
    assert not any(Path(name).name.startswith(".") for name in copied)  # no partial copy
    for name in copied:  # what was copied is whole
        assert (small_disk / name).read_bytes() == (padded / Path(name).name).read_bytes()
