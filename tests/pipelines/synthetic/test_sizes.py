"""Sizes that cannot fit and values that are not numbers are refused before any node runs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from kedro.validation.exceptions import ParameterValidationError
from pydantic import ValidationError

from linear_nets.pipelines.synthetic.nodes import MAX_TABLE_VALUES, SyntheticParams
from tests.support import run_pipeline

PARAMETERS = Path(__file__).resolve().parents[3] / "conf" / "base" / "parameters_synthetic.yml"


def _params(**changes: object) -> SyntheticParams:
    raw = yaml.safe_load(PARAMETERS.read_text())["synthetic"]
    return SyntheticParams.model_validate({**raw, **changes})


def test_a_table_too_large_for_memory_is_refused_with_the_estimate_and_the_limit():
    started = time.monotonic()
    with pytest.raises(ValidationError) as caught:
        _params(n=10_000_000_000)

    assert time.monotonic() - started < 5  # nothing was allocated
    message = str(caught.value)
    assert "n=10000000000 rows × 3 columns = 3e+10 values need 240 GB" in message
    assert "the limit is 1e+08 values (0.8 GB)" in message


def test_the_largest_table_within_the_limit_is_accepted():
    n = MAX_TABLE_VALUES // 3
    assert _params(n=n).n == n
    with pytest.raises(ValidationError, match="the limit is"):
        _params(n=n + 1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"true_b": float("nan")}, "true_b=nan is not finite"),
        ({"true_w": [2.0, float("inf")]}, r"true_w\[1\]=inf is not finite"),
        ({"noise": float("inf")}, "noise=inf is not finite"),
    ],
)
def test_values_that_are_not_finite_are_refused_naming_the_field(changes, message):
    with pytest.raises(ValidationError, match=message):
        _params(**changes)


def test_a_run_asking_for_too_many_rows_stops_before_any_node(kedro_project: Path):
    with pytest.raises(ParameterValidationError, match=r"(?s)synthetic.*n=1000000000000 rows"):
        run_pipeline(kedro_project, "synthetic", {"synthetic": {"n": 10**12}})
    assert not list((kedro_project / "data").glob("0[1-8]_*/synthetic_*"))
