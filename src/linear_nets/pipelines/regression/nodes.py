"""Nodes of the modular regression pipeline: pure functions from a table to a reported model.

The table each instance hands in holds the feature columns followed by the target, last; the
nodes take their column names from it, so one set of nodes serves boston and any user table.

Which version becomes ``@champion`` is decided on the training rows only: ``cv_rmse``, the
k-fold cross-validated RMSE (seeded folds, each fitted by the same engine call as the model).
The test rows, when ``split.test_size`` > 0, are scored once and reported, never used to choose;
``split.test_size: 0`` fits on every row (the full-data coefficient table) and has no test
metrics.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from torch import nn

from linear_nets.engine import ModelConfig, RankDeficientError, StreamedQR, train
from linear_nets.engine.config import RegressionTrainConfig, StrictModel
from linear_nets.engine.inference import INTERCEPT, ols_inference, unscale_coefficients
from linear_nets.engine.metrics import regression_metrics
from linear_nets.engine.models import model_from_state_dict
from linear_nets.engine.scaling import (
    Moments,
    apply_scaler,
    column_moments,
    scaler_from,
    standardize_columns,
)
from linear_nets.engine.solvers import SOLVERS
from linear_nets.frames import as_tensor
from linear_nets.reporting import plot_epoch_curves, training_title
from linear_nets.tracking.registry import RegistryConfig

if TYPE_CHECKING:
    from matplotlib.figure import Figure
else:  # matplotlib is imported inside the plotting nodes: it is slow to import
    Figure = Any

logger = logging.getLogger(__name__)

PLOTTED_POINTS = 20_000
"""The most test rows a scatter plot draws (the metrics use every row)."""


class SplitConfig(StrictModel):
    """``params:<instance>.split``: the share of rows held out for testing (0: fit on every
    row, no test metrics), the shuffle's seed, and the folds of the cross-validation on the
    training rows that ``cv_rmse`` (the champion metric) comes from."""

    test_size: float = Field(ge=0, lt=1, description="0 fits on every row")
    seed: int = Field(ge=0)
    cv_folds: int = Field(5, ge=2, description="folds of the cross-validated cv_rmse")


def parameter_path(namespace: str | None, block: str) -> str:
    """The full key of an instance's parameter block, as errors name it: ``boston.train``."""
    return f"{namespace}.{block}" if namespace else block


def _features(table: pd.DataFrame) -> list[str]:
    return [str(column) for column in table.columns[:-1]]


def _target(table: pd.DataFrame) -> str:
    return str(table.columns[-1])


def _arrays(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of a table (features, then the target) as float64 arrays: views of the
    table's block when it is one float64 block (as the pipeline's datasets load it), so a
    table of millions of rows is not copied to be read."""
    values = table.to_numpy("float64")
    return values[:, :-1], values[:, -1]


def _tensors(table: pd.DataFrame, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, ...]:
    """``(X, y)`` of a table as tensors: float64 shares the table's memory (read, never
    written), another ``dtype`` is a row-major copy (what minibatch gathers read fastest)."""
    return tuple(as_tensor(array, dtype) for array in _arrays(table))


def _take_rows(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``values[rows]`` (``rows`` ascending, so memory is read in order) gathered column by
    column into column-major memory, the layout :func:`column_moments` and
    :func:`standardize_columns` read contiguously."""
    taken = np.empty((values.shape[1], len(rows)))
    for j in range(values.shape[1]):
        np.take(values[:, j], rows, out=taken[j])
    return taken.T


def _dtype(training: RegressionTrainConfig) -> torch.dtype:
    """float64 for the solvers (lstsq, lbfgs), whose accuracy is the point; float32 for the
    gradient optimizers, as the tutorials train."""
    return torch.float64 if training.optimizer in SOLVERS else torch.float32


