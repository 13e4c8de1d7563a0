"""The numbers of a JSON ``dataframe_split`` body, parsed without a Python object per number.

``{"dataframe_split": {"columns": [...], "data": [[1.5, 2, ...], ...]}}`` with 100 000 rows of
13 numbers is 1.3 M numbers: decoding them into Python floats and building a DataFrame of the
lists takes 0.2–0.9 s. :func:`split_rows` takes the common case, a rectangular array of plain
JSON numbers, through C code instead: it checks the data array's bytes (only numbers, commas,
brackets and whitespace; the brackets and commas exactly ``[[n,…,n],…,[n,…,n]]``; each number
in JSON's grammar), lets pyarrow's CSV reader parse the numbers of a transformed copy, and
decodes the rest of the body (the column names) with orjson. Anything else it leaves alone
(returns ``None``): a string, ``null``, ``true``, a nested list, a ragged row, an empty array,
``NaN``, a number beyond float64, a backslash anywhere in the body, other keys, an ``index``
that is not a flat list, pretty printing it cannot follow. The caller then takes the general
path, whose answer (and error message) stays what it was.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

WHITESPACE = b" \t\r\n"  # JSON's four
NUMBER_BYTES = b"0123456789.eE+-"
DATA_KEY = re.compile(rb'"data"[ \t\r\n]*:[ \t\r\n]*\[')
ARRAYS_CLOSE = re.compile(rb"\][ \t\r\n]*\]")


def _table(mapping: dict[int, int], default: int) -> bytes:
    table = bytearray([default]) * 256
    for byte, to in mapping.items():
        table[byte] = to
    return bytes(table)


# the data array as CSV: each row a line `,,n,…,n` (its two empty leading fields stand where
# the row's `[` and the comma before it, or the array's `[`, were); whitespace is deleted
# (`_token_count` checks that it split no number); any byte that is no part of a number becomes
# `x`, which the CSV reader refuses as a number (and as an empty field)
CSV_BYTES = _table(
    {**{byte: byte for byte in NUMBER_BYTES}, ord(","): ord(","), ord("["): ord(","),
     ord("]"): ord("\n")},
    ord("x"),
)  # fmt: skip
NOT_SEPARATORS = bytes(byte for byte in range(256) if byte not in b"[],")
IS_NUMBER_BYTE = _table({byte: 1 for byte in NUMBER_BYTES}, 0)


class _Declined(Exception):
    """The body is not the one form the vectorised parse takes."""


def split_rows(body: bytes) -> Any | None:
    """The DataFrame (float64 columns) of a numeric ``dataframe_split`` JSON body, or ``None``
    when the body is anything else (see the module's docstring)."""
    try:
        key = DATA_KEY.search(body)
        if key is None:
            raise _Declined
        start = key.end() - 1  # the data array's `[`
        end = _data_end(body, start)
        region = body[start : end + 1]
        # the outer `[` opens the first line; the outer `]` adds an empty last line
        csv = region.translate(CSV_BYTES, WHITESPACE)
        # pyarrow parses (in its threads, without the GIL) while this one checks the bytes
        parsed = _parser().submit(_parse, csv)
        try:
            n, k = _shape(region)
            columns = _columns(body[:start] + b"[]" + body[end + 1 :], n, k)
            if len(csv) != len(region) and _token_count(region) != n * k:
                raise _Declined  # whitespace inside a number (`1 2`)
            _check_numbers(csv)
        finally:
            table = parsed.result() if parsed.exception() is None else None
        return _frame(table, n, columns)
    except _Declined:
        return None


_PARSER: list[ThreadPoolExecutor] = []


def _parser() -> ThreadPoolExecutor:
    """The one thread that runs pyarrow's parse beside the checks (started on first use)."""
    if not _PARSER:
        _PARSER.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="json-rows"))
    return _PARSER[0]


def _data_end(body: bytes, start: int) -> int:
    """Where the array of arrays opened at ``start`` ends (its `]` after a row's `]`): the
    body's last `]` where the data comes last, else the first `]]` after ``start``. (A wrong
    guess holds other bytes than numbers: the parse declines it.)"""
    end = body.rfind(b"]")
    inside = end - 1
    while inside > start and body[inside] in WHITESPACE:
        inside -= 1
    if inside > start and body[inside] == ord("]"):
        return end
    close = ARRAYS_CLOSE.search(body, start)
    if close is None:
        raise _Declined
    return close.end() - 1


def _shape(region: bytes) -> tuple[int, int]:
    """``(rows, columns)`` when the brackets and commas of ``region`` are exactly those of a
    non-empty rectangular array of arrays ``[[a,…],…,[a,…]]``."""
    separators = region.translate(None, NOT_SEPARATORS)
    k = separators.find(b"]") - 1  # the first row's commas, plus one
    if not separators.startswith(b"[[") or k < 1 or (len(separators) - 1) % (k + 2):
        raise _Declined
    n = (len(separators) - 1) // (k + 2)
    row = b"[" + b"," * (k - 1) + b"]"
    if separators != b"[" + (row + b",") * (n - 1) + row + b"]":
        raise _Declined
    return n, k


