"""Classical least-squares inference: what each feature does, in the units it was measured in.

The gradient-trained networks find the least-squares coefficients; this module adds what a
statistics course reports beside them: standard errors, t statistics, two-sided p-values and
confidence intervals from the t distribution with n − p − 1 degrees of freedom, as R's
``summary(lm(y ~ .))`` and statsmodels' ``OLS`` print them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from linear_nets.engine.closed_form import StreamedQR

INTERCEPT = "intercept"
COEFFICIENT_COLUMNS = ("ols", "std_error", "t_value", "p_value", "ci_low", "ci_high")


@dataclass(frozen=True)
class OlsInference:
    """An ordinary least-squares fit with an intercept, and its classical inference.

    ``table`` has one row per feature, then ``intercept``, indexed by name, with the columns
    of :data:`COEFFICIENT_COLUMNS`.
    """

    table: pd.DataFrame
    sigma2: float
    """RSS / (n − p − 1), the unbiased estimate of the noise variance."""
    df_resid: int
    r2: float
    condition_number: float = float("nan")
    """Of the design [1 X] in the units given (2-norm, from the singular values of R)."""

    @property
    def residual_std_error(self) -> float:
        """sqrt(σ²): R's "residual standard error"."""
        return float(np.sqrt(self.sigma2))


def ols_inference(
    X: np.ndarray, y: np.ndarray, names: Sequence[str], level: float = 0.95
) -> OlsInference:
    """Fit y = X w + b by least squares (QR) and infer each coefficient's uncertainty.

    Args:
        X: the (n, p) features, in the units the coefficients should be read in.
        y: the n targets.
        names: the p feature names.
        level: the confidence level of the two-sided t-intervals.

    Returns:
        The coefficients with standard errors, t values, p-values and intervals.

    Raises:
        ValueError: with fewer than p + 2 rows (no degree of freedom left for σ²), or when
            some features are linear combinations of others (naming them: the coefficients
            are not unique).
    """
    import torch

    from linear_nets.engine.closed_form import StreamedQR
    from linear_nets.frames import as_tensor

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if X.ndim != 2 or len(names) != X.shape[1]:
        raise ValueError(f"{len(names)} names for {X.shape[-1]} feature columns")
    qr = StreamedQR(X.shape[1])
    qr.add(as_tensor(X, torch.float64), as_tensor(y, torch.float64))  # no copy: read only
    return inference_from_qr(qr, names, level)


def inference_from_qr(qr: StreamedQR, names: Sequence[str], level: float = 0.95) -> OlsInference:
    """Classical inference from the R factor of [1 X y] alone (in memory or streamed).

    The coefficients solve R₁₁ θ = z, RSS = ρ², and diag((XᵀX)⁻¹) is the squared row norms of
    R₁₁⁻¹, so neither XᵀX nor its inverse is ever formed.

    Raises:
        ValueError: as :func:`ols_inference`.
    """
    from scipy import special  # Student's t functions; scipy.stats costs seconds to import

    n, p = qr.rows, qr.n_features
    if len(names) != p:
        raise ValueError(f"{len(names)} names for {p} feature columns")
    df_resid = n - p - 1
    if df_resid < 1:
        raise ValueError(
            f"{n} rows for {p} features: least-squares inference needs at least "
            f"features + 2 = {p + 2} rows"
        )
    conditioning = qr.check_full_rank(names)
    theta = qr.theta().numpy()
    r_inv = qr.inverse_r().numpy()
    rss = qr.rss
    sigma2 = rss / df_resid
    std_error = np.sqrt(sigma2 * (r_inv**2).sum(axis=1))  # diag((XᵀX)⁻¹) = row norms of R⁻¹
    # the intercept comes first in R; the table lists it last, as R's summary(lm) does not
    order = [*range(1, p + 1), 0]
    coef, std_error = theta[order], std_error[order]
    t_value = coef / std_error
    p_value = 2.0 * special.stdtr(df_resid, -np.abs(t_value))  # = 2 stats.t.sf(|t|, df)
    half_width = special.stdtrit(df_resid, 0.5 + level / 2.0) * std_error  # stats.t.ppf
    table = pd.DataFrame(
        {
            "ols": coef,
            "std_error": std_error,
            "t_value": t_value,
            "p_value": p_value,
            "ci_low": coef - half_width,
            "ci_high": coef + half_width,
        },
        index=pd.Index([*names, INTERCEPT], name="feature"),
    )
    total = qr.tss
    r2 = 1.0 - rss / total if total > 0 else float("nan")
    return OlsInference(
        table=table,
        sigma2=sigma2,
        df_resid=df_resid,
        r2=r2,
        condition_number=conditioning.condition_number,
    )


def unscale_coefficients(
    w: np.ndarray, b: float, mean: Sequence[float], std: Sequence[float]
) -> tuple[np.ndarray, float]:
    """Map coefficients fitted on standardised features back to the original units.

    A model ŷ = Σ wⱼ (xⱼ − μⱼ) / σⱼ + b is the model ŷ = Σ (wⱼ / σⱼ) xⱼ + (b − Σ wⱼ μⱼ / σⱼ).

    Returns:
        The weights per original unit of each feature and the intercept.
    """
    w = np.asarray(w, dtype=np.float64)
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    weights = w / std
    return weights, float(b - weights @ mean)
