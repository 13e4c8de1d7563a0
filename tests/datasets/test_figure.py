"""FigureDataset: a matplotlib figure written as an image, versioned, without pyplot."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest
from kedro.io import DatasetError
from kedro.io.core import Version
from matplotlib.figure import Figure

from linear_nets.datasets import FigureDataset


def a_figure() -> Figure:
    figure = Figure(figsize=(3, 2), layout="constrained")
    axes = figure.subplots()
    axes.plot([1, 2, 3], [3, 1, 2])
    axes.set(title="loss", xlabel="epoch")
    return figure


@pytest.mark.parametrize(
    ("name", "signature"),
    [("plot.png", b"\x89PNG\r\n\x1a\n"), ("plot.svg", b"<?xml"), ("plot.pdf", b"%PDF")],
)
def test_the_extension_picks_the_format(tmp_path: Path, name: str, signature: bytes):
    dataset = FigureDataset(filepath=str(tmp_path / name))
    dataset.save(a_figure())

    assert (tmp_path / name).read_bytes().startswith(signature)
    assert dataset.exists()


def test_save_args_reach_savefig(tmp_path: Path):
    from PIL import Image

    for dpi in (50, 100):
        FigureDataset(filepath=str(tmp_path / f"{dpi}.png"), save_args={"dpi": dpi}).save(
            a_figure()
        )
    sizes = [Image.open(tmp_path / f"{dpi}.png").size for dpi in (50, 100)]

    assert sizes == [(150, 100), (300, 200)]  # 3 x 2 inches


def test_a_versioned_figure_goes_to_its_version_folder_and_is_never_overwritten(tmp_path: Path):
    path = tmp_path / "plot.png"
    dataset = FigureDataset(filepath=str(path), version=Version(None, "2026-11-23T19.33.46.907Z"))
    assert not dataset.exists()

    dataset.save(a_figure())
    saved = path / "2026-11-23T19.33.46.907Z" / "plot.png"
    assert saved.is_file()
    assert dataset.preview() == base64.b64encode(saved.read_bytes()).decode("ascii")
    with pytest.raises(DatasetError, match="must not exist"):
        dataset.save(a_figure())


def test_a_figure_is_never_read_back(tmp_path: Path):
    dataset = FigureDataset(filepath=str(tmp_path / "plot.png"))
    dataset.save(a_figure())

    with pytest.raises(DatasetError, match="never read back"):
        dataset.load()


def test_building_the_dataset_imports_no_matplotlib(tmp_path: Path):
    # what kedro-viz does with every dataset of the catalog
    script = (
        "import sys; from linear_nets.datasets import FigureDataset; "
        f"FigureDataset(filepath={str(tmp_path / 'plot.png')!r}); "
        "print(sorted(name for name in sys.modules if name.startswith('matplotlib')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )

    assert done.stdout.strip() == "[]"


def a_large_figure() -> Figure:
    """Noise drawn at a high resolution: a PNG of several hundred KiB, more than the small disk."""
    import numpy as np

    figure = Figure(figsize=(3, 3), dpi=100)
    figure.subplots().imshow(np.random.default_rng(0).random((300, 300)))
    return figure


def test_a_full_disk_names_the_cause_and_leaves_no_partial_image(small_disk: Path):
    from tests.support import leftovers

    small = FigureDataset(filepath=str(small_disk / "loss.png"))
    small.save(a_figure())  # a small one fits
    before = (small_disk / "loss.png").read_bytes()

    with pytest.raises(DatasetError, match="No space left on device") as raised:
        small.save(a_large_figure())
    assert isinstance(raised.value.__cause__, OSError)  # Kedro keeps the cause for the terminal
    assert (small_disk / "loss.png").read_bytes() == before  # the earlier image is intact
    assert leftovers(small_disk) == ["loss.png"]

    versioned = FigureDataset(filepath=str(small_disk / "fit.png"), version=Version(None, "v1"))
    with pytest.raises(DatasetError, match="No space left on device"):
        versioned.save(a_large_figure())
    assert leftovers(small_disk) == ["loss.png"]  # no 0-byte fit.png/v1/fit.png a run could load
    assert not versioned.exists()
