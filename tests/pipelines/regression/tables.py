"""Small tables with a known linear truth for the regression tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

TRUE_W = (2.0, -3.0, 0.5)
TRUE_B = 10.0
NAMES = ("size", "distance", "age")


def linear_table(n: int = 200, seed: int = 0, noise: float = 0.5) -> pd.DataFrame:
    """``n`` rows of three features on different scales and y = X w + b + N(0, noise²),
    the target last, as the regression pipeline expects."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.uniform(20, 200, n), rng.uniform(0.1, 30, n), rng.uniform(0, 100, n)])
    y = X @ np.array(TRUE_W) + TRUE_B + rng.normal(0, noise, n)
    table = pd.DataFrame(X, columns=list(NAMES))
    table["y"] = y
    return table
