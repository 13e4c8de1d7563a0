"""Write a local file whole or not at all: a full disk or a crash leaves the old file (or none).

The bytes go to a hidden ``.<name>.<random>.partial`` file in the same folder, which replaces
the destination (``os.replace``, atomic on one filesystem) only once everything is written and
flushed; on any error the partial file is removed and the error (``No space left on device``)
propagates unchanged.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_write(destination: Path) -> Iterator[BinaryIO]:
    """Yield a binary file that becomes ``destination`` when the block ends without error."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.{secrets.token_hex(4)}.partial")
    # created as open() would create the destination (0o666 less the umask), unlike mkstemp
    handle = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, destination)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
