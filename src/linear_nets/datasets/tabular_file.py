"""A user's table, read from CSV, Parquet or Excel by its extension, with errors that name the file.

kedro-datasets has one dataset per format; the ``tabular`` pipeline takes whichever file the
user names on the command line, so this dataset picks the reader from the extension (Excel
through kedro-datasets' ``pandas.ExcelDataset``). It also refuses what pandas would silently
rename: duplicate column names (``x`` and ``x.1``) and empty ones (``Unnamed: 1``).

A CSV's separator and decimal mark are found from the file unless given: the separator is the
one of ``, ; tab |`` that the header line holds most of; the decimal mark is a comma when the
separator is not and the numbers are written ``3,5`` (as in many European exports).
"""

from __future__ import annotations

import csv
import functools
import itertools
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kedro.io import DatasetError

from linear_nets.datasets.read_only import ReadOnlyDataset

SUFFIXES = (".csv", ".parquet", ".xlsx")
SEPARATORS = {",": ",", ";": ";", "\t": "\t", "|": "|", "comma": ",", "semicolon": ";"}
SEPARATORS |= {"tab": "\t", "pipe": "|"}
"""The separators a CSV may use, by character or by name (a comma cannot pass ``--params``)."""
DECIMALS = {".": ".", ",": ",", "point": ".", "comma": ","}
AUTO = "auto"
CSV_CHUNK_ROWS = 65_536
"""Rows parsed at a time: a large CSV costs its numbers once plus one chunk's text."""
SNIFFED_LINES = 1000
"""The data lines read to tell a decimal comma from a decimal point."""
_COMMA_NUMBER = re.compile(r"\s*[+-]?\d*,\d+([eE][+-]?\d+)?\s*")
_POINT_NUMBER = re.compile(r"\s*[+-]?\d*\.\d+([eE][+-]?\d+)?\s*")


class TabularFileError(DatasetError):
    """The file cannot be read as a table: it names the file and what is wrong."""


