"""Least-squares inference against statsmodels and against the published Boston fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm

from linear_nets.engine.inference import ols_inference, unscale_coefficients
from linear_nets.pipelines.boston.nodes import FEATURES, TARGET, parse_statlib_records

BOSTON = Path(__file__).resolve().parents[2] / "data" / "01_raw" / "boston.txt"


def _problem(n: int = 60, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)) * [1.0, 50.0, 0.01, 3.0] + [0.0, 400.0, 1.0, -2.0]
    y = X @ [1.5, 0.02, -30.0, 0.0] + 7.0 + rng.normal(0, 2.0, n)
    return X, y


def test_matches_statsmodels_to_1e_6():
    X, y = _problem()
    ours = ols_inference(X, y, ["a", "b", "c", "d"])
    theirs = sm.OLS(y, sm.add_constant(X, prepend=False)).fit()
    table = ours.table
    rtol = 1e-6
    np.testing.assert_allclose(table["ols"], theirs.params, rtol=rtol)
    np.testing.assert_allclose(table["std_error"], theirs.bse, rtol=rtol)
    np.testing.assert_allclose(table["t_value"], theirs.tvalues, rtol=rtol)
    np.testing.assert_allclose(table["p_value"], theirs.pvalues, rtol=rtol)
    interval = theirs.conf_int(alpha=0.05)
    np.testing.assert_allclose(table["ci_low"], interval[:, 0], rtol=rtol)
    np.testing.assert_allclose(table["ci_high"], interval[:, 1], rtol=rtol)
    assert ours.sigma2 == pytest.approx(theirs.scale, rel=rtol)
    assert ours.df_resid == theirs.df_resid == 55
    assert ours.r2 == pytest.approx(theirs.rsquared, rel=rtol)
    assert list(table.index) == ["a", "b", "c", "d", "intercept"]


def test_reproduces_the_published_full_boston_fit():
    """``summary(lm(medv ~ ., data = Boston))`` on all 506 rows, as printed in ISLR and R."""
    table = parse_statlib_records(BOSTON.read_bytes())
    assert len(table) == 506
    fit = ols_inference(table[list(FEATURES)].to_numpy(), table[TARGET].to_numpy(), FEATURES)
    rows = fit.table
    assert rows.loc["intercept", "ols"] == pytest.approx(36.459488, abs=5e-7)
    assert rows.loc["intercept", "std_error"] == pytest.approx(5.103459, abs=5e-7)
    assert rows.loc["RM", "ols"] == pytest.approx(3.809865, abs=5e-7)
    assert rows.loc["RM", "std_error"] == pytest.approx(0.417925, abs=5e-7)
    assert rows.loc["LSTAT", "ols"] == pytest.approx(-0.524758, abs=5e-7)
    assert rows.loc["LSTAT", "std_error"] == pytest.approx(0.050715, abs=5e-7)
    assert fit.residual_std_error == pytest.approx(4.745, abs=5e-4)
    assert fit.df_resid == 492
    assert fit.r2 == pytest.approx(0.7406, abs=5e-5)


def test_unscaling_recovers_the_fit_on_raw_features():
    X, y = _problem()
    mean, std = X.mean(axis=0), X.std(axis=0)
    standardised = ols_inference((X - mean) / std, y, list("abcd")).table["ols"].to_numpy()
    weights, intercept = unscale_coefficients(standardised[:4], standardised[4], mean, std)
    raw = ols_inference(X, y, list("abcd")).table["ols"].to_numpy()
    np.testing.assert_allclose(weights, raw[:4], rtol=1e-9)
    assert intercept == pytest.approx(raw[4], rel=1e-9)


def test_refuses_too_few_rows():
    X, y = _problem(n=5)
    with pytest.raises(ValueError, match=r"5 rows for 4 features: .* features \+ 2 = 6 rows"):
        ols_inference(X, y, list("abcd"))


def test_refuses_collinear_features():
    X, y = _problem()
    X[:, 3] = 2 * X[:, 0] - X[:, 2]
    with pytest.raises(ValueError, match=r"span only 4 of 5 dimensions.*a, c, d are collinear"):
        ols_inference(X, y, list("abcd"))
