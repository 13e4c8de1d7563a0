"""The vectorised ``dataframe_split`` parse against the general path (orjson, MLflow's
``infer_and_parse_data``): where it takes a body it gives the same numbers, every other body it
leaves to the general path, and the server's answer (status and message) is the same either
way."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import orjson
import pytest
from mlflow.pyfunc import scoring_server

from linear_nets.pipelines.boston.nodes import FEATURES
from linear_nets.serving.json_rows import split_rows
from linear_nets.serving.server import Invocations

from .conftest import boston_rows

COLUMNS = list(FEATURES)
ROWS = boston_rows().head(3).to_numpy().tolist()  # RAD, TAX, CHAS as ints


def _row(cells: list[str] | None = None, at: int = 0) -> str:
    """A boston row as JSON text, ``cells`` in place of the cells from column ``at`` on."""
    values = [json.dumps(value) for value in ROWS[1]]
    if cells is not None:
        values[at : at + len(cells)] = cells
    return "[" + ", ".join(values) + "]"


def _body(data: str, columns: list[str] = COLUMNS, extra: str = "") -> bytes:
    """A ``dataframe_split`` body whose data array is the text ``data``."""
    split = f'"columns": {json.dumps(columns)}, {extra}"data": {data}'
    return ('{"dataframe_split": {' + split + "}}").encode()


def _rows(*rows: str) -> str:
    first, last = (json.dumps(ROWS[0]), json.dumps(ROWS[2]))
    return "[" + ", ".join([first, *rows, last]) + "]"


TAKEN = {  # bodies the fast path parses
    "ints and floats": _body(json.dumps(ROWS)),
    "compact": _body(json.dumps(ROWS, separators=(",", ":"))),
    "pretty printed": json.dumps({"dataframe_split": {"columns": COLUMNS, "data": ROWS}},
                                 indent=2).encode(),  # fmt: skip
    "tabs and CRLF": _body("[\r\n\t" + _row() + " ,\r\n\t" + _row() + "\t]"),
    "exponents": _body(_rows(_row(["1e5", "1E-5", "1.5e+3", "0e0", "2E05", "3e-07", "1e+05",
                                   "-0e-0", "1e-400"]))),  # fmt: skip
    "negative zero and zeros": _body(_rows(_row(["-0", "-0.0", "0", "0.0", "10", "100.001"]))),
    "negatives": _body(_rows(_row(["-1", "-0.5", "-12.25e-1"]))),
    "int beyond int64": _body(_rows(_row(["123456789012345678901234567890"]))),
    "float32's largest": _body(_rows(_row(["3.4028234663852886e38", "-3.4e38"]))),
    "one row": _body("[" + _row() + "]"),
    "data first": (
        '{"dataframe_split": {"data": [' + _row() + '], "columns": '
        + json.dumps(COLUMNS) + "}}"
    ).encode(),  # fmt: skip
    "an index": _body(_rows(), extra='"index": [4, "b"], '),
    "columns in another order": _body(_rows(), columns=COLUMNS[::-1]),
    "an extra column": _body("[" + _row(["1"] * 13 + ["7"]) + "]", columns=[*COLUMNS, "X"]),
}
DECLINED = {  # bodies left to the general path, which answers them as before
    "text": _body(_rows(_row(['"0.5"']))),
    "null": _body(_rows(_row(["null"], at=5))),
    "true": _body(_rows(_row(["true"], at=3))),
    "false": _body(_rows(_row(["false"]))),
    "nested list": _body(_rows(_row(["[1, 2]"]))),
    "NaN": _body(_rows(_row(["NaN"]))),
    "Infinity": _body(_rows(_row(["-Infinity"]))),
    "beyond float64": _body(_rows(_row(["1e400"]))),
    "ragged": _body(_rows(_row()[:-1] + ", 1]")),
    "ragged, short": _body(_rows("[1, 2]")),
    "row length is not the columns'": _body(_rows(), columns=COLUMNS[:12]),
    "empty data": _body("[]"),
    "empty row": _body("[[]]"),
    "a row not a list": _body("[" + _row() + ", 5]"),
    "stray number": _body("[" + _row() + "5, " + _row() + "]"),
    "stray before a row": _body("[" + _row() + ", 5" + _row() + "]"),
    "number split by a space": _body(_rows(_row(["1 2"]))),
    "empty cell": _body(_rows(_row([""]))),
    "trailing comma in a row": _body(_rows(_row()[:-1] + ",]")),
    "trailing comma in the data": _body("[" + _row() + ",]"),
    ".5": _body(_rows(_row([".5"]))),
    "5.": _body(_rows(_row(["5."]))),
    "1.e5": _body(_rows(_row(["1.e5"]))),
    "+1": _body(_rows(_row(["+1"]))),
    "01": _body(_rows(_row(["01"]))),
    "-01": _body(_rows(_row(["-01"]))),
    "00": _body(_rows(_row(["00"]))),
    "-00": _body(_rows(_row(["-00"]))),
    "1e+-5": _body(_rows(_row(["1e+-5"]))),
    "1e": _body(_rows(_row(["1e"]))),
    "--1": _body(_rows(_row(["--1"]))),
    "hex": _body(_rows(_row(["0x1"]))),
    "duplicate column": _body("[" + _row(["1"] * 13 + ["7"]) + "]", columns=[*COLUMNS, "CRIM"]),
    "column named data": _body("[" + _row(["1"] * 13 + ["7"]) + "]", columns=[*COLUMNS, "data"]),
    "escaped column name": _body(_rows(), columns=[*COLUMNS[:12], "L\u00e9STAT"]).replace(
        "é".encode(), b"\\u00e9"
    ),
    "escaped data key": _body(_rows()).replace(b'"data"', b'"d\\u0061ta"'),
    "data twice": _body(_rows(), extra='"data": [], '),
    "data twice, after": _body(_rows())[:-2] + b', "data": [[1]]}}',
    "params": _body(_rows())[:-1] + b', "params": {"a": 1}}',
    "another format": _body(_rows())[:-1] + b', "inputs": [[1]]}',
    "index of another length": _body(_rows(), extra='"index": [1, 2, 3], '),
    "nested index": _body(_rows(), extra='"index": [[1], [2]], '),
    "another key": _body(_rows(), extra='"dtype": "x", '),
    "not an object": b"[" + _rows().encode() + b"]",
    "broken JSON after the data": _body(_rows())[:-1],
    "broken JSON before the data": _body(_rows()).replace(b'"columns":', b'"columns"'),
    "text after the body": _body(_rows()) + b" x",
    "data nested deeper": _body("[" + _rows() + "]"),
}
REFUSED = {  # bodies the fast path parses and the model refuses: the general path answers
    "overflows float32": _body(_rows(_row(["1e39"]))),
    "missing column": _body("[" + _row()[:-1].rsplit(",", 1)[0] + "]]", columns=COLUMNS[:12]),
}


@pytest.mark.parametrize("name", [*TAKEN, *REFUSED])
def test_bodies_of_numbers_give_the_general_paths_numbers(name: str):
    body = {**TAKEN, **REFUSED}[name]
    frame = split_rows(body)
    assert frame is not None, name
    assert frame.dtypes.eq("float64").all()
    general = scoring_server.infer_and_parse_data(orjson.loads(body))
    assert list(frame.columns) == list(general.columns)
    np.testing.assert_array_equal(frame.to_numpy(), general.to_numpy(dtype="float64"))


@pytest.mark.parametrize("name", list(DECLINED))
def test_other_bodies_are_left_to_the_general_path(name: str):
    assert split_rows(DECLINED[name]) is None


@pytest.fixture(scope="module")
def servers(saved_model: Path) -> tuple[Invocations, Invocations]:
    model = mlflow.pyfunc.load_model(str(saved_model))
    return (
        Invocations(model, fallback=None, fast_json_min_bytes=0),
        Invocations(model, fallback=None, fast_json_min_bytes=None),
    )


@pytest.mark.parametrize("name", [*TAKEN, *REFUSED, *DECLINED])
def test_the_answer_is_the_general_paths(servers: tuple[Invocations, Invocations], name: str):
    body = {**TAKEN, **REFUSED, **DECLINED}[name]
    fast, general = (server.score(body, "application/json") for server in servers)
    assert fast[0] == general[0], (fast, general)
    if general[0] == 200:
        np.testing.assert_allclose(
            json.loads(fast[1])["predictions"], json.loads(general[1])["predictions"], rtol=1e-12
        )
    else:
        assert fast[1] == general[1]


def test_refusals_name_the_row_and_column(servers: tuple[Invocations, Invocations]):
    status, answer = servers[0].score(REFUSED["overflows float32"], "application/json")
    assert status == 400
    assert json.loads(answer)["message"] == (
        "column 'CRIM', row 2: value 1e+39 overflows float32 (|x| > 3.403e+38)"
    )
    status, answer = servers[0].score(DECLINED["true"], "application/json")
    assert json.loads(answer)["message"] == (
        "column 'CHAS', row 2: value True is not a number"
    )


def test_a_large_body_takes_the_fast_path(servers: tuple[Invocations, Invocations]):
    rows = boston_rows()
    body = json.dumps({"dataframe_split": json.loads(rows.to_json(orient="split"))}).encode()
    assert split_rows(body) is not None  # pandas' split form, index included
    status, answer = servers[0].score(body, "application/json; charset=utf-8")
    assert status == 200 and len(json.loads(answer)["predictions"]) == len(rows)
