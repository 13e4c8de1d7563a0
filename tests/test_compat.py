"""The places in compat.py rest on one library version each: an upgrade must re-check them."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

from kedro.io import Version
from kedro_datasets.json import JSONDataset

from linear_nets.compat import KEDRO_CHECKED, pin_save_and_load_version


def test_kedro_is_the_version_compat_was_checked_against():
    assert version("kedro") == KEDRO_CHECKED, (
        "kedro changed: re-check linear_nets/compat.py (a dataset's save/load version), "
        "then update KEDRO_CHECKED and the upper bound in pyproject.toml"
    )


def test_a_pinned_dataset_saves_and_loads_the_runs_own_version(tmp_path: Path):
    filepath = str(tmp_path / "x.json")
    ours = JSONDataset(filepath=filepath, version=Version(None, "v1"))
    assert pin_save_and_load_version(ours, "v2")
    ours.save({"run": "ours"})
    JSONDataset(filepath=filepath, version=Version(None, "v3")).save({"run": "later"})
    assert ours.load() == {"run": "ours"}  # not the newest version, which another run wrote
    assert (tmp_path / "x.json" / "v2" / "x.json").is_file()


def test_unversioned_and_user_pinned_datasets_are_left_alone(tmp_path: Path):
    assert not pin_save_and_load_version(JSONDataset(filepath=str(tmp_path / "a.json")), "v")
    chosen = JSONDataset(filepath=str(tmp_path / "b.json"), version=Version("v0", "v1"))
    assert not pin_save_and_load_version(chosen, "v2")
