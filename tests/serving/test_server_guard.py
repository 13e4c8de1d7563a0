"""The server's parts in process (no sockets): the request guard around an ASGI app, and the
one-pass /invocations on the saved model."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pytest

from linear_nets.serving.server import NESTED_TOO_DEEPLY, Invocations, RequestGuard

from .conftest import boston_rows, expected


def _call(app, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> tuple[int, dict]:
    """One POST /invocations through an ASGI app; the status and the JSON answer."""
    scope = {"type": "http", "method": "POST", "path": "/invocations", "headers": headers or []}
    chunks = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict] = []

    async def receive():
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    body = b"".join(message.get("body", b"") for message in sent[1:])
    return sent[0]["status"], json.loads(body)


def _answering(status: int, answer: dict):
    async def app(scope, receive, send):
        await receive()
        body = json.dumps(answer).encode()
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


def test_a_body_over_the_cap_is_refused_before_the_app_reads_it():
    guard = RequestGuard(_answering(200, {"predictions": []}), max_body_bytes=10)
    status, answer = _call(guard, b"x" * 11, [(b"content-length", b"11")])
    assert status == 413
    assert answer["message"].startswith("the request body (11 bytes) exceeds the limit of 10")
    status, answer = _call(guard, b"x" * 11)  # no Content-Length: counted as it arrives
    assert (status, answer["message"][:30]) == (413, "the request body (at least 11 ")
    assert _call(guard, b"x" * 10) == (200, {"predictions": []})


def test_error_answers_lose_stack_traces_and_request_dumps():
    dumped = {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "Failed to predict data '   CRIM\n0  1.0'. \nError: the reason",
        "stack_trace": 'File "/srv/site-packages/x.py", line 1',
    }
    guard = RequestGuard(_answering(400, dumped), max_body_bytes=100)
    assert _call(guard, b"{}") == (
        400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "the reason"}
    )  # fmt: skip
    echo = {"error_code": "BAD_REQUEST", "message": "Invalid JSON. Error: x\nInput: \nb'{secret'"}
    guard = RequestGuard(_answering(400, echo), max_body_bytes=100)
    assert _call(guard, b"{}")[1]["message"] == "Invalid JSON. Error: x"


def test_an_app_that_fails_on_the_body_gives_a_400_or_a_short_500():
    async def deep(scope, receive, send):
        raise RecursionError("maximum recursion depth exceeded")

    async def broken(scope, receive, send):
        raise KeyError("/srv/secret/path")

    assert _call(RequestGuard(deep, 100), b"[[[")[0] == 400
    status, answer = _call(RequestGuard(broken, 100), b"{}")
    assert (status, answer["error_code"]) == (500, "INTERNAL_ERROR")
    assert "secret" not in answer["message"]


@pytest.fixture(scope="module")
def invocations(saved_model: Path) -> Invocations:
    return Invocations(mlflow.pyfunc.load_model(str(saved_model)), fallback=None)


def test_invocations_take_mlflow_request_formats(invocations: Invocations):
    rows = boston_rows().head(20)
    split = json.loads(rows.to_json(orient="split", index=False))
    parquet = io.BytesIO()
    rows.to_parquet(parquet, index=False)
    requests = {
        "application/json": json.dumps({"dataframe_split": split}).encode(),
        "application/json; charset=utf-8": json.dumps(
            {"dataframe_records": rows.to_dict(orient="records")}
        ).encode(),
        "text/csv": rows.to_csv(index=False).encode(),
        "application/vnd.apache.parquet": parquet.getvalue(),
    }
    for content_type, body in requests.items():
        status, answer = invocations.score(body, content_type)
        assert status == 200, answer
        np.testing.assert_allclose(json.loads(answer)["predictions"], expected(rows), rtol=1e-12)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"[" * 5000 + b"]" * 5000, "application/json", 400, NESTED_TOO_DEEPLY),
        (b'{"dataframe_split": ', "application/json", 400, "the body is not valid JSON: "),
        (b"[1, 2]", "application/json", 400, "The input must be a JSON dictionary with"),
        (b"\xff\xfe", "text/csv", 400, "the CSV body is not UTF-8"),
        (b"PAR1", "application/vnd.apache.parquet", 400, "the body is not a Parquet table"),
        (b"<a/>", "application/xml", 415, "content type 'application/xml': send text/csv"),
        (b"CRIM\n1\n", "text/csv", 400, "missing feature column(s) ['ZN', "),
        (b"{}", "application/json; charset=latin-1", 415, "the scoring server takes UTF-8"),
    ],
)
def test_invocations_refuse_briefly(invocations: Invocations, body, content_type, status, message):
    got, answer = invocations.score(body, content_type)
    answer = json.loads(answer)
    assert (got, set(answer)) == (status, {"error_code", "message"})
    assert answer["message"].startswith(message), answer
    assert len(answer["message"]) <= 500
