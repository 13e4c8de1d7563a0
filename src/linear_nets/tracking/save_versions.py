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
from datetime import datetime, timedelta
from pathlib import Path

from kedro.io.core import VERSION_FORMAT

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