def split_train_test(table: pd.DataFrame, split: SplitConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Shuffle and split as scikit-learn's ``train_test_split(test_size, random_state=seed)``.

    ``RandomState(seed).permutation`` orders the rows; the first ceil(test_size · n) are the
    test set, the rest the training set, both in permutation order.

    Args:
        table: the feature columns, then the target.
        split: ``test_size`` and ``seed``.

    Returns:
        The training rows and the test rows, each keeping its original row number as index;
        with ``test_size`` 0, every row (shuffled) and no test rows.

    Raises:
        ValueError: when fewer than features + 2 training rows are left (least squares and
            its inference need one degree of freedom beyond the coefficients).
    """
    n = len(table)
    n_test = math.ceil(split.test_size * n)
    n_features = len(_features(table))
    if n - n_test < n_features + 2:
        raise ValueError(
            f"split.test_size={split.test_size} leaves {n - n_test} training rows out of {n} "
            f"for {n_features} features; least squares needs at least features + 2 = "
            f"{n_features + 2}"
        )
    order = np.random.RandomState(split.seed).permutation(n)
    return table.iloc[order[n_test:]], table.iloc[order[:n_test]]


def standardize_features(
    train_rows: pd.DataFrame, test_rows: pd.DataFrame
) -> tuple[dict[str, list], pd.DataFrame, pd.DataFrame]:
    """Fit the scaler on the training rows only and apply it to both splits.

    Args:
        train_rows: the training rows.
        test_rows: the test rows.

    Returns:
        The scaler (columns, mean, std), and the standardized training and test rows.

    Raises:
        ValueError: naming a feature that is constant in the training rows.
    """
    features = _features(train_rows)
    moments = column_moments([train_rows[column].to_numpy("float64") for column in features])
    _refuse_constant(features, moments, train_rows.to_numpy("float64"))
    scaler = scaler_from(moments, features)
    return scaler, apply_scaler(train_rows, scaler), apply_scaler(test_rows, scaler)


def _refuse_constant(features: list[str], moments: Moments, rows: np.ndarray) -> None:
    """Name the first feature that holds one value in every training row."""
    constant = np.flatnonzero(moments.constant)
    if len(constant):
        column = int(constant[0])
        raise ValueError(
            f"feature {features[column]!r} is constant ({float(rows[0, column]):g}) in all "
            f"{len(rows)} training rows: its std is 0, so it cannot be standardised "
            "nor told apart from the intercept; drop it"
        )


def train_linear_model(
    train_scaled: pd.DataFrame,
    scaler: dict[str, list],
    model: ModelConfig,
    training: RegressionTrainConfig,
    *,
    namespace: str | None = None,
) -> tuple[nn.Module, dict[str, list], dict[str, list[float]]]:
    """Fit a linear model to the standardized training rows with the shared engine.

    Args:
        train_scaled: the standardized training rows.
        scaler: the standardization they went through; handed on unchanged, so that the
            versioned copy next to the model is written only when training succeeds and the
            latest model and latest scaler always belong together.
        model: ``linear`` or ``scratch``.
        training: device, optimizer, learning rate, epochs, batch size, regression loss, seed.
        namespace: the instance (e.g. ``boston``), so that errors name ``boston.train.lr``.

    Returns:
        The trained model (on the CPU), its scaler, and its per-epoch ``train_loss`` history.
    """
    X, y = _tensors(train_scaled, _dtype(training))
    result = _fit(model, training, X, y, names=_features(train_scaled), namespace=namespace)
    return result.model.cpu(), scaler, {"train_loss": result.history["train_loss"]}


def _fit(
    model: ModelConfig,
    training: RegressionTrainConfig,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    names: list[str],
    namespace: str | None,
    what: str = "the training rows",
):
    """The engine's fit; a rank-deficient table is refused naming its collinear columns."""
    try:
        return train(model.kind, X, y, training, name=parameter_path(namespace, "train"))
    except RankDeficientError as error:
        raise error.named(names, f"{what} cannot be fitted: ") from None


def cross_validate(
    train_rows: pd.DataFrame,
    model: ModelConfig,
    training: RegressionTrainConfig,
    split: SplitConfig,
    *,
    namespace: str | None = None,
) -> dict[str, float]:
    """k-fold cross-validation on the training rows: the champion metric ``cv_rmse``.

    The rows are dealt into ``split.cv_folds`` folds by a permutation seeded with
    ``split.seed``; for each fold the scaler is fitted and the model trained (the same engine
    call and parameters as the run's model) on the other folds, then the fold is predicted.
    The test rows play no part.

    Args:
        train_rows: the training rows in original units.
        model: ``linear`` or ``scratch``.
        training: the run's training parameters.
        split: ``cv_folds`` and ``seed``.
        namespace: the instance, so that errors name ``boston.split.cv_folds``.

    Returns:
        ``cv_rmse`` and ``cv_mse`` over every out-of-fold prediction, and ``cv_folds``.

    Raises:
        ValueError: when a fold leaves too few rows to fit, naming ``split.cv_folds``.
    """
    n, k = len(train_rows), split.cv_folds
    features = _features(train_rows)
    key = f"{parameter_path(namespace, 'split')}.cv_folds"
    if n - math.ceil(n / k) < len(features) + 1:
        raise ValueError(
            f"{key}={k} leaves {n - math.ceil(n / k)} of the {n} training rows to fit in a fold "
            f"for {len(features)} features and the intercept; lower it (at least 2)"
        )
    values = train_rows.to_numpy("float64")  # (n, features + 1), a view of the table
    _check_full_rank(values, features)
    order = np.random.RandomState(split.seed).permutation(n)
    dtype = _dtype(training)
    squared = 0.0
    for number, held in enumerate(np.array_split(order, k), start=1):
        what = f"cross-validation fold {number} of {k} ({key})"
        fitted = np.ones(n, dtype=bool)
        fitted[held] = False
        # each fold standardised on its own training part, in place in its own copy
        fold = _take_rows(values, np.flatnonzero(fitted))
        moments = column_moments([fold[:, j] for j in range(len(features))])
        try:
            _refuse_constant(features, moments, fold)
        except ValueError as error:
            raise ValueError(f"{what}: {error}") from None
        standardize_columns(fold, moments.mean, moments.std)
        X, y = as_tensor(fold[:, :-1], dtype), as_tensor(fold[:, -1], dtype)
        fitted_model = _fit(model, training, X, y, names=features, namespace=namespace, what=what)
        net = fitted_model.model.cpu()
        del fold, X, y
        held_rows = _take_rows(values, np.flatnonzero(~fitted))
        standardize_columns(held_rows, moments.mean, moments.std)
        with torch.no_grad():
            X_held = as_tensor(held_rows[:, :-1], _dtype_of(net))
            residual = net(X_held).double() - as_tensor(held_rows[:, -1], torch.float64)
        squared += float((residual**2).sum())
    return {"cv_mse": squared / n, "cv_rmse": math.sqrt(squared / n), "cv_folds": float(k)}


def _check_full_rank(values: np.ndarray, features: list[str]) -> None:
    """Refuse rows whose columns are linearly dependent, naming them in the data's own units."""
    qr = StreamedQR(len(features))
    qr.add(as_tensor(values[:, :-1], torch.float64), as_tensor(values[:, -1], torch.float64))
    try:
        qr.check_full_rank(features)
    except RankDeficientError as error:
        raise error.named(features, "the training rows cannot be fitted: ") from None


def _dtype_of(net: nn.Module) -> torch.dtype:
    return next(net.parameters()).dtype


def evaluate_model(
    state_dict: dict[str, torch.Tensor],
    train_scaled: pd.DataFrame,
    test_scaled: pd.DataFrame,
    cross_validation: dict[str, float],
) -> tuple[dict[str, float], dict[str, Any], pd.DataFrame]:
    """Score the model against the exact least-squares optimum, with the cross-validated
    ``cv_rmse`` and, when there are test rows, the test metrics (reported, never chosen on).

    Args:
        state_dict: the trained model.
        train_scaled: the standardized training rows.
        test_scaled: the standardized test rows (none when ``split.test_size`` is 0).
        cross_validation: :func:`cross_validate`'s scores.

    Returns:
        The headline metrics for MLflow, a full evaluation report, and the test predictions.
    """
    net = model_from_state_dict(state_dict)
    dtype = _dtype_of(net)
    X_train, y_train = _tensors(train_scaled, torch.float64)
    X_test, y_test = _tensors(test_scaled, torch.float64)
    qr = StreamedQR(X_train.shape[1])
    qr.add(X_train, y_train)
    conditioning = qr.conditioning()
    w, b = qr.solve()
    with torch.no_grad():
        scores = {
            "train": regression_metrics(y_train, net(X_train.to(dtype))),
            "ols_train": regression_metrics(y_train, X_train @ w + b),
        }
        if len(y_test):
            scores["test"] = regression_metrics(y_test, net(X_test.to(dtype)))
            scores["ols_test"] = regression_metrics(y_test, X_test @ w + b)
        predicted = net(X_test.to(dtype)).double().numpy()
    metrics = {
        "train_mse": scores["train"]["mse"],
        "ols_train_mse": scores["ols_train"]["mse"],
        "cv_rmse": cross_validation["cv_rmse"],
        "cv_mse": cross_validation["cv_mse"],
        "condition_number": conditioning.condition_number,
    }
    if "test" in scores:
        metrics |= {
            "test_mse": scores["test"]["mse"],
            "test_rmse": scores["test"]["rmse"],
            "test_mae": scores["test"]["mae"],
            "test_r2": scores["test"]["r2"],
            "ols_test_mse": scores["ols_test"]["mse"],
        }
    report = {
        "target": _target(train_scaled),
        **scores,
        "cross_validation": cross_validation,
        "test_rows": len(y_test),
        "condition_number_standardized": conditioning.condition_number,
        "train_mse_gap_to_ols": metrics["train_mse"] / metrics["ols_train_mse"] - 1.0
        if metrics["ols_train_mse"] > 0
        else 0.0,
        "ols_coefficients_standardized": dict(zip(_features(train_scaled), w.tolist(), strict=True))
        | {INTERCEPT: float(b)},
    }
    predictions = pd.DataFrame(
        {"actual": y_test.numpy(), "predicted": predicted}, index=test_scaled.index
    )
    predictions["residual"] = predictions["actual"] - predictions["predicted"]
    return metrics, report, predictions


def tabulate_coefficients(
    state_dict: dict[str, torch.Tensor], scaler: dict[str, list], train_rows: pd.DataFrame
) -> pd.DataFrame:
    """Each coefficient in original units: the network's, and least squares with its inference.

    Args:
        state_dict: the trained model, fitted on standardized features.
        scaler: the standardization, to map the model's coefficients back.
        train_rows: the training rows in original units.

    Returns:
        One row per feature, then ``intercept``, with the columns ``feature, model, ols,
        std_error, t_value, p_value, ci_low, ci_high`` (95 % t-intervals).
    """
    w, b = model_from_state_dict(state_dict).coefficients()
    weights, intercept = unscale_coefficients(
        w.double().flatten().numpy(), float(b), scaler["mean"], scaler["std"]
    )
    features = _features(train_rows)
    X, y = _arrays(train_rows)
    try:
        inference = ols_inference(X, y, features)
    except RankDeficientError as error:
        raise error.named(features, "the training rows cannot be fitted: ") from None
    table = inference.table
    table.insert(0, "model", [*weights, intercept])
    logger.info(
        "Coefficients on %d rows (original units; ols with its standard error, %d residual "
        "df), residual standard error %.4g, R² %.4f, condition number %.3g before "
        "standardization:\n%s",
        len(train_rows),
        inference.df_resid,
        inference.residual_std_error,
        inference.r2,
        inference.condition_number,
        table[["model", "ols", "std_error", "t_value", "p_value"]].to_string(float_format="%.7g"),
    )
    return table.reset_index()


def plot_report(
    history: dict[str, list[float]],
    predictions: pd.DataFrame,
    evaluation: dict[str, Any],
    training: RegressionTrainConfig,
) -> tuple[Figure, Figure, Figure]:
    """Draw the loss curve, predicted against actual on the test set, and the residuals.

    Args:
        history: the per-epoch ``train_loss``.
        predictions: actual, predicted and residual per test row.
        evaluation: the evaluation report (target name, scores, least-squares optimum).
        training: the run's configuration, shown in the loss curve's title.

    Returns:
        Three matplotlib figures.
    """
    from matplotlib.figure import Figure

    target = evaluation["target"]
    if training.optimizer == "lstsq":
        loss_curve = _text_figure(
            "Exact least-squares solve (optimizer lstsq): no epochs, so no loss curve.\n"
            f"train MSE {history['train_loss'][-1]:.6g} is the optimum on "
            f"these rows;\ncondition number of the standardized design "
            f"{evaluation['condition_number_standardized']:.3g}",
            title="Training: lstsq (exact least squares, QR in float64)",
        )
    else:
        optimum = None
        if training.loss == "mse":  # least squares is the closed-form optimum of this loss only
            ols_mse = evaluation["ols_train"]["mse"]
            optimum = (ols_mse, f"least-squares optimum {ols_mse:.4g}")
        loss_curve = plot_epoch_curves(
            {f"train loss ({training.loss})": history["train_loss"]},
            title=f"Training loss: {training_title(training)}",
            ylabel="train loss",
            optimum=optimum,
        )
    if "test" not in evaluation:
        cv = evaluation["cross_validation"]
        note = (
            "split.test_size is 0: every row was fitted, there is no test set.\n"
            f"Cross-validated RMSE ({cv['cv_folds']:.0f} folds): {cv['cv_rmse']:.4g}"
        )
        return (
            loss_curve,
            _text_figure(note, title=f"Test set: predicted vs actual {target}"),
            _text_figure(note, title="Test residuals"),
        )

    shown, note = _plotted_rows(predictions)
    scatter = Figure(figsize=(5, 5), layout="constrained")
    ax = scatter.subplots()
    ax.scatter(shown["actual"], shown["predicted"], s=14, alpha=0.7)
    low = min(predictions["actual"].min(), predictions["predicted"].min())
    high = max(predictions["actual"].max(), predictions["predicted"].max())
    ax.plot([low, high], [low, high], color="grey", linestyle="--", label="perfect prediction")
    test = evaluation["test"]
    ax.text(
        0.04,
        0.96,
        f"R² = {test['r2']:.3f}\nRMSE = {test['rmse']:.3g}",
        transform=ax.transAxes,
        va="top",
        bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8},
    )
    ax.set(
        xlabel=f"actual {target}",
        ylabel=f"predicted {target}",
        title=f"Test set: predicted vs actual {target}{note}",
    )
    ax.legend(loc="lower right")

    residuals = Figure(figsize=(6, 4), layout="constrained")
    ax = residuals.subplots()
    ax.scatter(shown["predicted"], shown["residual"], s=14, alpha=0.7)
    ax.axhline(0.0, color="grey", linestyle="--")
    ax.set(
        xlabel=f"predicted {target}",
        ylabel="actual − predicted",
        title=f"Test residuals{note}",
    )
    return loss_curve, scatter, residuals


