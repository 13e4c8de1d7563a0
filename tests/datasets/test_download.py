"""The one bounded download against hostile HTTP servers on loopback.

Each server misbehaves in a way a per-read timeout alone does not stop: dripping a byte at a
time, sending an endless body, answering nothing at all, or stalling mid-body. The limits are
small so every case ends in about a second at most; the bounds asserted are generous.
"""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from linear_nets.datasets.download import (
    ChecksumMismatchError,
    DownloadError,
    DownloadLimits,
    download,
)

BODY = b"a small honest file\n"
SLACK_S = 10.0  # far above the limits, far below "hangs"
STOP = threading.Event()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        try:
            if self.path == "/good":
                self._headers(len(BODY))
                self.wfile.write(BODY)
            elif self.path == "/drip":  # one byte every 50 ms, forever
                self._headers(None)
                while not STOP.wait(0.05):
                    self.wfile.write(b"x")
                    self.wfile.flush()
            elif self.path == "/endless":  # as fast as it can, forever
                self._headers(None)
                while not STOP.is_set():
                    self.wfile.write(b"y" * 65536)
            elif self.path == "/stall":  # a few bytes, then silence
                self._headers(1000)
                self.wfile.write(b"z" * 10)
                self.wfile.flush()
                STOP.wait(30)
            elif self.path == "/late-stall":  # drips for 0.35 s, then silence
                self._headers(1000)
                for _ in range(7):
                    self.wfile.write(b"l")
                    self.wfile.flush()
                    STOP.wait(0.05)
                STOP.wait(30)
            elif self.path == "/huge":  # announces more than the cap
                self._headers(10**12)
                self.wfile.write(b"h" * 10)
            else:
                self.send_error(404)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should

    def _headers(self, length: int | None) -> None:
        self.send_response(200)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    STOP.clear()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    STOP.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def silent() -> Iterator[str]:
    """A server that accepts connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        try:
            while True:
                accepted.append(listener.accept()[0])
        except OSError:
            pass  # closed at teardown

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/file"
    listener.close()
    for connection in accepted:
        connection.close()


def _limits(**changes: float) -> DownloadLimits:
    values = {"timeout_s": 30.0, "deadline_s": 0.5, "max_bytes": 1_000_000, **changes}
    return DownloadLimits(param="demo.source", **values)  # type: ignore[arg-type]


def _fails(url: str, target: Path, limits: DownloadLimits) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises(DownloadError) as caught:
        download(url, target, limits)
    return str(caught.value), time.monotonic() - started


def test_a_good_file_is_streamed_verified_and_renamed(tmp_path: Path, server: str):
    target = tmp_path / "sub" / "file.txt"
    digest = hashlib.md5(BODY, usedforsecurity=False).hexdigest()

    limits = _limits(deadline_s=60.0)  # only the failure cases need the short deadline
    assert download(f"{server}/good", target, limits, checksum=("md5", digest)) == len(BODY)

    assert target.read_bytes() == BODY
    assert [path.name for path in target.parent.iterdir()] == ["file.txt"]  # no temp file left


def test_a_dripping_server_is_stopped_by_the_overall_deadline(tmp_path: Path, server: str):
    target = tmp_path / "file.txt"

    message, seconds = _fails(f"{server}/drip", target, _limits())

    assert seconds < SLACK_S
    assert "took longer than demo.source.deadline_s=0.5 s" in message
    assert f"{server}/drip" in message
    assert str(target) in message
    assert list(tmp_path.iterdir()) == []


def test_an_endless_body_is_stopped_by_the_size_cap(tmp_path: Path, server: str):
    target = tmp_path / "file.txt"

    limits = _limits(deadline_s=60, max_bytes=300_000)
    message, seconds = _fails(f"{server}/endless", target, limits)

    assert seconds < SLACK_S
    assert "grew past demo.source.max_bytes=300000 bytes" in message
    assert f"{server}/endless" in message and str(target) in message
    assert list(tmp_path.iterdir()) == []


def test_an_announced_size_above_the_cap_is_refused_before_reading(tmp_path: Path, server: str):
    message, _ = _fails(f"{server}/huge", tmp_path / "file.txt", _limits(deadline_s=60))

    assert "announces 1000000000000 bytes, more than demo.source.max_bytes=1000000" in message


def test_a_silent_server_is_stopped_by_the_deadline_not_the_read_timeout(
    tmp_path: Path, silent: str
):
    message, seconds = _fails(silent, tmp_path / "file.txt", _limits())

    assert seconds < SLACK_S  # the 30 s read timeout never came into play
    assert "took longer than demo.source.deadline_s=0.5 s" in message
    assert silent in message


def test_a_read_that_blocks_is_cut_at_the_deadline(tmp_path: Path, server: str):
    message, seconds = _fails(f"{server}/stall", tmp_path / "file.txt", _limits())

    assert seconds < SLACK_S
    assert "took longer than demo.source.deadline_s=0.5 s (10 bytes received)" in message


def test_a_read_timeout_that_fires_past_the_deadline_is_reported_as_the_deadline(
    tmp_path: Path, server: str
):
    # requests fixes the read timeout (0.4 s) when the request is sent: the read that starts
    # at ~0.35 s ends at ~0.75 s, one read timeout past the 0.5 s deadline at most.
    limits = _limits(timeout_s=0.4)
    message, seconds = _fails(f"{server}/late-stall", tmp_path / "file.txt", limits)

    assert 0.5 <= seconds < SLACK_S
    assert "took longer than demo.source.deadline_s=0.5 s (7 bytes received)" in message
    assert list(tmp_path.iterdir()) == []


def test_the_read_timeout_still_applies_within_the_deadline(tmp_path: Path, server: str):
    message, seconds = _fails(
        f"{server}/stall", tmp_path / "file.txt", _limits(timeout_s=0.3, deadline_s=60)
    )

    assert seconds < SLACK_S
    assert "timed out after 0.3 s without data (demo.source.timeout_s" in message


def test_a_checksum_mismatch_keeps_the_previous_file(tmp_path: Path, server: str):
    target = tmp_path / "file.txt"
    target.write_bytes(b"the good old copy\n")

    with pytest.raises(ChecksumMismatchError) as caught:
        download(f"{server}/good", target, _limits(deadline_s=60.0), checksum=("md5", "0" * 32))

    assert f"expected {'0' * 32}" not in str(caught.value)  # phrased as "the pin is"
    assert "the pin is " + "0" * 32 in str(caught.value)
    assert hashlib.md5(BODY, usedforsecurity=False).hexdigest() in str(caught.value)
    assert target.read_bytes() == b"the good old copy\n"
    assert [path.name for path in tmp_path.iterdir()] == ["file.txt"]


def test_a_missing_file_names_the_url(tmp_path: Path, server: str):
    message, _ = _fails(f"{server}/missing", tmp_path / "file.txt", _limits(deadline_s=60.0))

    assert f"could not download {server}/missing into {tmp_path / 'file.txt'}" in message
    assert "404" in message


def test_file_urls_are_bounded_by_the_cap_too(tmp_path: Path):
    source = tmp_path / "big.bin"
    source.write_bytes(b"b" * 5000)

    message, _ = _fails(source.as_uri(), tmp_path / "copy.bin", _limits(max_bytes=4096))

    assert "max_bytes=4096" in message
    assert download(source.as_uri(), tmp_path / "copy.bin", _limits(deadline_s=60.0)) == 5000
