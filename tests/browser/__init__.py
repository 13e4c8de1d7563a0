"""Browser end-to-end tests, and their helpers: headless Chromium and loopback servers.

Every server and browser runs on 127.0.0.1 in its own process group (or a thread), is waited
for with a bound, and is stopped in a ``finally``.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.support import LOOPBACK, run_bounded

CHROMIUM_NAMES = ("chromium", "chromium-browser")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # CI containers often have a 64 MB /dev/shm, too small for Chromium.
    "--disable-dev-shm-usage",
    "--window-size=1600,1000",
)
# Virtual time: Chromium waits for the page's fetches and then runs its timers for this long.
VIRTUAL_TIME_BUDGET_MS = 15_000
CHROMIUM_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Chromium:
    """Headless Chromium, one process (and throw-away profile) per page load."""

    binary: str

    def _run(self, url: str, mode: list[str], timeout_s: float) -> str:
        with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
            command = [
                self.binary,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
                *mode,
                url,
            ]
            returncode, stdout, stderr = run_bounded(command, timeout_s=timeout_s)
        assert returncode == 0, f"chromium failed on {url}:\n{stderr[-3000:]}"
        return stdout

    def dump_dom(self, url: str, timeout_s: float = CHROMIUM_TIMEOUT_S) -> str:
        """The DOM after the page's scripts ran, as ``--dump-dom`` serializes it."""
        return self._run(url, ["--dump-dom"], timeout_s)

    def screenshot(self, url: str, path: Path, timeout_s: float = CHROMIUM_TIMEOUT_S) -> Path:
        self._run(url, [f"--screenshot={path}"], timeout_s)
        return path

    def wait_for_dom(self, url: str, ready: Callable[[str], bool], timeout_s: float = 180.0) -> str:
        """Reload ``url`` until ``ready(dom)`` holds or ``timeout_s`` passes; the last DOM."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            dom = self.dump_dom(url, timeout_s=max(10.0, min(CHROMIUM_TIMEOUT_S, left)))
            if ready(dom) or time.monotonic() >= deadline:
                return dom
            time.sleep(2)


@contextlib.contextmanager
def static_server(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on a loopback port from a thread; yield the base URL."""

    class QuietHandler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((LOOPBACK, 0), partial(QuietHandler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
