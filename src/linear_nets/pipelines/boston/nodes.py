"""Nodes in front of the boston instance of the regression pipeline: get and parse the file.

The StatLib file is fetched (or taken from the shipped copy) and parsed into the table the
modular regression pipeline (:mod:`linear_nets.pipelines.regression`) trains on: the 13
features, then the target MEDV.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from linear_nets.pipelines.download_limits import DownloadLimitsConfig

FEATURES = (
    "CRIM",
    "ZN",
    "INDUS",
    "CHAS",
    "NOX",
    "RM",
    "AGE",
    "DIS",
    "RAD",
    "TAX",
    "PTRATIO",
    "B",
    "LSTAT",
)
TARGET = "MEDV"
COLUMNS = (*FEATURES, TARGET)
HEADER_LINES = 22
FIRST_LINE_VALUES = 11
"""A StatLib record spans two lines: CRIM … PTRATIO, then B, LSTAT, MEDV."""
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


class StatLibSourceConfig(DownloadLimitsConfig):
    """``params:boston.source``: where the StatLib file comes from, the sha256 it must have
    (null: no pin) and the download's limits."""

    url: str = Field(pattern=r"^(https?|file)://")
    sha256: str | None

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256.match(value):
            raise ValueError(f"{value!r} is not a sha256 hex digest (64 hex characters)")
        return value.lower() if value else value


FLOAT32_MAX = float(np.finfo(np.float32).max)


class StatLibFormatError(ValueError):
    """The raw file does not follow the StatLib Boston format."""


def download_boston_data(fetch: Callable[..., bytes], source: StatLibSourceConfig) -> bytes:
    """Get the StatLib file, from the local copy when it matches the pin, else over the network.

    Args:
        fetch: the ``boston.source`` dataset's fetcher (local copy, download, verification).
        source: URL, sha256 pin (None disables it) and the download's limits.

    Returns:
        The file's bytes, verified against the pin.
    """
    return fetch(source.url, source.sha256, source.limits("boston.source"))


def parse_statlib_records(raw: bytes) -> pd.DataFrame:
    """Parse the StatLib text: a 22-line description, then one record per two lines.

    CRLF line ends and trailing blank lines are accepted; anything else that deviates raises
    an error naming the line.

    Args:
        raw: the file's bytes.

    Returns:
        A float64 table with the 13 feature columns and MEDV, one row per record.

    Raises:
        StatLibFormatError: naming the line and what is wrong with it.
    """
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise StatLibFormatError(f"line {line}: non-ASCII byte {raw[exc.start]:#04x}") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    body = lines[HEADER_LINES:]
    if not body:
        raise StatLibFormatError(
            f"no records: all {len(lines)} lines lie within the {HEADER_LINES}-line header"
        )
    rows = []
    for start in range(0, len(body), 2):
        first_no = HEADER_LINES + start + 1
        if start + 1 >= len(body):
            raise StatLibFormatError(
                f"line {first_no}: the last record is cut short; its second line "
                f"(B, LSTAT, MEDV) is missing"
            )
        first = _values(body[start], first_no, FEATURES[:FIRST_LINE_VALUES])
        second = _values(body[start + 1], first_no + 1, COLUMNS[FIRST_LINE_VALUES:])
        rows.append(first + second)
    return pd.DataFrame(rows, columns=list(COLUMNS), dtype="float64")


def _values(line: str, number: int, names: tuple[str, ...]) -> list[float]:
    tokens = line.split()
    if len(tokens) != len(names):
        raise StatLibFormatError(
            f"line {number}: expected {len(names)} values ({', '.join(names)}), "
            f"found {len(tokens)}: {line.strip()!r}"
        )
    values = []
    for name, token in zip(names, tokens, strict=True):
        try:
            value = float(token)
        except ValueError:
            raise StatLibFormatError(
                f"line {number}: {name} value {token!r} is not a number"
            ) from None
        if not math.isfinite(value):
            raise StatLibFormatError(f"line {number}: {name} value {token!r} is not finite")
        if abs(value) > FLOAT32_MAX:
            raise StatLibFormatError(
                f"line {number}: {name} value {token!r} overflows float32 "
                f"(|x| > {FLOAT32_MAX:.4g}), the precision the model trains in"
            )
        values.append(value)
    return values
