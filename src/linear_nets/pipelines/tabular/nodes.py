"""The node in front of the tabular instance of the regression pipeline: check the user's table.

Whatever would make least squares meaningless or the training fail later (a missing target, a
word among numbers, an empty cell, a constant column, too few rows, a feature named like the
coefficient table's ``intercept`` row) is refused here, naming the file, the column and the line
(CSV) or row (Parquet, Excel).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from linear_nets.datasets.tabular_file import AUTO, DECIMALS, SEPARATORS
from linear_nets.engine.config import StrictModel
from linear_nets.engine.inference import INTERCEPT
from linear_nets.frames import float_frame

logger = logging.getLogger(__name__)


SEPARATOR = Literal[(AUTO, *SEPARATORS)]  # the choices the tabular.source dataset takes
DECIMAL = Literal[(AUTO, *DECIMALS)]
RESERVED = (INTERCEPT,)
"""Row names of the coefficient table besides the features: no feature may take them."""
UNNAMED = re.compile(r"Unnamed: \d+")
"""What pandas calls a column whose header cell is empty."""
DECIMAL_COMMA = re.compile(r"\s*[+-]?\d*,\d+\s*")


class TabularSourceConfig(StrictModel):
    """``params:tabular.source``: the file the ``tabular.source`` dataset reads, and how."""

    filepath: str = Field(min_length=1, description="a .csv, .parquet or .xlsx file")
    sep: SEPARATOR = Field("auto", description="the CSV separator; auto: found from the header")
    decimal: DECIMAL = Field("auto", description="the CSV decimal mark; auto: found from the data")
    sheet: str | int = Field(0, description="the Excel sheet, by name or 0-based position")


class TableError(ValueError):
    """The table cannot be used for least squares; the message names file, column and row."""


def prepare_tabular_table(
    table: pd.DataFrame,
    source: TabularSourceConfig,
    target: str,
    features: Sequence[str] | None,
) -> pd.DataFrame:
    """Pick the feature and target columns of the user's table and check every value.

    Args:
        table: the file as read by the ``tabular.source`` dataset.
        source: the file's path, named in every message.
        target: the column to predict (``tabular.target``).
        features: the feature columns, as a list or as one string of names separated by
            spaces (``--params "tabular.features=rooms area"``: a comma would end the
            parameter); None: every other numeric column.

    Returns:
        The features, then the target, as one float64 block, one row per line of the file
        (the file's own block, not a copy, when it holds just these columns in this order).

    Raises:
        TableError: naming the file, column and line or row of the first problem found.
    """
    where = _Locator(source.filepath)
    target = str(target)
    columns = [str(column) for column in table.columns]
    if target not in columns:
        raise TableError(
            f"{where.file}: no target column {target!r} (tabular.target); the columns are {columns}"
        )
    if features is None:
        chosen = [column for column in columns if column != target and _numeric(table[column])]
        skipped = [column for column in columns if column != target and column not in chosen]
        if skipped:
            logger.info("%s: not numeric, left out of the features: %s", where.file, skipped)
    else:
        chosen = features.split() if isinstance(features, str) else [str(f) for f in features]
        _check_feature_names(chosen, columns, target, where)
    if not chosen:
        raise TableError(f"{where.file}: no numeric feature column besides the target {target!r}")
    _check_names_of_use(chosen, target, where)
    n_rows, needed = len(table), len(chosen) + 2
    if n_rows < needed:
        raise TableError(
            f"{where.file}: {n_rows} rows for {len(chosen)} features; least squares needs at "
            f"least features + 2 = {needed} rows"
        )
    checked = {column: _numbers(table[column], column, where) for column in chosen}
    checked[target] = _numbers(table[target], target, where, role="target")
    names, index = [*chosen, target], pd.RangeIndex(n_rows, name="row")
    if names == columns and all(dtype == np.float64 for dtype in table.dtypes):
        return table.set_axis(index)  # the file's own float block: no copy
    return float_frame(names, n_rows, lambda position: checked[names[position]], index)


class _Locator:
    """Names a row as the user finds it: the line of a CSV file, the row of a sheet (the
    header is row 1) or of a Parquet table (the first data row is row 1)."""

    def __init__(self, filepath: str) -> None:
        self.file = filepath
        self._suffix = Path(filepath).suffix.lower()

    def __call__(self, position: int) -> str:
        if self._suffix == ".csv":
            return f"line {position + 2}"
        return f"row {position + 2}" if self._suffix == ".xlsx" else f"row {position + 1}"


def _check_names_of_use(chosen: list[str], target: str, where: _Locator) -> None:
    """A feature may not take a row name of the coefficient table, and a column the model
    needs must have a name (a served model would ask for ``Unnamed: 1``)."""
    for name in [*chosen, target]:
        if UNNAMED.fullmatch(name):
            raise TableError(
                f"{where.file}: column {name!r} has no name in the file's header (pandas named "
                "it); name it in the file, or pick the features with tabular.features"
            )
    reserved = [name for name in chosen if name in RESERVED]
    if reserved:
        raise TableError(
            f"{where.file}: feature column {reserved[0]!r} takes the name of the coefficient "
            "table's intercept row; rename the column (the model fits its own intercept, so a "
            "column of ones is not needed)"
        )


def _numeric(values: pd.Series) -> bool:
    """A numeric column, or one meant to be (some of its cells are numbers)."""
    if pd.api.types.is_numeric_dtype(values):
        return True
    return bool(pd.to_numeric(values, errors="coerce").notna().any())


def _check_feature_names(chosen: list[str], columns: list[str], target: str, where: _Locator):
    missing = [name for name in chosen if name not in columns]
    if missing:
        raise TableError(
            f"{where.file}: no feature column {missing[0]!r} (tabular.features); "
            f"the columns are {columns}"
        )
    if target in chosen:
        raise TableError(f"{where.file}: the target {target!r} is also listed as a feature")
    repeated = sorted({name for name in chosen if chosen.count(name) > 1})
    if repeated:
        raise TableError(f"{where.file}: tabular.features lists {repeated[0]!r} twice")


def _numbers(
    values: pd.Series, column: str, where: _Locator, role: str = "feature"
) -> np.ndarray:
    """The column as float64 (a view when it is one), or an error at its first cell that is
    not a finite number."""
    if pd.api.types.is_bool_dtype(values):
        values = values.astype("float64")
    if values.dtype == np.float64:
        numbers = values.to_numpy()  # a view: the column is not copied to be checked
    else:
        numbers = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
    for position in np.flatnonzero(~np.isfinite(numbers)):
        cell = values.iloc[position]
        if _is_missing(cell):
            problem = "is missing (empty or NaN); fill or drop the row"
        elif math.isnan(numbers[position]):
            problem = f"holds {_shown(cell)}, which is not a number"
            if isinstance(cell, str) and DECIMAL_COMMA.fullmatch(cell):
                problem += " (a decimal comma? set tabular.source.decimal=comma)"
        else:
            problem = f"holds {_shown(cell)}, which is not finite; fix or drop the row"
        raise TableError(f"{where.file}: column {column!r}, {where(int(position))}: {problem}")
    if len(numbers) and numbers.min() == numbers.max() and role == "target":
        raise TableError(
            f"{where.file}: the target {column!r} (tabular.target) is constant ({numbers[0]:g} "
            "in every row): there is nothing to predict; check the file, or pick another target"
        )
    if len(numbers) and numbers.min() == numbers.max():
        raise TableError(
            f"{where.file}: column {column!r} is constant ({numbers[0]:g} in every row): its "
            "standard deviation is 0, so it cannot be told apart from the intercept; drop it"
        )
    return numbers


def _is_missing(cell: object) -> bool:
    if cell is None or cell is pd.NA:
        return True
    return isinstance(cell, float) and math.isnan(cell)


def _shown(cell: object) -> str:
    """A text cell quoted, a number as written (``inf``, not ``np.float64(inf)``)."""
    return repr(cell) if isinstance(cell, str) else str(cell)
