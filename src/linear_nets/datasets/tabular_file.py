"""A user's table, read from CSV or Parquet by its extension, with errors that name the file.

kedro-datasets has one dataset per format; the ``tabular`` pipeline takes whichever file the
user names on the command line, so this dataset picks the reader from the extension. It also
refuses what pandas would silently rename (duplicate column names become ``x`` and ``x.1``).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from kedro.io import DatasetError

from linear_nets.datasets.read_only import ReadOnlyDataset

SUFFIXES = (".csv", ".parquet")


class TabularFileError(DatasetError):
    """The file cannot be read as a table: it names the file and what is wrong."""


class TabularFileDataset(ReadOnlyDataset[Any]):
    """Load a CSV (header row, comma-separated) or Parquet file as a pandas DataFrame.

    Read-only. Blank CSV lines are kept as empty rows, so a row's position always gives its
    line in the file (row i is line i + 2).

    Example catalog entry::

        tabular.source:
          type: linear_nets.datasets.tabular_file.TabularFileDataset
          filepath: ${runtime_params:tabular.source.filepath}
    """

    def __init__(self, *, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(filepath, metadata)

    def load(self) -> Any:
        path = self._path
        suffix = path.suffix.lower()
        if suffix not in SUFFIXES:
            raise TabularFileError(
                f"{path}: unknown extension {path.suffix or '(none)'!r}; "
                f"expected {' or '.join(SUFFIXES)}"
            )
        if not path.is_file():
            raise TabularFileError(f"{path}: no such file")
        try:
            return _read_csv(path) if suffix == ".csv" else _read_parquet(path)
        except TabularFileError:
            raise
        except Exception as exc:  # each reader raises its own kinds; all mean "unreadable"
            kind = "CSV" if suffix == ".csv" else "Parquet"
            raise TabularFileError(f"{path}: cannot be read as {kind}: {exc}") from None


def _read_csv(path: Path) -> Any:
    import pandas as pd

    with path.open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise TabularFileError(f"{path}: empty file; expected a header line with column names")
    _refuse_duplicates(path, header)
    return pd.read_csv(path, skip_blank_lines=False)


def _read_parquet(path: Path) -> Any:
    import pyarrow.parquet as pq

    _refuse_duplicates(path, pq.read_schema(path).names)
    return pq.read_table(path).to_pandas()


def _refuse_duplicates(path: Path, names: list[str]) -> None:
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name in seen:
            raise TabularFileError(
                f"{path}: column name {name!r} appears twice (columns {seen[name]} and "
                f"{position}); column names must be unique"
            )
        seen[name] = position
