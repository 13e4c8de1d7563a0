"""Save versions: a run keeps its session id unless a run of the project already has it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kedro.io.core import generate_timestamp

from linear_nets.tracking.save_versions import LAST_VERSION_FILE, reserve


def test_a_run_keeps_its_session_id_when_it_is_later_than_the_last(tmp_path: Path):
    assert reserve("2026-11-23T19.33.46.907Z", tmp_path) == "2026-11-23T19.33.46.907Z"
    assert reserve("2026-11-23T19.33.47.001Z", tmp_path) == "2026-11-23T19.33.47.001Z"
    assert (tmp_path / LAST_VERSION_FILE).read_text() == "2026-11-23T19.33.47.001Z\n"


def test_a_session_id_already_handed_out_becomes_the_next_free_millisecond(tmp_path: Path):
    versions = [reserve("2026-11-23T19.33.46.999Z", tmp_path) for _ in range(3)]
    # an id before the last one also moves after it
    versions.append(reserve("2026-11-23T19.33.46.500Z", tmp_path))

    assert versions == [
        "2026-11-23T19.33.46.999Z",
        "2026-11-23T19.33.47.000Z",
        "2026-11-23T19.33.47.001Z",
        "2026-11-23T19.33.47.002Z",
    ]


def test_an_id_that_is_not_a_kedro_timestamp_is_kept(tmp_path: Path):
    (tmp_path / LAST_VERSION_FILE).parent.mkdir()
    (tmp_path / LAST_VERSION_FILE).write_text("not a version\n")

    assert reserve("my-session", tmp_path) == "my-session"
    # and an unreadable last version does not stop a run
    assert reserve("2026-11-23T19.33.46.907Z", tmp_path) == "2026-11-23T19.33.46.907Z"


def test_processes_reserving_the_same_session_id_together_get_distinct_versions(tmp_path: Path):
    session_id = generate_timestamp()
    script = (
        "import sys; from pathlib import Path; "
        "from linear_nets.tracking.save_versions import reserve; "
        "print(*(reserve(sys.argv[1], Path(sys.argv[2])) for _ in range(20)))"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, session_id, str(tmp_path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    versions = [version for p in processes for version in p.communicate(timeout=120)[0].split()]

    assert all(p.returncode == 0 for p in processes)
    assert len(versions) == 80
    assert len(set(versions)) == 80
    assert min(versions) == session_id


def test_a_file_written_before_its_dataset_was_versioned_becomes_its_first_version(
    tmp_path: Path,
) -> None:
    import os

    from kedro.io import Version
    from kedro_datasets.json import JSONDataset

    from linear_nets.tracking.save_versions import adopt_unversioned

    old = tmp_path / "data" / "solution.json"
    old.parent.mkdir(parents=True)
    old.write_text('{"w": 1}')
    os.utime(old, (1_700_000_000.123, 1_700_000_000.123))  # 2023-11-14T22:13:20.123Z
    elsewhere = f"memory://{tmp_path}/x.json"  # not a local file: left alone
    missing = tmp_path / "data" / "absent.json"

    lines = adopt_unversioned([str(old), elsewhere, str(missing)], tmp_path)

    assert lines == [
        f"{old} was written before it was versioned: kept as version 2023-11-14T22.13.20.123Z"
    ]
    assert (old / "2023-11-14T22.13.20.123Z" / "solution.json").read_text() == '{"w": 1}'
    assert adopt_unversioned([str(old)], tmp_path) == []  # a folder now: nothing to do
    # the versioned dataset now saves beside it and loads the old file as an earlier version
    JSONDataset(filepath=str(old), version=Version(None, "2026-12-07T05.40.00.000Z")).save({"w": 2})
    assert JSONDataset(filepath=str(old), version=Version(None, None)).load() == {"w": 2}
    earlier = Version("2023-11-14T22.13.20.123Z", None)
    assert JSONDataset(filepath=str(old), version=earlier).load() == {"w": 1}
