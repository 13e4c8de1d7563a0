"""The served models' input checks: every refusal names the column and the (1-based) row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from linear_nets.serving.features import FeatureError, check_features, check_model_arrays

from .conftest import boston_rows


def test_missing_column_is_named():
    rows = pd.DataFrame({"a": [1.0], "c": [2.0]})
    with pytest.raises(FeatureError, match=r"missing feature column\(s\) \['b'\]"):
        check_features(rows, ["a", "b", "c"])


def test_a_column_given_twice_is_named():
    rows = pd.DataFrame([[1.0, 2.0, 3.0, 4.0, 5.0]], columns=["a", "b", "a", "id", "id"])
    with pytest.raises(FeatureError, match=r"column\(s\) \['a'\] given more than once"):
        check_features(rows, ["a", "b"])
    np.testing.assert_array_equal(check_features(rows, ["b"]), [[2.0]])  # extra ones: ignored


@pytest.mark.parametrize(
    ("value", "what"),
    [
        ("three", "'three' is not a number"),
        ("0.5", "'0.5' is text, not a number"),
        ([1, 2], r"\[1, 2\] is not a number"),
        ({"x": 1}, r"\{'x': 1\} is not a number"),
        (True, "True is not a number"),
        (None, "None is empty"),
        (float("nan"), "nan is empty"),
        (float("inf"), "inf is not finite"),
        (-float("inf"), "-inf is not finite"),
        (1e308, "1e\\+308 overflows float32"),
        (-3.5e38, "-3.5e\\+38 overflows float32"),
        (10**400, "1000000000000000000000000000000000000... overflows float32"),
    ],
)
def test_bad_value_names_column_and_row(value, what):
    rows = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, value]}, dtype=object)
    with pytest.raises(FeatureError, match=rf"^column 'b', row 2: value {what}"):
        check_features(rows, ["a", "b"])


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ([1.0, np.nan], "column 'b', row 2: value nan is empty"),
        ([1.0, np.inf], "column 'b', row 2: value inf is not finite"),
        ([4e38, 1.0], "column 'b', row 1: value 4e\\+38 overflows float32"),
        (pd.array([1, None], dtype="Int64"), "column 'b', row 2: value <NA> is empty"),
        ([True, False], "column 'b' must hold numbers, not booleans"),
    ],
)
def test_typed_columns_are_checked_too(column, message):
    rows = pd.DataFrame({"a": [1.0, 2.0], "b": column})
    with pytest.raises(FeatureError, match=message):
        check_features(rows, ["a", "b"])


def test_ints_and_floats_are_taken_and_other_columns_ignored():
    rows = pd.DataFrame({"id": ["x"], "b": [2], "c": [3.0], "d": np.array([7], dtype="uint8")})
    checked = check_features(rows, ["c", "b", "d"])
    assert checked.dtype == np.float64
    np.testing.assert_array_equal(checked, [[3.0, 2.0, 7.0]])
    # Python numbers in an object column (JSON of mixed ints and floats) are numbers too
    mixed = pd.DataFrame({"a": [1, 2.5, np.int64(3)]}, dtype=object)
    np.testing.assert_array_equal(check_features(mixed, ["a"]), [[1.0], [2.5], [3.0]])


def test_boston_rows_as_read_are_one_float64_block():
    rows = boston_rows()
    checked = check_features(rows, list(rows.columns))
    np.testing.assert_array_equal(checked, rows.to_numpy(dtype="float64"))
    assert check_features(rows.head(0), list(rows.columns)).shape == (0, 13)


@pytest.mark.parametrize(
    ("arrays", "bias", "message"),
    [
        ({"scaler mean": [0.0] * 12}, 0.0, "scaler mean has 12 entries for 13 input columns"),
        ({"scaler std": [1.0] * 12 + [np.nan]}, 0.0, "scaler std holds a value that is not"),
        ({"weights": [1.0] * 13}, np.inf, "bias is not finite"),
    ],
)
def test_model_arrays_must_fit_the_columns_and_be_finite(arrays, bias, message):
    with pytest.raises(ValueError, match=message):
        check_model_arrays(13, arrays, bias=bias)
    check_model_arrays(13, {"global mean": 0.5, "weights": [[1.0, 2.0]] * 13})
