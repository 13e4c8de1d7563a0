"""`python -m linear_nets.serving.server`, a real process on 127.0.0.1: MLflow's scoring app
behind the request guard. Every error answer is short JSON: no stack trace, no server path,
no echo of the request; a body it cannot parse is a 400, a body over the cap a 413."""

from __future__ import annotations

import http.client
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linear_nets.pipelines.boston.nodes import FEATURES
from linear_nets.serving.server import MAX_BODY_ENV
from tests.support import LOOPBACK, free_port, process_group, wait_for_http

from .conftest import boston_rows, expected

pytestmark = pytest.mark.slow  # starts a server process (several seconds)

CAP = 300_000
COLUMNS = list(FEATURES)


@pytest.fixture(scope="module")
def server(saved_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    command = [
        sys.executable, "-m", "linear_nets.serving.server", "-m", str(saved_model),
        "--host", LOOPBACK, "--port", str(port),
    ]  # fmt: skip
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = {MAX_BODY_ENV: str(CAP)}
    with process_group(command, cwd=saved_model.parent, log=log, env=env) as process:
        wait_for_http(f"http://{LOOPBACK}:{port}/ping", timeout_s=120, process=process, log=log)
        yield port


def _post(port: int, body: bytes | Iterator[bytes], content_type: str) -> tuple[int, dict]:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=60)
    chunked = not isinstance(body, bytes)
    connection.request(
        "POST", "/invocations", body=body, headers={"Content-Type": content_type},
        encode_chunked=chunked,
    )  # fmt: skip
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    if response.status != 200:  # every error: two short fields, nothing of the server's
        assert set(answer) == {"error_code", "message"}, answer
        text = json.dumps(answer)
        assert len(answer["message"]) <= 500, answer
        for leak in ("Traceback", "site-packages", ".py", str(Path.home()), "/tmp", "/work"):
            assert leak not in text, answer
    return response.status, answer


def _split(data: list, columns: list[str] = COLUMNS) -> bytes:
    return json.dumps({"dataframe_split": {"columns": columns, "data": data}}).encode()


def test_rows_as_json_csv_and_parquet_give_the_model_numbers(server: int):
    rows = boston_rows().head(50)
    split = json.loads(rows.to_json(orient="split", index=False))
    assert isinstance(split["data"][0][COLUMNS.index("TAX")], int)  # JSON ints
    parquet = io.BytesIO()
    rows.to_parquet(parquet, index=False)
    bodies = {
        "application/json": _split(split["data"]),
        "text/csv": rows.to_csv(index=False).encode(),
        "application/vnd.apache.parquet": parquet.getvalue(),
    }
    for content_type, body in bodies.items():
        status, answer = _post(server, body, content_type)
        assert status == 200, (content_type, answer)
        np.testing.assert_allclose(answer["predictions"], expected(rows), rtol=1e-12)


def test_bad_values_are_refused_by_column_and_row(server: int):
    row = boston_rows().head(1).to_numpy().tolist()[0]
    cases = {
        "column 'CRIM', row 2: value [1, 2] is not a number": [row, [[1, 2], *row[1:]]],
        "column 'CRIM', row 1: value '0.5' is text, not a number (send numbers unquoted)": [
            ["0.5", *row[1:]]
        ],
        "column 'RM', row 1: value None is empty (NaN/None)": [
            [*row[:5], None, *row[6:]]
        ],
    }
    for message, data in cases.items():
        assert _post(server, _split(data), "application/json") == (
            400,
            {"error_code": "INVALID_PARAMETER_VALUE", "message": message},
        )
    status, answer = _post(server, _split([[*row, 1.0]], [*COLUMNS, "CRIM"]), "application/json")
    assert (status, answer["message"]) == (400, "column(s) ['CRIM'] given more than once")
    status, answer = _post(server, b"CRIM,ZN\n1,2\n", "text/csv")
    assert status == 400 and answer["message"].startswith("missing feature column(s) ['INDUS'")


def test_malformed_bodies_are_400s(server: int):
    nested = b'{"dataframe_split": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert _post(server, nested, "application/json") == (
        400,
        {"error_code": "BAD_REQUEST", "message": "the request body is nested too deeply"},
    )
    for body, content_type in [
        (b'{"dataframe_split": {"columns": ["CRIM"', "application/json"),
        (b'CRIM,ZN\n1,2,3,4\n"open', "text/csv"),
        (b"PAR1 not parquet", "application/vnd.apache.parquet"),
        (b'{"rows": []}', "application/json"),
    ]:
        status, answer = _post(server, body, content_type)
        assert status == 400, (body, answer)
        assert body.decode(errors="replace")[:12] not in answer["message"]  # no echo


def test_bodies_over_the_cap_are_refused(server: int):
    big = b'{"dataframe_split": {"columns": ["CRIM"], "data": [' + b"[1]," * CAP + b"[1]]}}"
    status, answer = _post(server, big, "application/json")
    assert status == 413
    assert answer["message"] == (
        f"the request body ({len(big)} bytes) exceeds the limit of {CAP} bytes "
        f"({MAX_BODY_ENV} or --max-body-bytes)"
    )
    chunks = (b"x" * 10_000 for _ in range(CAP // 10_000 + 2))  # no Content-Length
    status, answer = _post(server, chunks, "text/csv")
    assert status == 413
    assert answer["message"].startswith("the request body (at least ")


def test_a_large_request_under_the_cap_is_answered(server: int):
    rows = pd.concat([boston_rows()] * 4, ignore_index=True)  # 2024 rows, ~110 kB of CSV
    body = rows.to_csv(index=False).encode()
    assert len(body) < CAP
    status, answer = _post(server, body, "text/csv")
    assert status == 200
    assert len(answer["predictions"]) == len(rows)
