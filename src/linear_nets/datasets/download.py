"""One bounded download: an overall deadline, a size cap, a checksum, an atomic rename.

Every remote file of the project (the StatLib Boston file, the four Fashion-MNIST archives)
comes through :func:`download`, on ``requests`` with ``stream=True``. A read timeout alone bounds
one blocking socket operation only: a server that drips a byte every few seconds, or sends an
endless body, is never stopped by it. Here the body is streamed into a temporary file next to the
destination, one ``read1`` at a time (it returns whatever has arrived, where ``iter_content(n)``
blocks until ``n`` bytes are in); the deadline is checked before every read and the byte
count against ``max_bytes`` as it grows (and against ``Content-Length`` before the first read).

The bound: ``requests`` takes the (connect, read) timeout once per request and has no public way
to change it while the body streams, so every blocking socket operation of a download waits at
most ``T = min(timeout_s, what is left of the deadline when the request is sent)``. As the
deadline is also checked before every read of the body, a body that drips, stalls or never ends
stops the download at most one ``T`` after its deadline, so never later than ``2 * deadline_s``
after the start (``T <= deadline_s``); a server silent from the start is stopped by ``T`` itself,
at the deadline at the latest. Connecting, redirects (``requests`` follows up to 30 and reads each
redirect's body whole, as ``urllib`` did) and the response headers are bounded per blocking
operation by ``T``, not in total, as before. Only a complete, verified file is renamed into
place, so a failed download never replaces a good local copy. ``file:`` URLs are read from the
local file within the same size cap and deadline.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    except OSError as error:  # the disk: full, read-only, gone (network errors are DownloadErrors)
        tmp.unlink(missing_ok=True)
        reason = error.strerror or str(error)
        raise DownloadError(f"could not save {where}: {reason}") from error
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
    import requests  # lazy: every kedro command imports the datasets package
    import urllib3

    hasher = hashlib.new(checksum[0], usedforsecurity=False) if checksum else None
    size = 0
    try:
        with _open(url, _remaining(deadline, limits, where, size)) as (declared, read):
            if declared is not None and declared > limits.max_bytes:
                raise DownloadError(
                    f"downloading {where} refused: the server announces {declared} bytes, "
                    f"more than {limits.param}.max_bytes={limits.max_bytes}"
                )
            while True:
                _remaining(deadline, limits, where, size)  # raises once the deadline has passed
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
    except (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError) as exc:
        raise _timed_out(where, limits, deadline, size) from exc
    except (requests.ConnectionError, urllib3.exceptions.HTTPError) as exc:
        raise DownloadError(f"could not download {where}: {_root_cause(exc)}") from exc
    except requests.RequestException as exc:  # an HTTP error status, a bad URL or scheme
        raise DownloadError(f"could not download {where}: {exc}") from exc
    except (OSError, ValueError) as exc:  # a file: URL; urllib's URLError carries a reason
        raise DownloadError(f"could not download {where}: {getattr(exc, 'reason', exc)}") from exc
    return size, hasher.hexdigest() if hasher is not None else None


@contextmanager
def _open(url: str, timeout: float) -> Iterator[tuple[int | None, Callable[[int], bytes]]]:
    """The announced size and a ``read(n)`` that returns what has arrived, at most ``n`` bytes.

    ``timeout`` bounds each blocking operation of an HTTP(S) request: connecting, and every
    read. The body is taken as sent (``Accept-Encoding: identity``, never decoded), so the
    size cap and the checksum apply to the bytes of the file itself.
    """
    if urllib.parse.urlsplit(url).scheme == "file":
        from urllib.request import urlopen

        with urlopen(url) as local:  # a local file: no socket, nothing to wait on
            length = local.headers.get("Content-Length")
            yield (int(length) if length and length.isdigit() else None), local.read
        return
    import requests

    headers = {"Accept-Encoding": "identity"}
    with requests.get(url, headers=headers, stream=True, timeout=(timeout, timeout)) as response:
        response.raise_for_status()
        length = response.headers.get("Content-Length")
        raw = response.raw
        yield (
            (int(length) if length and length.isdigit() else None),
            lambda n: raw.read1(n, decode_content=False),
        )


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception of a chain: ``[Errno 111] Connection refused``, not the four
    wrappers ``requests`` and ``urllib3`` put around it."""
    for _ in range(16):  # a chain is a handful deep; never follow a cycle
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return exc


def _remaining(deadline: float, limits: DownloadLimits, where: str, size: int) -> float:
    """The timeout for the next blocking call: what is left of the deadline, capped."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise _past_deadline(where, limits, size)
    return min(limits.timeout_s, left)


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
