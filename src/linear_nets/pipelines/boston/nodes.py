"""Nodes of the boston pipeline: pure functions from catalog inputs and parameters to outputs."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from linear_nets.engine import ModelConfig, TrainConfig, least_squares, train
from linear_nets.engine.metrics import regression_metrics
from linear_nets.engine.models import build_model
from linear_nets.engine.scaling import apply_scaler, fit_scaler
from linear_nets.pipelines.boston.params import SourceConfig, SplitConfig
from linear_nets.serving import PyfuncRegressionModel

FEATURES = (
    "CRIM",
    "ZN",
    "INDUS",
    "CHAS",
    "NOX",
    "RM",
    "AGE",
    "DIS",
    "RAD",
    "TAX",
    "PTRATIO",
    "B",
    "LSTAT",
)
TARGET = "MEDV"
COLUMNS = (*FEATURES, TARGET)
HEADER_LINES = 22
FIRST_LINE_VALUES = 11
"""A StatLib record spans two lines: CRIM … PTRATIO, then B, LSTAT, MEDV."""


class StatLibFormatError(ValueError):
    """The raw file does not follow the StatLib Boston format."""


def download_data(fetch: Callable[[str, str | None, float], bytes], source: SourceConfig) -> bytes:
    """Get the StatLib file, from the local copy when it matches the pin, else over the network.

    Args:
        fetch: the ``boston_source`` dataset's fetcher (local copy, download, verification).
        source: URL, sha256 pin (None disables it) and timeout.

    Returns:
        The file's bytes, verified against the pin.
    """
    return fetch(source.url, source.sha256, source.timeout_s)


def parse_statlib(raw: bytes) -> pd.DataFrame:
    """Parse the StatLib text: a 22-line description, then one record per two lines.

    CRLF line ends and trailing blank lines are accepted; anything else that deviates raises
    an error naming the line.

    Returns:
        A float64 table with the 13 feature columns and MEDV, one row per record.

    Raises:
        StatLibFormatError: naming the line and what is wrong with it.
    """
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise StatLibFormatError(f"line {line}: non-ASCII byte {raw[exc.start]:#04x}") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    body = lines[HEADER_LINES:]
    if not body:
        raise StatLibFormatError(
            f"no records: all {len(lines)} lines lie within the {HEADER_LINES}-line header"
        )
    rows = []
    for start in range(0, len(body), 2):
        first_no = HEADER_LINES + start + 1
        if start + 1 >= len(body):
            raise StatLibFormatError(
                f"line {first_no}: the last record is cut short; its second line "
                f"(B, LSTAT, MEDV) is missing"
            )
        first = _values(body[start], first_no, FEATURES[:FIRST_LINE_VALUES])
        second = _values(body[start + 1], first_no + 1, COLUMNS[FIRST_LINE_VALUES:])
        rows.append(first + second)
    return pd.DataFrame(rows, columns=list(COLUMNS), dtype="float64")


def _values(line: str, number: int, names: tuple[str, ...]) -> list[float]:
    tokens = line.split()
    if len(tokens) != len(names):
        raise StatLibFormatError(
            f"line {number}: expected {len(names)} values ({', '.join(names)}), "
            f"found {len(tokens)}: {line.strip()!r}"
        )
    values = []
    for name, token in zip(names, tokens, strict=True):
        try:
            value = float(token)
        except ValueError:
            raise StatLibFormatError(
                f"line {number}: {name} value {token!r} is not a number"
            ) from None
        if not math.isfinite(value):
            raise StatLibFormatError(f"line {number}: {name} value {token!r} is not finite")
        values.append(value)
    return values


def split_data(table: pd.DataFrame, split: SplitConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Shuffle and split as scikit-learn's ``train_test_split(test_size, random_state=seed)``.

    ``RandomState(seed).permutation`` orders the rows; the first ceil(test_size · n) are
    the test set, the rest the training set, both in permutation order.

    Returns:
        The training rows and the test rows, each keeping its original row number as index.
    """
    n = len(table)
    n_test = math.ceil(split.test_size * n)
    if n_test >= n:
        raise ValueError(
            f"boston.split.test_size={split.test_size} leaves no training rows out of {n}"
        )
    order = np.random.RandomState(split.seed).permutation(n)
    return table.iloc[order[n_test:]], table.iloc[order[:n_test]]


def standardize_features(
    train_rows: pd.DataFrame, test_rows: pd.DataFrame
) -> tuple[dict[str, list], pd.DataFrame, pd.DataFrame]:
    """Fit the scaler on the training rows only and apply it to both splits.

    Returns:
        The scaler (columns, mean, std), and the standardized training and test rows.
    """
    scaler = fit_scaler(train_rows, FEATURES)
    return scaler, apply_scaler(train_rows, scaler), apply_scaler(test_rows, scaler)


