"""benchmarks/fashion_mnist.py: it reads the versioned test metrics a run saved, and its
smallest case runs where the Fashion-MNIST archives are at hand."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import yaml
from kedro.io import AbstractDataset

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "fashion_mnist.py"
ARCHIVES = ROOT / "data" / "01_raw" / "fashion_mnist"


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("benchmark_fashion_mnist", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_newest_version_of_the_catalogs_test_metrics_is_read(tmp_path: Path) -> None:
    catalog = yaml.safe_load((ROOT / "conf" / "base" / "catalog_fashion_mnist.yml").read_text())
    entry = catalog["fashion_mnist_test_metrics"]
    path = tmp_path / "fashion_mnist_test_metrics.json"
    for version, accuracy in (("2026-01-01T00.00.00.000Z", 0.5), ("2026-01-02T00.00.00.000Z", 0.8)):
        config = {**entry, "filepath": str(path)}
        dataset = AbstractDataset.from_config("metrics", config, save_version=version)
        dataset.save({"test_accuracy": accuracy, "test_loss": 1.0})

    assert entry.get("versioned") and path.is_dir()  # the layout that crashed the script
    assert _load_benchmark().read_test_metrics(path)["test_accuracy"] == 0.8


def test_a_plain_metrics_file_is_read_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"test_accuracy": 0.7}))
    assert _load_benchmark().read_test_metrics(path) == {"test_accuracy": 0.7}


@pytest.mark.slow
@pytest.mark.skipif(
    not (ARCHIVES / "train-images-idx3-ubyte.gz").is_file(),
    reason="needs the Fashion-MNIST archives in data/01_raw/fashion_mnist (md5-pinned)",
)
def test_quick_run(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    _load_benchmark().main(["--quick", "--json", str(out)])
    (row,) = json.loads(out.read_text())
    assert row["kind"] == "linear" and row["ours_s"] > 0 and row["baseline_s"] > 0
