"""Serve a registered model over HTTP: MLflow's scoring server behind a guard on the request.

``python -m linear_nets.serving.server -m models:/boston_linear_regression@champion`` serves
the routes ``mlflow models serve`` serves (``/invocations``, ``/ping``, ``/health``,
``/version``; MLflow's own app, ``mlflow.pyfunc.scoring_server.init``), with what MLflow's
server lacks in front of it:

- a cap on the request body (``--max-body-bytes``, or ``LINEAR_NETS_SERVING_MAX_BODY_BYTES``;
  default 32 MiB): a larger body is answered 413 before it is read to its end;
- a body MLflow fails to parse (JSON nested too deep, broken CSV) is a 400, never a 500;
- no error response carries a stack trace, a server path or a dump of the request.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

logger = logging.getLogger(__name__)

MAX_BODY_ENV = "LINEAR_NETS_SERVING_MAX_BODY_BYTES"
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_MESSAGE_CHARS = 500
# MLflow's messages that embed the request: keep the text before these markers
REQUEST_ECHOES = ("\nInput:", "\nInput :")
PREDICT_PREFIX = "Failed to predict data '"
PREDICT_ERROR = "\nError: "

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(Exception):
    """The request body grew past the cap while it was read."""


class RequestGuard:
    """An ASGI wrapper of a scoring app: caps the request body, and turns every error answer
    into short JSON ``{"error_code", "message"}`` (400 for a body that cannot be parsed).

    Args:
        app: the ASGI app it guards (MLflow's scoring server).
        max_body_bytes: the largest request body accepted, in bytes.
    """

    def __init__(self, app: App, max_body_bytes: int) -> None:
        if max_body_bytes <= 0:
            raise ValueError(f"max_body_bytes must be positive, got {max_body_bytes}")
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _answer(send, 413, "BAD_REQUEST", self._too_large(declared))
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                raise BodyTooLarge
            return message

        error = _ErrorAnswer(send)
        try:
            await self.app(scope, counted, error.send)
        except BodyTooLarge:
            await error.replace(413, "BAD_REQUEST", self._too_large(received, "at least "))
        except RecursionError:
            await error.replace(400, "BAD_REQUEST", "the request body is nested too deeply")
        except Exception:  # a failure MLflow's app did not answer: log it, answer briefly
            logger.exception("scoring request failed")
            await error.replace(500, "INTERNAL_ERROR", "the server failed; its log says why")
        else:
            await error.flush()

    def _too_large(self, size: int, qualifier: str = "") -> str:
        return (
            f"the request body ({qualifier}{size} bytes) exceeds the limit of "
            f"{self.max_body_bytes} bytes ({MAX_BODY_ENV} or --max-body-bytes)"
        )


class _ErrorAnswer:
    """Passes a success answer through; holds an error answer back until the app returns,
    to send it shortened (or another answer instead, when the app then raises)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._start: Message | None = None
        self._body = b""
        self._sent = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] >= 400:
            self._start = message
        elif self._start is not None:
            self._body += message.get("body", b"")
        else:
            self._sent = self._sent or message["type"] == "http.response.start"
            await self._send(message)

    async def replace(self, status: int, code: str, text: str) -> None:
        """Answer with this error instead, unless a success answer has begun."""
        if not self._sent:
            await _answer(self._send, status, code, text)
            self._sent = True

    async def flush(self) -> None:
        """Send the held error answer, shortened."""
        if self._start is not None and not self._sent:
            await _answer(self._send, *_short_error(self._start["status"], self._body))
            self._sent = True


def _short_error(status: int, body: bytes) -> tuple[int, str, str]:
    """An error answer's status, error code and message, without a stack trace or a dump of
    the request; a server error caused by the body (MLflow's parsing) becomes a 400."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        text = body.decode("utf-8", "replace").strip() or f"HTTP {status}"
        return status, "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR", _shorten(text)
    text = str(answer.get("message", ""))
    if text.startswith(PREDICT_PREFIX) and PREDICT_ERROR in text:
        text = text.split(PREDICT_ERROR, 1)[1]
    return status, str(answer.get("error_code", "BAD_REQUEST")), _shorten(text)


def _shorten(text: str) -> str:
    for echo in REQUEST_ECHOES:
        text = text.split(echo, 1)[0]
    text = text.strip()
    return text if len(text) <= MAX_MESSAGE_CHARS else f"{text[: MAX_MESSAGE_CHARS - 3]}..."


async def _answer(send: Send, status: int, code: str, text: str) -> None:
    body = json.dumps({"error_code": code, "message": text}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def max_body_bytes(given: int | None = None) -> int:
    """The body cap: ``given``, else ``LINEAR_NETS_SERVING_MAX_BODY_BYTES``, else 32 MiB."""
    if given is not None:
        return given
    raw = os.environ.get(MAX_BODY_ENV)
    if raw is None:
        return DEFAULT_MAX_BODY_BYTES
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{MAX_BODY_ENV}={raw!r} is not a number of bytes") from None


def scoring_app(model_uri: str, max_body: int | None = None) -> RequestGuard:
    """MLflow's scoring app for the model at ``model_uri``, behind a :class:`RequestGuard`."""
    import mlflow.pyfunc
    from mlflow.pyfunc import scoring_server

    model = mlflow.pyfunc.load_model(model_uri)
    return RequestGuard(scoring_server.init(model), max_body_bytes(max_body))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m linear_nets.serving.server",
        description="Serve an MLflow model like `mlflow models serve`, with a request cap.",
    )
    parser.add_argument("-m", "--model-uri", required=True, help="e.g. models:/name@champion")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5001)
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=None,
        help=f"largest request body (default: ${MAX_BODY_ENV} or {DEFAULT_MAX_BODY_BYTES})",
    )
    args = parser.parse_args(argv)
    import uvicorn

    app = scoring_app(args.model_uri, args.max_body_bytes)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logger.info(
        "Serving %s on http://%s:%d (request bodies up to %d bytes)",
        args.model_uri, args.host, args.port, app.max_body_bytes,
    )  # fmt: skip
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
