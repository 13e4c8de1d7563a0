"""Fixtures for the browser tests: Chromium (or a skip), and the kedro-viz site.

Without a ``chromium`` binary the tests are skipped; ``.ci/install-browser`` installs Debian's.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import CHROMIUM_NAMES, Chromium, static_server, wait_for_http
from tests.test_kedro_viz import shared_viz_build


@pytest.fixture(scope="session")
def chromium() -> Chromium:
    """The system Chromium; the browser tests skip without one (CI installs it)."""
    for name in CHROMIUM_NAMES:
        binary = shutil.which(name)
        if binary:
            return Chromium(binary)
    pytest.skip(
        "no chromium binary on PATH (looked for "
        f"{', '.join(CHROMIUM_NAMES)}); run .ci/install-browser to install Debian's"
    )


@pytest.fixture(scope="session")
def viz_build_dir(tmp_path_factory: pytest.TempPathFactory, chromium: Chromium) -> Path:
    """``kedro viz build`` of a fresh copy of the project (after the chromium check, so a
    machine without a browser skips without spending half a minute on the build)."""
    return shared_viz_build(tmp_path_factory)


@pytest.fixture(scope="session")
def viz_site(viz_build_dir: Path) -> Iterator[str]:
    """The static kedro-viz site, served on loopback for the session."""
    with static_server(viz_build_dir) as url:
        wait_for_http(f"{url}/api/main", timeout_s=10)
        yield url
