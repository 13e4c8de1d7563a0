"""Unit tests of the modular regression pipeline's nodes on small tables with a known truth."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from linear_nets.engine import ModelConfig, TrainingDivergedError
from linear_nets.engine.config import RegressionTrainConfig
from linear_nets.engine.models import model_from_state_dict
from linear_nets.pipelines.regression.nodes import (
    PLOTTED_POINTS,
    SplitConfig,
    cross_validate,
    evaluate_model,
    package_pyfunc_model,
    plot_coefficients,
    plot_report,
    split_train_test,
    standardize_features,
    tabulate_coefficients,
    train_linear_model,
)
from linear_nets.serving.regression import RegressionPredictor
from linear_nets.tracking.registry import RegistryConfig
from tests.support import COEFFICIENT_TABLE_COLUMNS, HEADLINE_METRICS

from .tables import NAMES, TRUE_B, TRUE_W, linear_table

DEFAULT_TRAIN = RegressionTrainConfig(device="cpu", optimizer="sgd", lr=0.1, epochs=500, seed=0)
LSTSQ = RegressionTrainConfig(device="cpu", optimizer="lstsq", lr=0.1, epochs=1)
SPLIT = SplitConfig(test_size=0.15, seed=73)
CV = {"cv_rmse": 0.5, "cv_mse": 0.25, "cv_folds": 5.0}


class TestSplit:
    def test_reproduces_sklearn_train_test_split(self):
        # Expected values from scikit-learn 1.9.1:
        # train_test_split(np.arange(506), test_size=0.15, random_state=73)
        table = pd.DataFrame({"row": np.arange(506), "y": np.zeros(506)})
        train, test = split_train_test(table, SplitConfig(test_size=0.15, seed=73))
        assert (len(train), len(test)) == (430, 76)
        assert test["row"].tolist()[:12] == [68, 293, 258, 402, 131, 104, 471, 45, 8, 456, 454, 160]
        assert train["row"].tolist()[:6] == [106, 307, 244, 83, 71, 53]
        assert int((test["row"].to_numpy() * np.arange(1, 77)).sum()) == 778036
        assert int((train["row"].to_numpy() * np.arange(1, 431)).sum()) == 24071752

    def test_test_set_is_ceil_of_share(self):
        table = pd.DataFrame({"row": np.arange(11), "y": np.zeros(11)})
        train, test = split_train_test(table, SplitConfig(test_size=0.15, seed=1))
        assert len(test) == math.ceil(0.15 * 11) == 2
        assert sorted(train["row"].tolist() + test["row"].tolist()) == list(range(11))

    def test_refuses_to_leave_too_few_training_rows(self):
        table = linear_table(n=10)  # 3 features: least squares needs 5 training rows
        with pytest.raises(
            ValueError,
            match=r"split\.test_size=0\.6 leaves 4 training rows out of 10 for 3 features; "
            r"least squares needs at least features \+ 2 = 5",
        ):
            split_train_test(table, SplitConfig(test_size=0.6, seed=0))


class TestStandardize:
    def test_scaler_uses_training_rows_only(self):
        table = linear_table(n=60)
        train, test = table.iloc[:40], table.iloc[40:]
        scaler, train_scaled, test_scaled = standardize_features(train, test)
        features = list(NAMES)
        assert scaler["columns"] == features
        np.testing.assert_allclose(scaler["mean"], train[features].mean().to_numpy())
        np.testing.assert_allclose(scaler["std"], train[features].std(ddof=0).to_numpy())
        np.testing.assert_allclose(train_scaled[features].mean().to_numpy(), 0, atol=1e-12)
        expected = (test[features] - train[features].mean()) / train[features].std(ddof=0)
        np.testing.assert_allclose(test_scaled[features].to_numpy(), expected.to_numpy())
        pd.testing.assert_series_equal(test_scaled["y"], test["y"])  # the target is not scaled

    def test_refuses_a_feature_constant_in_the_training_rows(self):
        table = linear_table(n=20)
        table["age"] = 7.0
        with pytest.raises(ValueError, match=r"feature 'age' is constant \(7\) in all 20"):
            standardize_features(table, table)


def _prepared(n: int = 200):
    train, test = split_train_test(linear_table(n), SplitConfig(test_size=0.15, seed=73))
    return (train, test, *standardize_features(train, test))


class TestTrainEvaluate:
    @pytest.mark.parametrize("kind", ["linear", "scratch"])
    def test_default_training_reaches_the_least_squares_optimum(self, kind):
        _, _, scaler, train, test = _prepared()
        model, model_scaler, history = train_linear_model(
            train, scaler, ModelConfig(kind=kind), DEFAULT_TRAIN
        )
        assert model_scaler is scaler
        assert len(history["train_loss"]) == 500
        metrics, report, predictions = evaluate_model(model.state_dict(), train, test, CV)
        assert set(metrics) == HEADLINE_METRICS
        # float32 training may land a hair below the float64 optimum
        assert metrics["train_mse"] <= metrics["ols_train_mse"] * 1.001
        assert metrics["train_mse"] >= metrics["ols_train_mse"] * (1 - 1e-5)
        assert metrics["test_rmse"] == pytest.approx(math.sqrt(metrics["test_mse"]))
        assert report["target"] == "y"
        assert set(report["ols_coefficients_standardized"]) == {*NAMES, "intercept"}
        assert report["train"]["r2"] > 0.99
        assert list(predictions.index) == list(test.index)
        np.testing.assert_allclose(
            predictions["actual"] - predictions["predicted"], predictions["residual"]
        )

    def test_same_parameters_give_the_same_numbers(self):
        _, _, scaler, train, _ = _prepared()
        config = RegressionTrainConfig(
            device="cpu", optimizer="adam", lr=0.05, epochs=30, batch_size=16, seed=5
        )
        first = train_linear_model(train, scaler, ModelConfig(kind="linear"), config)
        second = train_linear_model(train, scaler, ModelConfig(kind="linear"), config)
        assert first[2] == second[2]
        for a, b in zip(
            first[0].state_dict().values(), second[0].state_dict().values(), strict=True
        ):
            assert torch.equal(a, b)

    def test_exploding_loss_names_the_learning_rate(self):
        _, _, scaler, train, _ = _prepared()
        config = RegressionTrainConfig(device="cpu", optimizer="sgd", lr=5.0, epochs=200)
        with pytest.raises(TrainingDivergedError, match=r"train\.lr=5"):
            train_linear_model(train, scaler, ModelConfig(kind="linear"), config)

    def test_an_instance_error_names_its_namespace(self):
        _, _, scaler, train, _ = _prepared()
        config = RegressionTrainConfig(device="cpu", optimizer="sgd", lr=5.0, epochs=200)
        with pytest.raises(TrainingDivergedError, match=r"houses\.train\.lr=5"):
            train_linear_model(
                train, scaler, ModelConfig(kind="linear"), config, namespace="houses"
            )


@pytest.fixture(scope="module")
def trained():
    raw_train, raw_test, scaler, train, test = _prepared()
    model, _, history = train_linear_model(train, scaler, ModelConfig(), DEFAULT_TRAIN)
    cv = cross_validate(raw_train, ModelConfig(), DEFAULT_TRAIN, SPLIT)
    metrics, evaluation, predictions = evaluate_model(model.state_dict(), train, test, cv)
    return {
        "metrics": metrics,
        "raw_train": raw_train,
        "raw_test": raw_test,
        "scaler": scaler,
        "state_dict": model.state_dict(),
        "history": history,
        "evaluation": evaluation,
        "predictions": predictions,
    }


class TestCoefficients:
    def test_table_is_in_original_units_with_the_model_beside_least_squares(self, trained):
        table = tabulate_coefficients(
            trained["state_dict"], trained["scaler"], trained["raw_train"]
        )
        assert list(table.columns) == COEFFICIENT_TABLE_COLUMNS
        assert table["feature"].tolist() == [*NAMES, "intercept"]
        np.testing.assert_allclose(table["model"], table["ols"], rtol=1e-3, atol=1e-3)
        truth = np.array([*TRUE_W, TRUE_B])
        assert (np.abs(table["ols"] - truth) < 4 * table["std_error"]).all()
        np.testing.assert_allclose(
            table["ci_high"] - table["ols"], table["ols"] - table["ci_low"], rtol=1e-9
        )
        # the model's coefficients predict the raw rows as the standardised model does
        raw = trained["raw_train"]
        in_units = raw[list(NAMES)].to_numpy() @ table["model"].to_numpy()[:3]
        in_units += table["model"].iloc[3]
        standardised = (raw[list(NAMES)] - trained["scaler"]["mean"]) / trained["scaler"]["std"]
        with torch.no_grad():
            net = model_from_state_dict(trained["state_dict"])
            direct = net(torch.tensor(standardised.to_numpy(), dtype=torch.float32)).numpy()
        np.testing.assert_allclose(in_units, direct, rtol=1e-4)


class TestPlots:
    def test_loss_curve_shows_the_optimum_and_the_configuration(self, trained):
        loss_curve, scatter, residuals = plot_report(
            trained["history"], trained["predictions"], trained["evaluation"], DEFAULT_TRAIN
        )
        ax = loss_curve.axes[0]
        assert ax.get_title() == "Training loss: sgd, lr 0.1, full batch, 500 epochs"
        dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
        assert len(dashed) == 1
        assert dashed[0].get_ydata()[0] == pytest.approx(trained["evaluation"]["ols_train"]["mse"])
        texts = " ".join(text.get_text() for text in scatter.axes[0].texts)
        test = trained["evaluation"]["test"]
        assert f"R² = {test['r2']:.3f}" in texts
        assert f"RMSE = {test['rmse']:.3g}" in texts
        assert scatter.axes[0].get_xlabel() == "actual y"
        assert len(residuals.axes) == 1

    def test_many_test_rows_are_drawn_as_a_seeded_sample_that_the_title_announces(self, trained):
        rng = np.random.default_rng(0)
        actual = rng.standard_normal(PLOTTED_POINTS + 5_000)
        predictions = pd.DataFrame({"actual": actual, "predicted": actual + 0.1})
        predictions["residual"] = predictions["actual"] - predictions["predicted"]
        _, scatter, residuals = plot_report(
            trained["history"], predictions, trained["evaluation"], DEFAULT_TRAIN
        )
        for figure in (scatter, residuals):
            ax = figure.axes[0]
            assert len(ax.collections[0].get_offsets()) == PLOTTED_POINTS
            assert f"({PLOTTED_POINTS:,} of {len(predictions):,} rows, at random)" in ax.get_title()

    def test_no_optimum_line_for_a_loss_without_a_closed_form(self, trained):
        config = DEFAULT_TRAIN.model_copy(update={"loss": "mae", "batch_size": 32})
        loss_curve, _, _ = plot_report(
            trained["history"], trained["predictions"], trained["evaluation"], config
        )
        ax = loss_curve.axes[0]
        assert "batch 32" in ax.get_title()
        assert not [line for line in ax.get_lines() if line.get_linestyle() == "--"]

    def test_coefficient_plot_has_one_interval_per_feature(self, trained):
        table = tabulate_coefficients(
            trained["state_dict"], trained["scaler"], trained["raw_train"]
        )
        figure = plot_coefficients(table, trained["scaler"])
        ax = figure.axes[0]
        assert [label.get_text() for label in ax.get_yticklabels()] == list(NAMES)
        assert "standard deviation" in ax.get_xlabel()


def test_packaged_model_predicts_raw_rows(trained):
    metrics = trained["metrics"]
    package = package_pyfunc_model(
        trained["scaler"],
        trained["state_dict"],
        trained["raw_test"],
        train_rows=trained["raw_train"],
        metrics=metrics,
        history=trained["history"],
        training=DEFAULT_TRAIN,
        registry=RegistryConfig(),
    )
    assert list(package.input_example.columns) == list(NAMES)
    assert len(package.input_example) == 5
    assert package.candidate.refusal is None  # 500 epochs of SGD land within 1 % of OLS
    assert package.candidate.value == metrics["cv_rmse"]  # chosen on the training rows only
    refused = package_pyfunc_model(
        trained["scaler"],
        trained["state_dict"],
        trained["raw_test"],
        train_rows=trained["raw_train"],
        metrics={**metrics, "train_mse": 2 * metrics["ols_train_mse"]},
        history=trained["history"],
        training=DEFAULT_TRAIN,
        registry=RegistryConfig(),
        namespace="houses",
    )
    assert "houses.registry.max_gap_to_ols" in refused.candidate.refusal
    predictor = RegressionPredictor(package.config, package.weights)
    predicted = predictor.predict(trained["raw_test"][list(NAMES)])
    np.testing.assert_allclose(predicted, trained["predictions"]["predicted"], rtol=1e-5)


class TestExactFit:
    """``train.optimizer: lstsq``, ``split.test_size: 0`` and the cross-validated champion."""

    def test_lstsq_serves_the_least_squares_coefficients_in_float64(self):
        raw_train, _, scaler, train, test = _prepared()
        model, _, history = train_linear_model(train, scaler, ModelConfig(), LSTSQ)
        assert history["train_loss"] == [pytest.approx(history["train_loss"][0])]  # no epochs
        state = model.state_dict()
        assert all(value.dtype == torch.float64 for value in state.values())
        metrics, evaluation, _ = evaluate_model(state, train, test, CV)
        assert metrics["train_mse"] == pytest.approx(metrics["ols_train_mse"], rel=1e-12)
        table = tabulate_coefficients(state, scaler, raw_train)
        np.testing.assert_allclose(table["model"], table["ols"], rtol=1e-10)
        package = package_pyfunc_model(
            scaler, state, raw_train.iloc[:0], train_rows=raw_train, metrics=metrics,
            history=history, training=LSTSQ, registry=RegistryConfig(),
        )  # fmt: skip
        assert package.candidate.refusal is None
        assert package.candidate.gate.startswith("exact least-squares solve (no epochs)")
        assert len(package.input_example) == 5  # taken from the training rows: no test rows
        served = RegressionPredictor(package.config, package.weights)
        raw = raw_train[list(NAMES)]
        ols = raw.to_numpy() @ table["ols"].to_numpy()[:3] + table["ols"].iloc[3]
        np.testing.assert_allclose(served.predict(raw), ols, rtol=1e-10)
        loss_curve, _, _ = plot_report(history, _, evaluation, LSTSQ)
        text = " ".join(t.get_text() for t in loss_curve.axes[0].texts)
        assert "no epochs" in text and "condition number" in text
        assert not loss_curve.axes[0].get_lines()  # no one-point curve

    def test_test_size_zero_fits_every_row_and_reports_no_test_metrics(self):
        table = linear_table(n=80)
        train, test = split_train_test(table, SplitConfig(test_size=0, seed=3))
        assert len(train) == 80 and len(test) == 0
        assert sorted(train.index) == list(range(80))
        scaler, train_scaled, test_scaled = standardize_features(train, test)
        model, _, history = train_linear_model(train_scaled, scaler, ModelConfig(), LSTSQ)
        cv = cross_validate(train, ModelConfig(), LSTSQ, SplitConfig(test_size=0, seed=3))
        metrics, evaluation, predictions = evaluate_model(
            model.state_dict(), train_scaled, test_scaled, cv
        )
        assert not [key for key in metrics if key.startswith(("test_", "ols_test"))]
        assert metrics["cv_rmse"] == cv["cv_rmse"] and predictions.empty
        _, scatter, residuals = plot_report(history, predictions, evaluation, LSTSQ)
        for figure in (scatter, residuals):
            words = " ".join(t.get_text() for t in figure.axes[0].texts)
            assert "test_size is 0" in words and "Cross-validated RMSE" in words

    def test_cross_validation_is_out_of_fold_seeded_and_uses_no_test_row(self):
        table = linear_table(n=60)
        split = SplitConfig(test_size=0.2, seed=4, cv_folds=4)
        scores = cross_validate(table, ModelConfig(), LSTSQ, split)
        # by hand: the same seeded folds, least squares on the other three, the fold predicted
        order = np.random.RandomState(4).permutation(60)
        design = np.column_stack([np.ones(60), table[list(NAMES)].to_numpy()])
        y = table["y"].to_numpy()
        squared = 0.0
        for held in np.array_split(order, 4):
            kept = np.setdiff1d(order, held)
            theta = np.linalg.lstsq(design[kept], y[kept], rcond=None)[0]
            squared += float(((design[held] @ theta - y[held]) ** 2).sum())
        assert scores["cv_rmse"] == pytest.approx(math.sqrt(squared / 60), rel=1e-9)
        assert scores["cv_folds"] == 4
        assert cross_validate(table, ModelConfig(), LSTSQ, split) == scores
        gradient = cross_validate(table, ModelConfig(), DEFAULT_TRAIN, split)
        assert gradient["cv_rmse"] == pytest.approx(scores["cv_rmse"], rel=1e-2)

    def test_too_many_folds_for_the_rows_names_the_parameter(self):
        split = SplitConfig(test_size=0.2, seed=0, cv_folds=2)
        with pytest.raises(ValueError, match=r"houses\.split\.cv_folds=2 leaves 3 of the 6"):
            cross_validate(linear_table(n=6), ModelConfig(), LSTSQ, split, namespace="houses")

    def test_a_rank_deficient_table_names_its_collinear_columns(self):
        table = linear_table(n=50)
        table.insert(3, "twice_size", 2 * table["size"] - table["age"])
        train, test = split_train_test(table, SplitConfig(test_size=0.2, seed=0))
        scaler, train_scaled, _ = standardize_features(train, test)
        with pytest.raises(ValueError, match=r"size, age, twice_size are collinear"):
            train_linear_model(train_scaled, scaler, ModelConfig(), LSTSQ)
        gradient_model = train_linear_model(train_scaled, scaler, ModelConfig(), DEFAULT_TRAIN)[0]
        with pytest.raises(ValueError, match=r"size, age, twice_size are collinear"):
            tabulate_coefficients(gradient_model.state_dict(), scaler, train)

    @pytest.mark.slow  # torch.optim.LBFGS imports torch._dynamo: seconds
    def test_lbfgs_fits_huber_and_converges(self):
        _, _, scaler, train, test = _prepared()
        huber = RegressionTrainConfig(
            device="cpu", optimizer="lbfgs", lr=1, epochs=10, loss="huber"
        )
        model, _, history = train_linear_model(train, scaler, ModelConfig(), huber)
        assert len(history["train_loss"]) == 10
        assert history["train_loss"][-1] == pytest.approx(history["train_loss"][-2], rel=1e-9)
        metrics, _, _ = evaluate_model(model.state_dict(), train, test, CV)
        candidate = package_pyfunc_model(
            scaler, model.state_dict(), test, train_rows=train, metrics=metrics,
            history=history, training=huber, registry=RegistryConfig(),
        ).candidate  # fmt: skip
        assert candidate.refusal is None, candidate.refusal


def test_cross_validation_names_collinear_columns_in_their_own_units():
    table = linear_table(n=50)
    table.insert(3, "combined", 2 * table["size"] - table["age"] + 1)
    with pytest.raises(
        ValueError,
        match=r"^the training rows cannot be fitted: .*intercept, size, age, combined are "
        r"collinear: 0\.5·intercept \+ 1·size - 0\.5·age - 0\.5·combined ≈ 0",
    ):
        cross_validate(table, ModelConfig(), LSTSQ, SplitConfig(test_size=0, seed=0))
