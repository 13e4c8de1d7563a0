"""Serve a registered model over HTTP: MLflow's scoring server behind a guard on the request.

``python -m linear_nets.serving.server -m models:/boston_linear_regression@champion`` serves
the routes ``mlflow models serve`` serves (``/ping``, ``/health``, ``/version`` by MLflow's own
app, ``mlflow.pyfunc.scoring_server.init``; ``/invocations`` with MLflow's request formats and
parsers, decoded once and answered with a fast JSON encoder), with what MLflow's server lacks:

- a cap on the request body (``--max-body-bytes``, or ``LINEAR_NETS_SERVING_MAX_BODY_BYTES``;
  default 32 MiB): a larger body is answered 413 before it is read to its end;
- a body MLflow fails to parse (JSON nested too deep, broken CSV) is a 400, never a 500;
- no error response carries a stack trace, a server path or a dump of the request;
- a registered version's files are compared with the digests recorded on it before any of
  them runs (``integrity.load_verified``); a changed file stops the server, named;
- a large JSON ``dataframe_split`` of numbers is parsed without a Python object per number.
"""

from __future__ import annotations

import argparse
import asyncio
import io
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
NESTED_TOO_DEEPLY = "the request body is nested too deeply"
FAST_JSON_MIN_BYTES = 16 * 1024
"""JSON bodies from this size on try the vectorised ``dataframe_split`` parse first."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(Exception):
    """The request body grew past the cap while it was read."""


class Invocations:
    """``POST /invocations`` answered in one pass, everything else by MLflow's scoring app.

    The request formats and the answer are MLflow's (``dataframe_split``,
    ``dataframe_records``, ``instances``, ``inputs`` in JSON, CSV, Parquet; ``{"predictions":
    [...]}``), parsed by MLflow's own ``scoring_server`` functions; what differs is the cost:
    MLflow's route decodes a JSON body twice and writes the answer with the pure-Python JSON
    encoder (half a second for 100 000 predictions), this one decodes once and encodes a numpy
    answer with the C encoder. A large ``dataframe_split`` body of numbers is parsed without a
    Python object per number (``json_rows.split_rows``); where that parse declines the body or
    the model refuses its rows, the general path answers, so every answer and error message is
    the general path's.

    Args:
        model: the loaded pyfunc model.
        fallback: MLflow's scoring app, for the other routes.
        fast_json_min_bytes: JSON bodies from this size on try the vectorised parse first
            (``None``: never).
    """

    def __init__(
        self, model: Any, fallback: App, fast_json_min_bytes: int | None = FAST_JSON_MIN_BYTES
    ) -> None:
        self.model = model
        self.fallback = fallback
        self.fast_json_min_bytes = fast_json_min_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (scope["type"] == "http" and scope["path"] == "/invocations"):
            await self.fallback(scope, receive, send)
            return
        if scope["method"] != "POST":
            await _answer(send, 405, "BAD_REQUEST", "use POST for /invocations")
            return
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        content_type = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")
        status, answer = await asyncio.to_thread(self.score, bytes(body), content_type)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    def score(self, body: bytes, content_type: str) -> tuple[int, bytes]:
        """The status and JSON answer for one request body."""
        rows = self.numeric_split(body, content_type)
        if rows is not None:
            try:
                return 200, _predictions_json(self.model.predict(rows))
            except Exception:  # the general path answers it, with its own message
                logger.debug("the model refused the fast path's rows; parsing them again")
        return self.general_score(body, content_type)

    def general_score(self, body: bytes, content_type: str) -> tuple[int, bytes]:
        """:meth:`score` by MLflow's parsers (a Python object per JSON value)."""
        from mlflow.exceptions import MlflowException

        try:
            rows, params = self.parse(body, content_type)
            if params:
                predictions = self.model.predict(rows, params=params)
            else:
                predictions = self.model.predict(rows)
        except _Refusal as refusal:
            return refusal.status, _error_json(refusal.code, refusal.text)
        except MlflowException as error:
            status = error.get_http_status_code()
            text = getattr(error, "reason", None) or error.message
            return status, _error_json(error.error_code, _shorten(text))
        except RecursionError:
            return 400, _error_json("BAD_REQUEST", NESTED_TOO_DEEPLY)
        except Exception:  # what MLflow answers as "an unexpected error", without the trace
            logger.exception("prediction failed")
            text = "the model could not score these rows (the server's log says why)"
            return 400, _error_json("BAD_REQUEST", text)
        if hasattr(predictions, "tolist") and not hasattr(predictions, "columns"):
            return 200, _predictions_json(predictions)
        from mlflow.pyfunc.scoring_server import predictions_to_json

        out = io.StringIO()
        predictions_to_json(predictions, out)
        return 200, out.getvalue().encode()

    def numeric_split(self, body: bytes, content_type: str) -> Any | None:
        """The rows of a large JSON ``dataframe_split`` body of numbers, parsed in C
        (``json_rows.split_rows``); ``None`` for any other body, which :meth:`parse` takes."""
        from linear_nets.serving.json_rows import split_rows

        mime, _, options = content_type.partition(";")
        if (
            self.fast_json_min_bytes is None
            or len(body) < self.fast_json_min_bytes
            or mime.strip().lower() != "application/json"
            or options.strip().lower() not in ("charset=utf-8", "")
        ):
            return None
        try:
            return split_rows(body)
        except Exception:  # a fault of the fast path must not cost the request
            logger.exception("the fast JSON path failed; the general path answers")
            return None

    def parse(self, body: bytes, content_type: str) -> tuple[Any, dict | None]:
        """The rows (and params) of a request, parsed as MLflow's scoring server parses them."""
        from mlflow.pyfunc import scoring_server

        mime, _, options = content_type.partition(";")
        mime = mime.strip().lower()
        if options and options.strip().lower() not in ("charset=utf-8", ""):
            raise _Refusal(415, "the scoring server takes UTF-8 (charset=utf-8) only")
        if mime == scoring_server.CONTENT_TYPE_JSON:
            try:
                request = _json_loads(body)
            except (ValueError, UnicodeDecodeError) as error:
                if "depth" in str(error):  # orjson's limit, 1024 levels
                    raise _Refusal(400, NESTED_TOO_DEEPLY) from None
                raise _Refusal(400, f"the body is not valid JSON: {error}") from None
            if not isinstance(request, dict):
                raise _Refusal(400, f"{scoring_server.REQUIRED_INPUT_FORMAT}.")
            params = request.get(scoring_server.SERVING_PARAMS_KEY)
            data = {key: request[key] for key in request if key in scoring_server.SUPPORTED_FORMATS}
            return scoring_server.infer_and_parse_data(data), params
        if mime == scoring_server.CONTENT_TYPE_CSV:
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as error:
                raise _Refusal(400, f"the CSV body is not UTF-8: {error}") from None
            return _parsed(scoring_server.parse_csv_input, io.StringIO(text), "CSV"), None
        if mime == scoring_server.CONTENT_TYPE_PARQUET:
            return _parsed(scoring_server.parse_parquet_input, io.BytesIO(body), "Parquet"), None
        raise _Refusal(
            415, f"content type {mime or 'none'!r}: send {', '.join(scoring_server.CONTENT_TYPES)}"
        )


