"""RemoteFileDataset against a real HTTP server on loopback."""

from __future__ import annotations

import hashlib
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kedro.io import DatasetError

from linear_nets.datasets import ChecksumMismatchError, RemoteFileDataset
from linear_nets.datasets.download import DownloadLimits

GOOD = b"the real file\n"
GOOD_SHA = hashlib.sha256(GOOD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, bytes] = {"/good": GOOD, "/bad": b"tampered\n"}
    hits: list[str] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        if self.path == "/slow":
            time.sleep(2)
        body = self.routes.get(self.path)
        if body is None and self.path != "/slow":
            self.send_error(404)
            return
        body = body or GOOD
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the timeout test)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.hits = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _limits(**changes: float) -> DownloadLimits:
    values = {"timeout_s": 5.0, "deadline_s": 60.0, "max_bytes": 10_000_000, **changes}
    return DownloadLimits(**values, param="boston.source")


def test_local_copy_matching_the_pin_uses_no_network(tmp_path: Path, server: str):
    path = tmp_path / "raw.txt"
    path.write_bytes(GOOD)
    fetch = RemoteFileDataset(filepath=str(path)).load()
    assert fetch(f"{server}/good", GOOD_SHA, _limits()) == GOOD
    assert _Handler.hits == []


def test_missing_file_is_downloaded_verified_and_saved(tmp_path: Path, server: str):
    path = tmp_path / "sub" / "raw.txt"
    dataset = RemoteFileDataset(filepath=str(path))
    assert not dataset.exists()
    assert dataset.load()(f"{server}/good", GOOD_SHA, _limits()) == GOOD
    assert path.read_bytes() == GOOD
    assert dataset.exists()
    assert _Handler.hits == ["/good"]


def test_local_copy_with_wrong_content_is_replaced(tmp_path: Path, server: str):
    path = tmp_path / "raw.txt"
    path.write_bytes(b"stale\n")
    assert (
        RemoteFileDataset(filepath=str(path)).load()(f"{server}/good", GOOD_SHA, _limits()) == GOOD
    )
    assert path.read_bytes() == GOOD


def test_checksum_mismatch_names_file_and_both_hashes_and_keeps_local(tmp_path: Path, server: str):
    path = tmp_path / "raw.txt"
    path.write_bytes(b"stale\n")
    fetch = RemoteFileDataset(filepath=str(path)).load()
    with pytest.raises(ChecksumMismatchError) as error:
        fetch(f"{server}/bad", GOOD_SHA, _limits())
    message = str(error.value)
    assert str(path) in message
    assert GOOD_SHA in message
    assert hashlib.sha256(b"tampered\n").hexdigest() in message
    assert path.read_bytes() == b"stale\n"


def test_no_pin_takes_the_local_file_as_it_is(tmp_path: Path, server: str):
    path = tmp_path / "raw.txt"
    path.write_bytes(b"my own data\n")
    assert (
        RemoteFileDataset(filepath=str(path)).load()(f"{server}/good", None, _limits())
        == b"my own data\n"
    )
    assert _Handler.hits == []


def test_timeout_is_a_clear_error(tmp_path: Path, server: str):
    fetch = RemoteFileDataset(filepath=str(tmp_path / "raw.txt")).load()
    with pytest.raises(DatasetError, match=r"timed out after 0\.3 s"):
        fetch(f"{server}/slow", GOOD_SHA, _limits(timeout_s=0.3))
    assert not (tmp_path / "raw.txt").exists()


def test_http_error_is_a_clear_error(tmp_path: Path, server: str):
    fetch = RemoteFileDataset(filepath=str(tmp_path / "raw.txt")).load()
    with pytest.raises(DatasetError, match="could not download .*/missing"):
        fetch(f"{server}/missing", GOOD_SHA, _limits())


def test_dataset_is_read_only(tmp_path: Path):
    with pytest.raises(DatasetError, match="read-only"):
        RemoteFileDataset(filepath=str(tmp_path / "x")).save(b"data")


def test_download_limits_come_from_the_parameters_and_keep_the_local_copy(
    tmp_path: Path, server: str
):
    path = tmp_path / "raw.txt"
    path.write_bytes(b"stale\n")
    fetch = RemoteFileDataset(filepath=str(path)).load()

    with pytest.raises(DatasetError, match=r"boston\.source\.max_bytes=4\b"):
        fetch(f"{server}/good", GOOD_SHA, _limits(deadline_s=5, max_bytes=4))
    assert path.read_bytes() == b"stale\n"


def test_a_full_disk_names_the_cause_and_keeps_the_local_copy(small_disk: Path, server: str):
    from tests.support import leftovers

    large = b"x" * 200_000  # more than the 64 KiB disk
    _Handler.routes["/large"] = large
    local = small_disk / "boston.txt"
    local.write_bytes(GOOD)
    with pytest.raises(DatasetError, match="No space left on device"):
        RemoteFileDataset(filepath=str(local)).load()(
            f"{server}/large", hashlib.sha256(large).hexdigest(), _limits()
        )
    assert local.read_bytes() == GOOD
    assert leftovers(small_disk) == ["boston.txt"]  # no half-written temporary file
