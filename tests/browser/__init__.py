"""Browser end-to-end tests, and their helpers: headless Chromium and loopback servers.

Every server and browser runs on 127.0.0.1 in its own process group (or a thread), is waited
for with a bound, and is stopped in a ``finally``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

LOOPBACK = "127.0.0.1"
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


def free_port() -> int:
    """A port nobody listens on now, for servers that cannot be handed port 0."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def stop_group(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the process group started with ``process``, then SIGKILL what remains."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace_s)
    # Children (uvicorn workers, renderers) may outlive the leader: the group goes either way.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.wait(timeout=grace_s)


@dataclass(frozen=True)
class Chromium:
    """Headless Chromium, one process (and throw-away profile) per page load."""

    binary: str

    def _run(self, url: str, mode: list[str], timeout_s: float) -> str:
        with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
            process = subprocess.Popen(
                [
                    self.binary,
                    *CHROMIUM_FLAGS,
                    f"--user-data-dir={profile}",
                    f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
                    *mode,
                    url,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            try:
                stdout, stderr = process.communicate(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                stop_group(process, grace_s=5)
                pytest.fail(f"chromium did not finish loading {url} within {timeout_s} s")
            finally:
                stop_group(process, grace_s=5)
        assert process.returncode == 0, f"chromium failed on {url}:\n{stderr[-3000:]}"
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


def wait_for_http(
    url: str, timeout_s: float, process: subprocess.Popen | None = None, log: Path | None = None
) -> None:
    """Poll ``url`` until it answers 200; fail early if ``process`` exits meanwhile."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text()[-4000:] if log else ""
            pytest.fail(f"server exited with {process.returncode} before {url} answered:\n{tail}")
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(url, timeout=5) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.5)
    tail = log.read_text()[-4000:] if log else ""
    pytest.fail(f"{url} did not answer within {timeout_s} s:\n{tail}")


@contextlib.contextmanager
def process_group(
    command: list[str], *, cwd: Path, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """Run ``command`` in a new session (its own process group), output to ``log``; always
    stop the whole group on exit."""
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            stop_group(process)


@contextlib.contextmanager
def static_server(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on a loopback port from a thread; yield the base URL."""

    class QuietHandler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
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