def _tensors(table: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
    X = torch.tensor(table[list(FEATURES)].to_numpy(), dtype=torch.float32)
    y = torch.tensor(table[TARGET].to_numpy(), dtype=torch.float32)
    return X, y


def train_model(
    train_rows: pd.DataFrame, scaler: dict[str, list], model: ModelConfig, training: TrainConfig
) -> tuple[nn.Module, dict[str, list], dict[str, list[float]]]:
    """Fit a linear model to the standardized training rows with the shared engine.

    Args:
        train_rows: the standardized training rows.
        scaler: the standardization they went through; handed on unchanged, so that the
            versioned copy next to the model is written only when training succeeds and the
            latest model and latest scaler always belong together.
        model: ``linear`` or ``scratch``.
        training: device, optimizer, learning rate, epochs, batch size, loss and seed.

    Returns:
        The trained model (on the CPU), its scaler, and its per-epoch ``train_loss`` history.
    """
    X, y = _tensors(train_rows)
    result = train(model.kind, X, y, training, name="boston.train")
    return result.model.cpu(), scaler, {"train_loss": result.history["train_loss"]}


def evaluate_model(
    state_dict: dict[str, torch.Tensor],
    model: ModelConfig,
    train_rows: pd.DataFrame,
    test_rows: pd.DataFrame,
) -> tuple[dict[str, float], dict[str, Any], pd.DataFrame]:
    """Score the model on both splits against the closed-form least-squares optimum.

    Returns:
        The headline metrics for MLflow, a full evaluation report, and the test predictions.
    """
    net = build_model(model.kind, len(FEATURES))
    net.load_state_dict(state_dict)
    net.eval()
    X_train, y_train = _tensors(train_rows)
    X_test, y_test = _tensors(test_rows)
    w, b = least_squares(X_train, y_train)
    with torch.no_grad():
        scores = {
            "train": regression_metrics(y_train, net(X_train)),
            "test": regression_metrics(y_test, net(X_test)),
            "ols_train": regression_metrics(y_train, X_train.double() @ w + b),
            "ols_test": regression_metrics(y_test, X_test.double() @ w + b),
        }
        predicted = net(X_test).numpy().astype("float64")
    metrics = {
        "train_mse": scores["train"]["mse"],
        "test_mse": scores["test"]["mse"],
        "test_rmse": scores["test"]["rmse"],
        "test_mae": scores["test"]["mae"],
        "test_r2": scores["test"]["r2"],
        "ols_train_mse": scores["ols_train"]["mse"],
        "ols_test_mse": scores["ols_test"]["mse"],
    }
    report = {
        **scores,
        "train_mse_gap_to_ols": metrics["train_mse"] / metrics["ols_train_mse"] - 1.0,
        "ols_coefficients": dict(zip(FEATURES, w.tolist(), strict=True)) | {"intercept": float(b)},
    }
    predictions = pd.DataFrame(
        {"actual": y_test.double().numpy(), "predicted": predicted}, index=test_rows.index
    )
    predictions["residual"] = predictions["actual"] - predictions["predicted"]
    return metrics, report, predictions


def package_model(
    scaler: dict[str, list], state_dict: dict[str, torch.Tensor], test_rows: pd.DataFrame
) -> PyfuncRegressionModel:
    """Bundle the scaler and the model as an MLflow pyfunc model that takes raw feature rows.

    Returns:
        The pyfunc model, with five raw test rows as its input example.
    """
    example = test_rows[list(FEATURES)].head(5).reset_index(drop=True)
    return PyfuncRegressionModel(scaler, state_dict, example)


def plot_report(history: dict[str, list[float]], predictions: pd.DataFrame) -> tuple[Any, Any, Any]:
    """Draw the loss curve, predicted against actual on the test set, and the residuals.

    Returns:
        Three matplotlib figures.
    """
    from matplotlib.figure import Figure

    loss_curve = Figure(figsize=(6, 4), layout="constrained")
    ax = loss_curve.subplots()
    epochs = range(1, len(history["train_loss"]) + 1)
    ax.plot(epochs, history["train_loss"])
    ax.set(xlabel="epoch", ylabel="train loss", yscale="log", title="Boston: training loss")

    scatter = Figure(figsize=(5, 5), layout="constrained")
    ax = scatter.subplots()
    ax.scatter(predictions["actual"], predictions["predicted"], s=14, alpha=0.7)
    low = min(predictions["actual"].min(), predictions["predicted"].min())
    high = max(predictions["actual"].max(), predictions["predicted"].max())
    ax.plot([low, high], [low, high], color="grey", linestyle="--", label="perfect prediction")
    ax.set(
        xlabel="actual MEDV ($1000s)",
        ylabel="predicted MEDV ($1000s)",
        title="Boston: test set, predicted vs actual",
    )
    ax.legend()

    residuals = Figure(figsize=(6, 4), layout="constrained")
    ax = residuals.subplots()
    ax.scatter(predictions["predicted"], predictions["residual"], s=14, alpha=0.7)
    ax.axhline(0.0, color="grey", linestyle="--")
    ax.set(
        xlabel="predicted MEDV ($1000s)",
        ylabel="actual − predicted",
        title="Boston: test residuals",
    )
    return loss_curve, scatter, residuals