class TabularFileDataset(ReadOnlyDataset[Any]):
    """Load a CSV, Parquet or Excel (.xlsx) file, with a header row, as a pandas DataFrame.

    Read-only. Blank CSV lines and blank sheet rows are kept as empty rows, so a row's position
    always gives its line in the file (row i is CSV line i + 2, sheet row i + 2). A CSV or
    Parquet table whose columns all hold numbers loads as one float64 block, read a chunk (CSV)
    or a column (Parquet) at a time: a file of millions of rows costs its numbers once.

    Example catalog entry::

        tabular.source:
          type: linear_nets.datasets.tabular_file.TabularFileDataset
          filepath: ${runtime_params:tabular.source.filepath}
          sep: auto       # or , ; tab | (CSV)
          decimal: auto   # or point, comma (CSV)
          sheet: 0        # the sheet's name or 0-based position (Excel)
    """

    def __init__(
        self,
        *,
        filepath: str,
        sep: str = AUTO,
        decimal: str = AUTO,
        sheet: str | int = 0,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """
        Args:
            filepath: a .csv, .parquet or .xlsx file.
            sep: the CSV separator, ``auto`` to find it from the header line.
            decimal: the CSV decimal mark (``point``/``.`` or ``comma``/``,``), ``auto`` to find it.
            sheet: the Excel sheet, by name or 0-based position.
            metadata: free-form, e.g. kedro-viz's layer.
        """
        super().__init__(filepath, metadata)
        if sep != AUTO and sep not in SEPARATORS:
            raise TabularFileError(
                f"{self._path}: unknown separator {sep!r}; expected auto or one of "
                f"{', '.join(map(repr, SEPARATORS))}"
            )
        if decimal != AUTO and decimal not in DECIMALS:
            raise TabularFileError(
                f"{self._path}: unknown decimal mark {decimal!r}; expected auto, point or comma"
            )
        self._sep = sep if sep == AUTO else SEPARATORS[sep]
        self._decimal = decimal if decimal == AUTO else DECIMALS[decimal]
        self._sheet = sheet

    def load(self) -> Any:
        path = self._path
        suffix = path.suffix.lower()
        if suffix not in SUFFIXES:
            raise TabularFileError(
                f"{path}: unknown extension {path.suffix or '(none)'!r}; "
                f"expected {', '.join(SUFFIXES[:-1])} or {SUFFIXES[-1]}"
            )
        if not path.is_file():
            raise TabularFileError(f"{path}: no such file")
        readers = {".csv": self._read_csv, ".parquet": _read_parquet, ".xlsx": self._read_excel}
        try:
            return readers[suffix](path)
        except TabularFileError:
            raise
        except Exception as exc:  # each reader raises its own kinds; all mean "unreadable"
            kind = {".csv": "CSV", ".parquet": "Parquet", ".xlsx": "Excel"}[suffix]
            raise TabularFileError(f"{path}: cannot be read as {kind}: {exc}") from None

    def _describe(self) -> dict[str, Any]:
        return {
            **super()._describe(),
            "sep": self._sep,
            "decimal": self._decimal,
            "sheet": self._sheet,
        }

    def _read_csv(self, path: Path) -> Any:
        import pandas as pd

        with path.open(newline="", encoding="utf-8") as handle:
            first = handle.readline()
            sep = _sniff_separator(first) if self._sep == AUTO else self._sep
            handle.seek(0)
            header = next(csv.reader(handle, delimiter=sep), None)
            decimal = self._decimal
            if decimal == AUTO:
                sample = itertools.islice(csv.reader(handle, delimiter=sep), SNIFFED_LINES)
                decimal = _sniff_decimal(sample) if sep != "," else "."
        if not header:
            raise TabularFileError(f"{path}: empty file; expected a header line with column names")
        if sep == decimal:
            raise TabularFileError(
                f"{path}: the separator and the decimal mark are both {sep!r}; "
                "a decimal comma needs another separator (; or tab)"
            )
        _check_names(path, header, "the header line")
        chunks = pd.read_csv(
            path, sep=sep, decimal=decimal, skip_blank_lines=False, chunksize=CSV_CHUNK_ROWS
        )
        with chunks:
            return _joined(chunks, header, _count_lines(path))

    def _read_excel(self, path: Path) -> Any:
        import pandas as pd
        from kedro_datasets.pandas import ExcelDataset

        load_args = {"sheet_name": self._sheet, "header": None}
        try:
            rows = ExcelDataset(filepath=str(path), load_args=load_args).load()
        except DatasetError as exc:  # "Failed while loading data from dataset …": the cause
            raise TabularFileError(
                f"{path}: cannot be read as Excel: {exc.__cause__ or exc}"
            ) from None
        if rows.empty:
            raise TabularFileError(f"{path}: empty sheet; expected a header row with column names")
        header = ["" if pd.isna(name) else str(name) for name in rows.iloc[0]]
        _check_names(path, header, "the header row")
        table = rows.iloc[1:].reset_index(drop=True)
        table.columns = header
        return table.infer_objects()


def _joined(chunks: Iterable[Any], names: list[str], most_rows: int) -> Any:
    """The CSV's chunks as one frame. While every column holds numbers, each chunk is copied
    into one float64 block of ``most_rows`` rows (allocated at once, its pages touched only as
    they fill) and dropped, so the table is held once plus a chunk, not twice as concatenating
    would; from a chunk with text on, the chunks are concatenated as pandas reads them."""
    import numpy as np
    import pandas as pd

    from linear_nets.frames import block_frame

    numeric = pd.api.types.is_numeric_dtype
    block = np.empty((len(names), most_rows))
    rows, frames = 0, None
    for chunk in chunks:
        if frames is None and all(numeric(dtype) for dtype in chunk.dtypes):
            block[:, rows : rows + len(chunk)] = chunk.to_numpy("float64").T
            rows += len(chunk)
            continue
        if frames is None:
            frames = [block_frame(block[:, :rows], names)]
        frames.append(chunk)
    if frames is not None:
        return pd.concat(frames, ignore_index=True)
    return block_frame(block[:, :rows], names)


def _count_lines(path: Path) -> int:
    """The lines of a file, at least as many as the CSV rows it holds (bytes read 16 MiB at a
    time: a fraction of the time parsing them takes)."""
    lines, last = 0, b"\n"
    with path.open("rb") as file:
        for piece in iter(functools.partial(file.read, 1 << 24), b""):
            lines += piece.count(b"\n")
            last = piece[-1:]
    return lines + (last != b"\n")


def _read_parquet(path: Path) -> Any:
    import pyarrow.parquet as pq

    from linear_nets.datasets.frame import read_frame

    _check_names(path, pq.read_schema(path).names, "the schema")
    return read_frame(path, numbers_as_floats=True)


def _sniff_separator(header_line: str) -> str:
    """The separator the header line holds most of (a comma when it holds none)."""
    counts = {sep: header_line.count(sep) for sep in (",", ";", "\t", "|")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def _sniff_decimal(rows: Any) -> str:
    """A comma when some cell is written like ``3,5`` and none like ``3.5``; else a point."""
    comma = False
    for row in rows:
        for cell in row:
            if _POINT_NUMBER.fullmatch(cell):
                return "."
            comma = comma or bool(_COMMA_NUMBER.fullmatch(cell))
    return "," if comma else "."


def _check_names(path: Path, names: list[str], where: str) -> None:
    """Refuse an empty column name (pandas would call it ``Unnamed: i``) or a repeated one."""
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if not str(name).strip():
            raise TabularFileError(
                f"{path}: column {position} has no name in {where} (pandas would call it "
                f"'Unnamed: {position - 1}'); name it, or delete the column (a saved row index?)"
            )
        if name in seen:
            raise TabularFileError(
                f"{path}: column name {name!r} appears twice (columns {seen[name]} and "
                f"{position}); column names must be unique"
            )
        seen[name] = position
