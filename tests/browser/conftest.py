"""Fixtures for the browser tests: Chromium (or a skip), and the kedro-viz site.

Without a ``chromium`` binary the tests are skipped; ``.ci/install-browser`` installs Debian's.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import CHROMIUM_NAMES, Chromium, static_server
from tests.support import wait_for_http


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
def viz_build_dir(chromium: Chromium, request: pytest.FixtureRequest) -> Path:
    """``kedro viz build`` of a fresh copy of the project, asked for after the chromium check so
    that a machine without a browser skips without spending half a minute on the build."""
    return request.getfixturevalue("viz_build")


@pytest.fixture(scope="session")
def viz_site(viz_build_dir: Path) -> Iterator[str]:
    """The static kedro-viz site, served on loopback for the session."""
    with static_server(viz_build_dir) as url:
        wait_for_http(f"{url}/api/main", timeout_s=10)
        yield url