def _plotted_rows(predictions: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """At most :data:`PLOTTED_POINTS` test rows, drawn at random (seeded), and the title's
    note saying so: more points only hide each other and take seconds to render."""
    if len(predictions) <= PLOTTED_POINTS:
        return predictions, ""
    shown = predictions.sample(n=PLOTTED_POINTS, random_state=0)
    return shown, f"\n({PLOTTED_POINTS:,} of {len(predictions):,} rows, at random)"


def _text_figure(text: str, *, title: str) -> Figure:
    """A figure that says something in words where a plot would mislead."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4), layout="constrained")
    ax = figure.subplots()
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes)
    ax.set_axis_off()
    ax.set_title(title)
    return figure


def plot_coefficients(coefficients: pd.DataFrame, scaler: dict[str, list]) -> Figure:
    """Standardised coefficients with their 95 % intervals, so features can be compared.

    A coefficient times its feature's standard deviation is the change in the target for a
    one-standard-deviation change in the feature.

    Args:
        coefficients: the coefficient table in original units.
        scaler: the training rows' standard deviations.

    Returns:
        The figure.
    """
    from matplotlib.figure import Figure

    std = pd.Series(scaler["std"], index=scaler["columns"])
    rows = coefficients.set_index("feature").loc[list(std.index)]
    ols = rows["ols"] * std
    errors = np.vstack([ols - rows["ci_low"] * std, rows["ci_high"] * std - ols])
    positions = np.arange(len(rows))[::-1]

    figure = Figure(figsize=(6, 1.2 + 0.35 * len(rows)), layout="constrained")
    ax = figure.subplots()
    ax.errorbar(
        ols, positions, xerr=errors, fmt="o", color="C0", capsize=3, label="least squares, 95 % CI"
    )
    ax.scatter(rows["model"] * std, positions, marker="x", color="C3", zorder=3, label="model")
    ax.axvline(0.0, color="grey", linewidth=0.8)
    ax.set_yticks(positions, list(rows.index))
    ax.set(
        xlabel="change in the target per standard deviation of the feature",
        title="Standardised coefficients",
    )
    ax.legend(loc="best", fontsize="small")
    return figure


def package_pyfunc_model(
    scaler: dict[str, list],
    state_dict: dict[str, torch.Tensor],
    test_rows: pd.DataFrame,
    *,
    train_rows: pd.DataFrame,
    metrics: dict[str, float],
    history: dict[str, list[float]],
    training: RegressionTrainConfig,
    registry: RegistryConfig,
    namespace: str | None = None,
) -> Any:
    """Bundle the scaler and the model's coefficients as a models-from-code pyfunc model that
    takes raw feature rows, with the registration gate's verdict.

    Args:
        scaler: the standardisation the model was trained with.
        state_dict: the trained model.
        test_rows: raw test rows; the first five are the model's input example.
        train_rows: raw training rows, the input example when there are no test rows.
        metrics: the run's metrics (train and least-squares MSE, the champion metric).
        history: the per-epoch ``train_loss``.
        training: the training parameters (the loss decides the gate).
        registry: the gate's thresholds and the champion metric.
        namespace: the instance (e.g. ``boston``), so that the gate names
            ``boston.registry.max_gap_to_ols``.

    Returns:
        The ``PyfuncPackage`` that ``MlflowPyfuncModelDataset`` logs, registers and maybe
        promotes.
    """
    from linear_nets.serving.pyfunc import PyfuncPackage
    from linear_nets.tracking.registry import regression_gate

    weight, bias = model_from_state_dict(state_dict).coefficients()
    return PyfuncPackage(
        model_code="regression_model.py",
        weights={"weight": weight.clone(), "bias": bias.clone()},
        config=scaler,
        input_example=(test_rows if len(test_rows) else train_rows)[scaler["columns"]]
        .head(5)
        .reset_index(drop=True),
        output_type="double",
        candidate=regression_gate(
            metrics,
            history["train_loss"],
            training.loss,
            registry,
            optimizer=training.optimizer,
            name=parameter_path(namespace, "registry"),
        ),
    )
