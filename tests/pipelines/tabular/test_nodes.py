"""The user's table is checked column by column; every refusal names file, column and row."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linear_nets.datasets.tabular_file import TabularFileDataset
from linear_nets.pipelines.tabular.nodes import (
    TableError,
    TabularSourceConfig,
    prepare_tabular_table,
)

HOUSES = """city,area,rooms,age,price
Leeds,120,4,30,250.5
York,85,3,12,199.0
Hull,140,5,55,270.25
Leeds,60,2,80,120.0
York,99,3,5,230.0
Hull,150,6,20,320.0
"""


def _prepare(tmp_path: Path, text: str, name: str = "houses.csv", **columns) -> pd.DataFrame:
    """Write ``text``, read it as the pipeline does and check it."""
    path = tmp_path / name
    path.write_text(text)
    return _prepare_file(path, columns.get("target", "price"), columns.get("features"))


def _prepare_file(path: Path, target: str = "price", features=None) -> pd.DataFrame:
    """Read ``path`` as the pipeline does and check it."""
    table = TabularFileDataset(filepath=str(path)).load()
    return prepare_tabular_table(table, TabularSourceConfig(filepath=str(path)), target, features)


def test_default_features_are_the_other_numeric_columns_and_the_target_comes_last(tmp_path):
    prepared = _prepare(tmp_path, HOUSES)
    assert list(prepared.columns) == ["area", "rooms", "age", "price"]
    assert (prepared.dtypes == "float64").all()
    assert prepared["price"].tolist()[:2] == [250.5, 199.0]


@pytest.mark.parametrize("features", [["age", "area"], "age area"])
def test_features_are_taken_as_listed(tmp_path, features):
    prepared = _prepare(tmp_path, HOUSES, features=features)
    assert list(prepared.columns) == ["age", "area", "price"]


def test_parquet_rows_are_numbered_from_one(tmp_path):
    table = pd.read_csv(pd.io.common.StringIO(HOUSES))
    table["age"] = table["age"].astype("float64")
    table.loc[2, "age"] = np.inf
    path = tmp_path / "houses.parquet"
    table.to_parquet(path)
    with pytest.raises(TableError, match=re.escape("column 'age', row 3: holds inf")):
        _prepare_file(path)


def test_a_column_pandas_had_to_name_is_refused(tmp_path):
    """A Parquet file written from a frame whose CSV had an empty header cell."""
    table = pd.read_csv(pd.io.common.StringIO(HOUSES)).rename(columns={"age": "Unnamed: 3"})
    path = tmp_path / "houses.parquet"
    table.to_parquet(path)
    message = "houses.parquet: column 'Unnamed: 3' has no name in the file's header"
    with pytest.raises(TableError, match=re.escape(message)):
        _prepare_file(path)


def test_intercept_as_the_target_or_an_unused_column_is_fine(tmp_path):
    prepared = _prepare(tmp_path, HOUSES.replace("price", "intercept"), target="intercept")
    assert list(prepared.columns)[-1] == "intercept"
    prepared = _prepare(tmp_path, HOUSES.replace("age", "intercept"), features="area rooms")
    assert list(prepared.columns) == ["area", "rooms", "price"]


def test_excel_rows_are_named_as_the_sheet_numbers_them(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    for line in HOUSES.splitlines():
        book.active.append([int(c) if c.isdigit() else c for c in line.split(",")])
    book.active["C4"] = "five"  # rooms of the third house, on the sheet's row 4
    path = tmp_path / "houses.xlsx"
    book.save(path)
    message = "houses.xlsx: column 'rooms', row 4: holds 'five', which is not a number"
    with pytest.raises(TableError, match=re.escape(message)):
        _prepare_file(path)


def _replace(line: int, old: str, new: str) -> str:
    """HOUSES with ``old`` replaced by ``new`` on ``line`` (1 is the header)."""
    lines = HOUSES.splitlines()
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "columns", "message"),
    [
        (
            HOUSES,
            {"target": "value"},
            "houses.csv: no target column 'value' (tabular.target); the columns are "
            "['city', 'area', 'rooms', 'age', 'price']",
        ),
        (
            HOUSES,
            {"features": ["area", "garden"]},
            "houses.csv: no feature column 'garden' (tabular.features)",
        ),
        (
            HOUSES,
            {"features": ["city", "area"]},
            "houses.csv: column 'city', line 2: holds 'Leeds', which is not a number",
        ),
        (
            _replace(4, ",5,", ",five,"),
            {},
            "houses.csv: column 'rooms', line 4: holds 'five', which is not a number",
        ),
        (
            _replace(5, ",80,", ",,"),
            {},
            "houses.csv: column 'age', line 5: is missing (empty or NaN)",
        ),
        (
            _replace(6, ",5,", ",NaN,"),
            {},
            "houses.csv: column 'age', line 6: is missing (empty or NaN)",
        ),
        (
            _replace(7, ",20,", ",inf,"),
            {},
            "houses.csv: column 'age', line 7: holds inf, which is not finite",
        ),
        (
            _replace(3, ",12,", ",-inf,"),
            {},
            "houses.csv: column 'age', line 3: holds -inf, which is not finite",
        ),
        (
            _replace(2, "250.5", ""),
            {},
            "houses.csv: column 'price', line 2: is missing (empty or NaN)",
        ),
        (
            HOUSES.replace(",3,", ",4,")
            .replace(",5,", ",4,")
            .replace(",2,", ",4,")
            .replace(",6,", ",4,"),
            {},
            "houses.csv: column 'rooms' is constant (4 in every row): its standard deviation is 0",
        ),
        (
            HOUSES,
            {"features": ["area", "rooms", "area"]},
            "houses.csv: tabular.features lists 'area' twice",
        ),
        (
            HOUSES,
            {"features": ["area", "price"]},
            "houses.csv: the target 'price' is also listed as a feature",
        ),
        (
            "\n".join(HOUSES.splitlines()[:5]) + "\n",
            {},
            "houses.csv: 4 rows for 3 features; least squares needs at least features + 2 = 5 rows",
        ),
        (
            "city,price\nLeeds,1\nYork,2\nHull,3\n",
            {},
            "houses.csv: no numeric feature column besides the target 'price'",
        ),
        (
            HOUSES.replace("250.5", "200").replace("199.0", "200").replace("270.25", "200")
            .replace("120.0", "200").replace("230.0", "200").replace("320.0", "200"),
            {},
            "houses.csv: the target 'price' (tabular.target) is constant (200 in every row): "
            "there is nothing to predict",
        ),
        (
            HOUSES.replace("rooms", "intercept"),
            {},
            "houses.csv: feature column 'intercept' takes the name of the coefficient table's "
            "intercept row; rename the column",
        ),
        (
            _replace(3, "199.0", '"199,5"'),
            {},
            "houses.csv: column 'price', line 3: holds '199,5', which is not a number (a decimal "
            "comma? set tabular.source.decimal=comma)",
        ),
    ],
    ids=[
        "missing-target",
        "missing-feature",
        "text-feature-listed",
        "word-among-numbers",
        "empty-cell",
        "nan",
        "inf",
        "minus-inf",
        "empty-target",
        "constant-column",
        "feature-twice",
        "target-as-feature",
        "too-few-rows",
        "no-numeric-feature",
        "constant-target",
        "feature-named-intercept",
        "decimal-comma-hint",
    ],
)
def test_bad_tables_are_refused_naming_file_column_and_line(tmp_path, text, columns, message):
    with pytest.raises(TableError, match=re.escape(message)):
        _prepare(tmp_path, text, **columns)


def test_a_text_target_is_refused(tmp_path):
    with pytest.raises(TableError, match=re.escape("column 'city', line 2: holds 'Leeds'")):
        _prepare(tmp_path, HOUSES, target="city")
