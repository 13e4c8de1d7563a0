"""The nodes in front of boston's regression pipeline: the StatLib file and its parsing."""

from __future__ import annotations

import re

import numpy as np
import pytest

from linear_nets.datasets.download import DownloadLimits
from linear_nets.pipelines.boston.nodes import (
    COLUMNS,
    StatLibFormatError,
    StatLibSourceConfig,
    download_boston_data,
    parse_statlib_records,
)
from tests.support import HEADER, statlib_text


def test_download_hands_the_pinned_source_to_the_fetcher():
    calls = []

    def fetch(url: str, sha256: str | None, limits: DownloadLimits) -> bytes:
        calls.append((url, sha256, limits))
        return b"raw"

    source = StatLibSourceConfig(url="http://example.invalid/boston", sha256="AB" * 32, timeout_s=5)
    assert download_boston_data(fetch, source) == b"raw"
    limits = DownloadLimits(
        timeout_s=5.0, deadline_s=60.0, max_bytes=10_000_000, param="boston.source"
    )
    assert calls == [("http://example.invalid/boston", "ab" * 32, limits)]


class TestParse:
    def test_parses_records_into_named_columns(self, small_rows):
        table = parse_statlib_records(statlib_text(small_rows).encode())
        assert list(table.columns) == list(COLUMNS)
        assert table.shape == (60, 14)
        np.testing.assert_allclose(table.to_numpy(), small_rows, rtol=1e-6)

    def test_accepts_crlf_and_trailing_blank_lines(self, small_rows):
        text = statlib_text(small_rows, newline="\r\n") + "\r\n\r\n  \r\n"
        table = parse_statlib_records(text.encode())
        assert table.shape == (60, 14)

    @pytest.mark.parametrize(
        ("mutate", "message"),
        [
            (
                lambda lines: lines.__setitem__(24, lines[24] + " 1.0"),
                "line 25: expected 11 values",
            ),
            (
                lambda lines: lines.__setitem__(25, "1 2"),
                "line 26: expected 3 values (B, LSTAT, MEDV)",
            ),
            (
                lambda lines: lines.__setitem__(
                    22, lines[22].replace(lines[22].split()[9], "abc", 1)
                ),
                "line 23: TAX value 'abc' is not a number",
            ),
            (
                lambda lines: lines.__setitem__(27, "1 2 nan"),
                "line 28: MEDV value 'nan' is not finite",
            ),
            (
                lambda lines: lines.__setitem__(27, "1 1e308 3"),
                "line 28: LSTAT value '1e308' overflows float32",
            ),
            (lambda lines: lines.pop(), "the last record is cut short"),
            (lambda lines: lines.__setitem__(30, ""), "line 31: expected 11 values"),
        ],
        ids=[
            "too-many-values",
            "too-few-values",
            "non-numeric",
            "nan",
            "overflow",
            "cut-short",
            "blank-inside",
        ],
    )
    def test_rejects_malformed_lines_naming_them(self, small_rows, mutate, message):
        lines = statlib_text(small_rows).splitlines()
        mutate(lines)
        with pytest.raises(StatLibFormatError, match=re.escape(message)):
            parse_statlib_records(("\n".join(lines) + "\n").encode())

    def test_rejects_a_file_without_records(self):
        with pytest.raises(StatLibFormatError, match="no records"):
            parse_statlib_records(("\n".join(HEADER) + "\n\n").encode())

    def test_rejects_non_ascii_naming_the_line(self, small_rows):
        lines = statlib_text(small_rows).splitlines()
        lines[29] = lines[29] + " \u00e9"
        raw = ("\n".join(lines) + "\n").encode("utf-8")
        with pytest.raises(StatLibFormatError, match="line 30: non-ASCII"):
            parse_statlib_records(raw)