def _columns(rest: bytes, n: int, k: int) -> list[str]:
    """The column names, when the body without its data array (``[]`` in its place) is
    ``{"dataframe_split": {"columns": [k names], "data": [], "index": [n ints or strings]}}``
    (``index`` optional, keys in any order), each key spelled plainly and "data" once (so the
    array taken out was the value of that key, the one the general path decodes)."""
    try:
        import orjson as json  # what the general path decodes with, where installed
    except ImportError:
        import json
    if b"\\" in rest or rest.count(b'"data"') != 1:
        raise _Declined
    try:
        request = json.loads(rest)
    except ValueError:
        raise _Declined from None
    split = request.get("dataframe_split") if isinstance(request, dict) else None
    if not isinstance(split, dict) or len(request) != 1 or split.get("data") != []:
        raise _Declined
    columns = split.get("columns")
    if not (
        set(split) <= {"columns", "data", "index"}
        and isinstance(columns, list)
        and len(columns) == len(set(columns)) == k
        and all(isinstance(name, str) for name in columns)
    ):
        raise _Declined
    index = split.get("index")
    if "index" in split and not (
        isinstance(index, list)
        and len(index) == n
        and all(type(item) in (int, str) for item in index)
    ):
        raise _Declined
    return columns


def _token_count(region: bytes) -> int:
    """How many runs of number bytes ``region`` holds (a number split by whitespace is two)."""
    import numpy as np

    number = np.frombuffer(region.translate(IS_NUMBER_BYTE), dtype=bool)
    return int(number[0]) + int(np.count_nonzero(number[1:] & ~number[:-1]))


def _check_numbers(csv: bytes) -> None:
    """Decline unless each field of ``csv`` that the CSV reader would take as a float is a JSON
    number: no `.5`, `5.`, `1.e5`, leading `+` or leading zero (`01`), which the reader takes
    and JSON does not; anything else that is not a number the reader refuses itself."""
    import numpy as np

    text = np.frombuffer(csv, dtype=np.uint8)
    digit = (text - np.uint8(ord("0"))) < 10
    dot = text == ord(".")
    if np.count_nonzero(dot[1:-1] & digit[:-2] & digit[2:]) != np.count_nonzero(dot):
        raise _Declined  # a `.` without a digit on each side
    if b"+" in csv and not np.isin(text[np.flatnonzero(text == ord("+")) - 1], list(b"eE")).all():
        raise _Declined  # `+` only in an exponent
    # a `0` followed by a digit must not open a number (nor follow the `-` that opens one)
    zeros = np.flatnonzero((text[1:-1] == ord("0")) & digit[2:]) + 1
    before = text[zeros - 1]
    opening = list(b",\n")
    signed = zeros[before == ord("-")]
    if np.isin(before, opening).any() or np.isin(text[signed - 2], opening).any():
        raise _Declined


def _parse(csv: bytes) -> Any:
    """The CSV form read by pyarrow: the two empty leading fields of each line as null
    columns (a stray number there fails the read), the rest as float64 columns; declined where
    a field is not a number."""
    import io

    import pyarrow as pa
    import pyarrow.csv as pa_csv

    fields = csv.count(b",", 0, csv.find(b"\n")) + 1  # on the first line
    names = ["opening", "comma", *(f"v{position}" for position in range(fields - 2))]
    types = {name: pa.float64() for name in names[2:]} | {"opening": pa.null(), "comma": pa.null()}
    try:
        return pa_csv.read_csv(
            io.BytesIO(csv),
            read_options=pa_csv.ReadOptions(column_names=names),
            parse_options=pa_csv.ParseOptions(
                quote_char=False, double_quote=False, escape_char=False,
                ignore_empty_lines=True,  # only the last line is empty (see _shape)
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=types, strings_can_be_null=False, null_values=[""],
            ),
        )  # fmt: skip
    except (pa.ArrowInvalid, ValueError):
        raise _Declined from None


def _frame(table: Any, n: int, columns: list[str]) -> Any:
    """The DataFrame of the parsed numbers, named ``columns``: one float64 block, written
    column by column (the layout pandas keeps), no further copy; declined where the parse
    failed, a field is empty or a number is beyond float64."""
    import numpy as np
    import pandas as pd

    if table is None:
        raise _Declined  # the parse refused a field
    numbers = table.columns[2:]
    if len(numbers) != len(columns) or table.num_rows != n:
        raise _Declined
    if any(column.null_count for column in numbers):
        raise _Declined  # an empty field
    block = np.empty((len(columns), n))
    for row, column in zip(block, numbers, strict=True):
        offset = 0
        for chunk in column.chunks:
            row[offset : offset + len(chunk)] = chunk.to_numpy()
            offset += len(chunk)
    if not np.isfinite(block.sum()):
        raise _Declined  # 1e400: the general path says what it makes of it
    return pd.DataFrame(block.T, columns=pd.Index(columns, dtype=object), copy=False)
