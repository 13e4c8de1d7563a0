"""Save versions that no two runs of a project share.

Kedro saves every versioned dataset of a run under the run's session id: the time the session
was created, to the millisecond. Runs started together (``kedro sweep``, a scheduler, a few
terminals) can be created in the same millisecond, and the second of them to save a dataset
then fails: that version exists. So each run reserves its save version under an exclusive
lock on ``data/.save_version``, which holds the last version handed out in the project; a
session id that is not later than that one becomes the next free millisecond. A run started
alone keeps its session id.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kedro.io.core import VERSION_FORMAT, get_protocol_and_path

from linear_nets.tracking.store import locked

LAST_VERSION_FILE = Path("data") / ".save_version"
"""Relative to the project: the last save version handed out (git ignores ``data/``)."""


def reserve(session_id: str, project_path: Path) -> str:
    """The save version of the run whose session id is ``session_id``: that id, or the next
    millisecond after the last version any run of ``project_path`` reserved, if it is not later.

    An id that is not a Kedro timestamp (a session created with its own id) is returned as given.
    """
    if _parse(session_id) is None:
        return session_id
    path = Path(project_path) / LAST_VERSION_FILE
    with locked(path):
        last = _parse(path.read_text().strip()) if path.is_file() else None
        version = session_id
        if last is not None and version <= _format(last):  # same width: text order is time
            version = _format(last + timedelta(milliseconds=1))
        path.write_text(version + "\n")
    return version


def adopt_unversioned(filepaths: Iterable[str], project_path: Path) -> list[str]:
    """Make each plain file found at a versioned dataset's path (written there before that
    dataset was versioned) the dataset's version of the file's modification time, where Kedro
    would refuse to save ("a file with the same name already exists"), under the lock
    :func:`reserve` takes. Only local paths; returns a line per file moved.
    """
    local = []
    for filepath in filepaths:
        protocol, path = get_protocol_and_path(filepath)
        if protocol == "file" and Path(path).is_file():
            local.append(Path(path))
    moved = []
    if not local:
        return moved
    with locked(Path(project_path) / LAST_VERSION_FILE):
        for path in local:
            if not path.is_file():  # another run moved it meanwhile
                continue
            modified = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
            version = _format(modified.replace(tzinfo=None))
            aside = path.with_name(f"{path.name}.unversioned")
            path.rename(aside)
            (path / version).mkdir(parents=True)
            aside.rename(path / version / path.name)
            moved.append(f"{path} was written before it was versioned: kept as version {version}")
    return moved


def _parse(version: str) -> datetime | None:
    with contextlib.suppress(ValueError):
        parsed = datetime.strptime(version, VERSION_FORMAT)
        if _format(parsed) == version:
            return parsed
    return None


def _format(moment: datetime) -> str:
    """Kedro's ``generate_timestamp`` format: milliseconds, ``2026-11-23T19.33.46.907Z``."""
    text = moment.strftime(VERSION_FORMAT)
    return text[:-4] + text[-1:]
