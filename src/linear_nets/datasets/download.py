"""One bounded download: an overall deadline, a size cap, a checksum, an atomic rename.

Every remote file of the project (the StatLib Boston file, the four Fashion-MNIST archives)
comes through :func:`download`. ``urllib``'s own ``timeout`` bounds one blocking socket
operation only: a server that drips a byte every few seconds, or sends an endless body, is
never stopped by it. Here the body is streamed in chunks into a temporary file next to the
destination; before every read the deadline is checked and the socket's timeout is set to the
time that is left (never more than ``timeout_s``), so a read that blocks cannot outlast the
deadline either; the byte count is checked against ``max_bytes`` as it grows. Only a complete,
verified file is renamed into place, so a failed download never replaces a good local copy.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro.io import DatasetError

logger = logging.getLogger(__name__)
CHUNK = 1 << 16


class DownloadError(DatasetError):
    """A download failed, timed out, ran past its deadline or grew past its size cap."""


class ChecksumMismatchError(DatasetError):
    """A file's digest differs from the pinned value."""


@dataclass(frozen=True)
class DownloadLimits:
    """How long and how large one download may be.

    ``param`` is the parameter prefix the limits come from (e.g. ``boston.source``), so an
    error can name the key to change.
    """

    timeout_s: float
    deadline_s: float
    max_bytes: int
    param: str = "source"


def download(
    url: str,
    destination: Path,
    limits: DownloadLimits,
    *,
    checksum: tuple[str, str] | None = None,
) -> int:
    """Stream ``url`` into ``destination`` within ``limits``, verified, replacing it atomically.

    Args:
        url: an ``http``, ``https`` or ``file`` URL.
        destination: the local file; left untouched unless the whole download succeeds.
        limits: per-read timeout, overall deadline and size cap.
        checksum: ``(algorithm, hex digest)`` the bytes must have, e.g. ``("md5", "8d4f…")``.

    Returns:
        The number of bytes written.

    Raises:
        DownloadError: naming the URL, the file and the limit that stopped it.
        ChecksumMismatchError: naming the URL, the file and both digests.
    """
    started = time.monotonic()
    deadline = started + limits.deadline_s
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
    tmp = Path(tmp_name)
    where = f"{url} into {destination}"
    try:
        with os.fdopen(handle, "wb") as file:
            size, digest = _stream(
                url, file, limits, where=where, deadline=deadline, checksum=checksum
            )
        if checksum is not None and digest != checksum[1].lower():
            raise ChecksumMismatchError(
                f"the file downloaded from {url} for {destination} has {checksum[0]} {digest}, "
                f"but the pin is {checksum[1].lower()}; the local file was left unchanged"
            )
        os.replace(tmp, destination)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    logger.info(
        "Downloaded %d bytes from %s to %s in %.1f s",
        size,
        url,
        destination,
        time.monotonic() - started,
    )
    return size


def _stream(
    url: str,
    file: Any,
    limits: DownloadLimits,
    *,
    where: str,
    deadline: float,
    checksum: tuple[str, str] | None,
) -> tuple[int, str | None]:
    hasher = hashlib.new(checksum[0], usedforsecurity=False) if checksum else None
    size = 0
    try:
        with urllib.request.urlopen(
            url, timeout=_remaining(deadline, limits, where, size)
        ) as response:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > limits.max_bytes:
                raise DownloadError(
                    f"downloading {where} refused: the server announces {int(declared)} bytes, "
                    f"more than {limits.param}.max_bytes={limits.max_bytes}"
                )
            read = getattr(response, "read1", response.read)
            while True:
                _set_socket_timeout(response, _remaining(deadline, limits, where, size))
                chunk = read(CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > limits.max_bytes:
                    raise DownloadError(
                        f"downloading {where} stopped: the body grew past "
                        f"{limits.param}.max_bytes={limits.max_bytes} bytes"
                    )
                file.write(chunk)
                if hasher is not None:
                    hasher.update(chunk)
    except DownloadError:
        raise
    except TimeoutError as exc:
        raise _timed_out(where, limits, deadline, size) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        http_error = isinstance(exc, urllib.error.HTTPError)
        reason = exc if http_error else getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            raise _timed_out(where, limits, deadline, size) from exc
        raise DownloadError(f"could not download {where}: {reason}") from exc
    return size, hasher.hexdigest() if hasher is not None else None


def _remaining(deadline: float, limits: DownloadLimits, where: str, size: int) -> float:
    """The socket timeout for the next blocking call: what is left of the deadline, capped."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise _past_deadline(where, limits, size)
    return min(limits.timeout_s, left)


def _set_socket_timeout(response: Any, seconds: float) -> None:
    """Bound the next ``recv`` of an HTTP(S) response (a ``file:`` URL has no socket)."""
    sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
    if sock is not None:
        sock.settimeout(seconds)


def _timed_out(where: str, limits: DownloadLimits, deadline: float, size: int) -> DownloadError:
    if time.monotonic() >= deadline:
        return _past_deadline(where, limits, size)
    return DownloadError(
        f"downloading {where} timed out after {limits.timeout_s:g} s without data "
        f"({limits.param}.timeout_s; {size} bytes received)"
    )


def _past_deadline(where: str, limits: DownloadLimits, size: int) -> DownloadError:
    return DownloadError(
        f"downloading {where} stopped: it took longer than "
        f"{limits.param}.deadline_s={limits.deadline_s:g} s ({size} bytes received)"
    )
