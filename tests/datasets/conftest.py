"""A disk that fills up: a 64 KiB tmpfs, mounted for one test (root only; skipped otherwise)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

SMALL_DISK = "64k"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An empty folder on its own 64 KiB filesystem: writing more fails with ENOSPC."""
    mountpoint = tmp_path / "small_disk"
    mountpoint.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK}", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def leftovers(folder: Path) -> list[str]:
    """Every file under ``folder`` (recursively), hidden partial files included."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())
