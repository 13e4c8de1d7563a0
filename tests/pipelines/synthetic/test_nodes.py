"""The synthetic pipeline's nodes, called directly on the default parameters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from pydantic import ValidationError

from linear_nets.pipelines.synthetic.nodes import (
    SyntheticParams,
    compare_recovered_parameters,
    generate_synthetic_data,
    plot_synthetic_fit,
    plot_synthetic_loss_curve,
    split_synthetic_data,
    train_synthetic_model,
)

PARAMETERS = Path(__file__).resolve().parents[3] / "conf" / "base" / "parameters_synthetic.yml"
TARGET = 0.01


def _defaults(**changes: object) -> SyntheticParams:
    raw = yaml.safe_load(PARAMETERS.read_text())["synthetic"]
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = raw
        for key in parents:
            node = node[key]
        node[leaf] = value
    return SyntheticParams.model_validate(raw)


@pytest.fixture(scope="module")
def split() -> tuple[pd.DataFrame, pd.DataFrame]:
    params = _defaults()
    return split_synthetic_data(generate_synthetic_data(params), params)


def test_defaults_are_the_tutorial_ones() -> None:
    params = _defaults()
    assert (params.true_w, params.true_b, params.n, params.noise) == ((2.0, -3.4), 4.2, 1000, 0.01)


def test_generated_rows_follow_the_true_parameters() -> None:
    params = _defaults()
    data = generate_synthetic_data(params)
    assert list(data.columns) == ["x1", "x2", "y"]
    assert len(data) == 1000
    residual = data["y"] - (2.0 * data["x1"] - 3.4 * data["x2"] + 4.2)
    assert abs(residual.mean()) < 0.002
    assert residual.std() == pytest.approx(0.01, rel=0.1)
    pd.testing.assert_frame_equal(data, generate_synthetic_data(params))
    assert not data.equals(generate_synthetic_data(_defaults(seed=1)))


def test_split_holds_out_a_random_share_of_the_rows(
    split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train_rows, val = split
    assert (len(train_rows), len(val)) == (800, 200)
    data = generate_synthetic_data(_defaults())
    together = pd.concat([train_rows, val]).sort_values("y", ignore_index=True)
    pd.testing.assert_frame_equal(together, data.sort_values("y", ignore_index=True))
    assert not val["y"].equals(data["y"].iloc[:200].reset_index(drop=True))


@pytest.mark.parametrize("kind", ["scratch", "linear"])
def test_defaults_recover_the_true_parameters(
    kind: str, split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    params = _defaults(model__kind=kind)
    model, history, coefficients = train_synthetic_model(*split, params)
    metrics, report = compare_recovered_parameters(coefficients, split[0], params)
    assert metrics["w_max_abs_error"] <= TARGET
    assert metrics["b_abs_error"] <= TARGET
    assert metrics["lstsq_gap_w"] <= TARGET and metrics["lstsq_gap_b"] <= TARGET
    assert set(history) == {"train_loss", "val_loss"}
    assert len(history["val_loss"]) == params.train.epochs
    assert history["val_loss"][-1] < 2 * params.noise**2  # down to the noise floor
    w, b = model.coefficients()
    assert coefficients == {"w": w.tolist(), "b": float(b)}
    assert report["true"] == {"w": [2.0, -3.4], "b": 4.2}
    assert next(model.parameters()).device.type == "cpu"


def test_mae_as_in_the_first_tutorial(split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    params = _defaults(train__loss="mae", train__lr=0.01, train__epochs=20)
    _, history, coefficients = train_synthetic_model(*split, params)
    metrics, _ = compare_recovered_parameters(coefficients, split[0], params)
    assert metrics["w_max_abs_error"] <= TARGET
    assert metrics["b_abs_error"] <= TARGET
    assert history["train_loss"][-1] < history["train_loss"][0]


def test_comparison_against_truth_and_least_squares(
    split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    params = _defaults()
    metrics, report = compare_recovered_parameters({"w": [2.0, -3.4], "b": 4.2}, split[0], params)
    assert metrics["w_max_abs_error"] == 0.0 and metrics["b_abs_error"] == 0.0
    lstsq = report["least_squares"]
    assert metrics["lstsq_gap_b"] == pytest.approx(abs(lstsq["b"] - 4.2))
    metrics, _ = compare_recovered_parameters({"w": [2.5, -3.4], "b": 4.0}, split[0], params)
    assert metrics["w_max_abs_error"] == pytest.approx(0.5)
    assert metrics["b_abs_error"] == pytest.approx(0.2)


@pytest.mark.slow  # the first matplotlib import takes seconds
def test_plots(split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    params = _defaults()
    train_rows = split[0]
    fit_figure = plot_synthetic_fit(train_rows, {"w": [2.0, -3.4], "b": 4.2}, params)
    (axes,) = fit_figure.axes
    assert axes.get_xlabel() == "x1"
    assert len(axes.collections) == 1 and len(axes.lines) == 2  # the rows, fitted and true lines
    fitted, true = axes.lines  # the rows are drawn last, on top
    torch.testing.assert_close(
        torch.as_tensor(fitted.get_ydata()), torch.as_tensor(true.get_ydata())
    )
    assert true.get_linestyle() == "--" and fitted.get_linewidth() > true.get_linewidth()
    # the points are y less the other features' fitted part: they scatter by the noise alone
    points = axes.collections[0].get_offsets()
    expected = train_rows["y"] + 3.4 * train_rows["x2"]
    np.testing.assert_allclose(points[:, 1], expected.to_numpy(), rtol=1e-5, atol=1e-5)
    residual = points[:, 1] - (2.0 * points[:, 0] + 4.2)
    assert float(residual.std()) < 3 * params.noise
    assert "other features' fitted part removed" in axes.get_title()

    loss_figure = plot_synthetic_loss_curve(
        {"train_loss": [1.0, 0.1, 0.01], "val_loss": [0.5, 0.05, 0.02]}, params
    )
    (axes,) = loss_figure.axes
    assert [len(line.get_xdata()) for line in axes.lines[:2]] == [3, 3]
    assert (
        params.train.optimizer in axes.get_title() and f"lr {params.train.lr:g}" in axes.get_title()
    )
    floor = axes.lines[2]
    assert floor.get_linestyle() == "--" and floor.get_ydata()[0] == pytest.approx(params.noise**2)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"n": 1}, "n"),
        ({"noise": -0.1}, "noise"),
        ({"true_w": []}, "true_w"),
        ({"model__kind": "mlp"}, "model.kind"),
        ({"train__lr": 0}, "train.lr"),
        ({"train__loss": "cross_entropy"}, "not a regression loss"),
        ({"nosie": 0.1}, "nosie"),
    ],
)
def test_bad_parameters_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        _defaults(**changes)


def test_a_split_that_leaves_a_part_empty_is_refused() -> None:
    with pytest.raises(ValidationError, match="leaves 0 validation rows"):
        _defaults(n=2, val_fraction=0.1)
