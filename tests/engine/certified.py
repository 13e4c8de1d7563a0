"""Regression problems with certified answers, for the accuracy tests.

- :func:`exact_polynomial_problem`: an integer polynomial design (condition numbers 5e4 to
  3e8) whose least-squares coefficients and standard errors are computed in exact rational
  arithmetic (``fractions.Fraction``) from the float64 data the solvers see.
- Longley (1967), the NIST StRD "Longley" benchmark: 16 rows, 6 strongly collinear
  economic predictors (condition number 4.9e9 before standardization), with NIST's
  certified values to 15 digits; the data ship with statsmodels.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd

LONGLEY_FEATURES = ["GNPDEFL", "GNP", "UNEMP", "ARMED", "POP", "YEAR"]
LONGLEY_TARGET = "TOTEMP"
# https://www.itl.nist.gov/div898/strd/lls/data/Longley.shtml: (estimate, standard deviation)
LONGLEY_CERTIFIED = {
    "intercept": (-3482258.63459582, 890420.383607373),
    "GNPDEFL": (15.0618722713733, 84.9149257747669),
    "GNP": (-0.358191792925910e-01, 0.334910077722432e-01),
    "UNEMP": (-2.02022980381683, 0.488399681651699),
    "ARMED": (-1.03322686717359, 0.214274163161675),
    "POP": (-0.511041056535807e-01, 0.226073200069370),
    "YEAR": (1829.15146461355, 455.478499142212),
}
LONGLEY_RSD = 304.854073561965
LONGLEY_R2 = 0.995479004577296


def longley() -> pd.DataFrame:
    """The Longley table: the six predictors, then TOTEMP."""
    from statsmodels.datasets import longley as data

    frame = data.load_pandas().data
    return frame[[*LONGLEY_FEATURES, LONGLEY_TARGET]].astype("float64").reset_index(drop=True)


def _inverse(matrix: list[list[Fraction]]) -> list[list[Fraction]]:
    """Gauss-Jordan inverse in exact arithmetic."""
    size = len(matrix)
    rows = [[*row, *(Fraction(int(i == j)) for j in range(size))] for i, row in enumerate(matrix)]
    for col in range(size):
        pivot = next(r for r in range(col, size) if rows[r][col] != 0)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        lead = rows[col][col]
        rows[col] = [value / lead for value in rows[col]]
        for r in range(size):
            if r != col and rows[r][col] != 0:
                factor = rows[r][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col], strict=True)]
    return [row[size:] for row in rows]


def exact_polynomial_problem(n: int, degree: int, seed: int = 0):
    """``x, x², …, x^degree`` of x = 1 … n, a float64 target, and the exact answers.

    Returns:
        ``(X, y, coef, se, rss)``: X (n, degree) and y float64 arrays; coef = [intercept,
        w₁ … w_degree] and se their standard errors, exact for these float64 values (to the
        float64 rounding of the final numbers); rss the residual sum of squares.
    """
    rng = np.random.default_rng(seed)
    x = np.arange(1, n + 1)
    design = [[Fraction(int(v) ** k) for k in range(degree + 1)] for v in x]
    beta = [Fraction(int(rng.integers(-50, 50)), 8) for _ in range(degree + 1)]
    y_exact = [sum(a * b for a, b in zip(row, beta, strict=True)) for row in design]
    y = np.array([float(v) for v in y_exact]) + rng.normal(0, 3.0, n)
    y_rational = [Fraction(float(v)) for v in y]  # exactly the float64 values
    p = degree + 1
    gram = [[sum(row[i] * row[j] for row in design) for j in range(p)] for i in range(p)]
    moment = [sum(row[i] * t for row, t in zip(design, y_rational, strict=True)) for i in range(p)]
    inverse = _inverse(gram)
    coef = [sum(inverse[i][j] * moment[j] for j in range(p)) for i in range(p)]
    residuals = [
        t - sum(a * c for a, c in zip(row, coef, strict=True))
        for row, t in zip(design, y_rational, strict=True)
    ]
    rss = sum(r * r for r in residuals)
    sigma2 = rss / (n - p)
    se = [math.sqrt(sigma2 * inverse[i][i]) for i in range(p)]
    X = np.array([[float(row[k]) for k in range(1, p)] for row in design])
    return X, y, np.array([float(c) for c in coef]), np.array(se), float(rss)


def significant_digits(actual, expected) -> float:
    """The log relative error (LRE) NIST uses: the number of agreeing significant digits."""
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    relative = np.abs(actual - expected) / np.abs(expected)
    return float(np.min(-np.log10(np.maximum(relative, 1e-17))))
