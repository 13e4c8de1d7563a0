"""benchmarks/fashion_mnist.py: it reads the versioned test metrics a run saved, and its
smallest case runs where the Fashion-MNIST archives are at hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from kedro.io import AbstractDataset

from tests.benchmarks import load_benchmark

ROOT = Path(__file__).resolve().parents[2]
ARCHIVES = ROOT / "data" / "01_raw" / "fashion_mnist"




def test_the_newest_version_of_the_catalogs_test_metrics_is_read(tmp_path: Path) -> None:
    catalog = yaml.safe_load((ROOT / "conf" / "base" / "catalog_fashion_mnist.yml").read_text())
    entry = catalog["fashion_mnist_test_metrics"]
    path = tmp_path / "fashion_mnist_test_metrics.json"
    for version, accuracy in (("2026-01-01T00.00.00.000Z", 0.5), ("2026-01-02T00.00.00.000Z", 0.8)):
        config = {**entry, "filepath": str(path)}
        dataset = AbstractDataset.from_config("metrics", config, save_version=version)
        dataset.save({"test_accuracy": accuracy, "test_loss": 1.0})

    assert entry.get("versioned") and path.is_dir()  # the layout that crashed the script
    assert load_benchmark("fashion_mnist").read_test_metrics(path)["test_accuracy"] == 0.8


def test_a_plain_metrics_file_is_read_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"test_accuracy": 0.7}))
    assert load_benchmark("fashion_mnist").read_test_metrics(path) == {"test_accuracy": 0.7}


@pytest.mark.slow
@pytest.mark.skipif(
    not (ARCHIVES / "train-images-idx3-ubyte.gz").is_file(),
    reason="needs the Fashion-MNIST archives in data/01_raw/fashion_mnist (md5-pinned)",
)
def test_quick_run(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    load_benchmark("fashion_mnist").main(["--quick", "--json", str(out)])
    (row,) = json.loads(out.read_text())
    assert row["kind"] == "linear" and row["ours_s"] > 0 and row["baseline_s"] > 0
