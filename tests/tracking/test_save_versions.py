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