class _Refusal(Exception):
    def __init__(self, status: int, text: str, code: str = "BAD_REQUEST") -> None:
        super().__init__(text)
        self.status, self.text, self.code = status, text, code


def _parsed(parse: Callable[[Any], Any], stream: Any, what: str) -> Any:
    """MLflow's parse of a CSV or Parquet body; its error (with a stack trace) made short."""
    from mlflow.exceptions import MlflowException

    try:
        return parse(stream)
    except MlflowException as error:
        reason = error.message.rsplit("Error: ", 1)[-1].strip("'")
        raise _Refusal(400, _shorten(f"the body is not a {what} table: {reason}")) from None


def _json_loads(body: bytes) -> Any:
    """``json.loads``, by orjson where it is installed (kedro-viz brings it): three times as
    fast, and it refuses nesting deeper than 1024 levels."""
    try:
        import orjson
    except ImportError:
        return json.loads(body)
    return orjson.loads(body)


def _predictions_json(predictions: Any) -> bytes:
    """``{"predictions": [...]}`` for a numpy array; orjson, where installed, writes 100 000
    floats in milliseconds, the standard library's encoder in a tenth of a second."""
    try:
        import orjson

        return orjson.dumps({"predictions": predictions}, option=orjson.OPT_SERIALIZE_NUMPY)
    except (ImportError, TypeError):  # no orjson, or an array it does not take
        return json.dumps({"predictions": predictions.tolist()}).encode()


def _error_json(code: str, text: str) -> bytes:
    return json.dumps({"error_code": code, "message": text}).encode()


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
        except Exception as caught:  # what MLflow's app did not answer itself
            if received > self.max_body_bytes:  # (Starlette may wrap BodyTooLarge)
                await error.replace(413, "BAD_REQUEST", self._too_large(received, "at least "))
            elif _caused_by(caught, RecursionError):
                await error.replace(400, "BAD_REQUEST", NESTED_TOO_DEEPLY)
            else:
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


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``error``, an exception group holding it, or its cause or context is a ``kind``."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return True
        pending += [current.__cause__, current.__context__]
        pending += getattr(current, "exceptions", ())
    return False


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
    body = _error_json(code, text)
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


def scoring_app(
    model_uri: str, max_body: int | None = None, fast_json_min_bytes: int = FAST_JSON_MIN_BYTES
) -> RequestGuard:
    """MLflow's scoring app for the model at ``model_uri``, behind a :class:`RequestGuard`
    (``fast_json_min_bytes`` < 0: every JSON body takes the general parse)."""
    from mlflow.pyfunc import scoring_server

    from linear_nets.serving.integrity import load_verified

    model = load_verified(model_uri)  # a registered version's files verified before they run
    fast = None if fast_json_min_bytes < 0 else fast_json_min_bytes
    invocations = Invocations(model, scoring_server.init(model), fast_json_min_bytes=fast)
    return RequestGuard(invocations, max_body_bytes(max_body))


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
    parser.add_argument(
        "--fast-json-min-bytes",
        type=int,
        default=FAST_JSON_MIN_BYTES,
        help="JSON dataframe_split bodies from this size on are parsed vectorised "
        f"(default {FAST_JSON_MIN_BYTES}; -1: never)",
    )
    args = parser.parse_args(argv)
    import uvicorn

    from linear_nets.serving.pyfunc import IntegrityError

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        app = scoring_app(args.model_uri, args.max_body_bytes, args.fast_json_min_bytes)
    except IntegrityError as error:
        raise SystemExit(f"Error: {error}") from None
    logger.info(
        "Serving %s on http://%s:%d (request bodies up to %d bytes)",
        args.model_uri, args.host, args.port, app.max_body_bytes,
    )  # fmt: skip
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
