"""Unit tests of the boston nodes on small generated StatLib files."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
import torch

from linear_nets.engine import ModelConfig, TrainConfig, TrainingDivergedError
from linear_nets.pipelines.boston.nodes import (
    COLUMNS,
    FEATURES,
    StatLibFormatError,
    evaluate_model,
    parse_statlib,
    plot_report,
    split_data,
    standardize_features,
    train_model,
)
from linear_nets.pipelines.boston.params import SplitConfig

from .conftest import HEADER, HEADLINE_METRICS, linear_rows, statlib_text

DEFAULT_TRAIN = TrainConfig(device="cpu", optimizer="sgd", lr=0.1, epochs=500, seed=0)


class TestParse:
    def test_parses_records_into_named_columns(self, small_rows):
        table = parse_statlib(statlib_text(small_rows).encode())
        assert list(table.columns) == list(COLUMNS)
        assert table.shape == (60, 14)
        np.testing.assert_allclose(table.to_numpy(), small_rows, rtol=1e-6)

    def test_accepts_crlf_and_trailing_blank_lines(self, small_rows):
        text = statlib_text(small_rows, newline="\r\n") + "\r\n\r\n  \r\n"
        table = parse_statlib(text.encode())
        assert table.shape == (60, 14)

    @pytest.mark.parametrize(
        ("mutate", "message"),
        [
            (
                lambda lines: lines.__setitem__(24, lines[24] + " 1.0"),
                "line 25: expected 11 values",
            ),
            (
                lambda lines: lines.__setitem__(25, "1 2"),
                "line 26: expected 3 values (B, LSTAT, MEDV)",
            ),
            (
                lambda lines: lines.__setitem__(
                    22, lines[22].replace(lines[22].split()[9], "abc", 1)
                ),
                "line 23: TAX value 'abc' is not a number",
            ),
            (
                lambda lines: lines.__setitem__(27, "1 2 nan"),
                "line 28: MEDV value 'nan' is not finite",
            ),
            (lambda lines: lines.pop(), "the last record is cut short"),
            (lambda lines: lines.__setitem__(30, ""), "line 31: expected 11 values"),
        ],
        ids=[
            "too-many-values",
            "too-few-values",
            "non-numeric",
            "nan",
            "cut-short",
            "blank-inside",
        ],
    )
    def test_rejects_malformed_lines_naming_them(self, small_rows, mutate, message):
        lines = statlib_text(small_rows).splitlines()
        mutate(lines)
        with pytest.raises(StatLibFormatError, match=re.escape(message)):
            parse_statlib(("\n".join(lines) + "\n").encode())

    def test_rejects_a_file_without_records(self):
        with pytest.raises(StatLibFormatError, match="no records"):
            parse_statlib(("\n".join(HEADER) + "\n\n").encode())

    def test_rejects_non_ascii_naming_the_line(self, small_rows):
        lines = statlib_text(small_rows).splitlines()
        lines[29] = lines[29] + " \u00e9"
        raw = ("\n".join(lines) + "\n").encode("utf-8")
        with pytest.raises(StatLibFormatError, match="line 30: non-ASCII"):
            parse_statlib(raw)


class TestSplit:
    def test_reproduces_sklearn_train_test_split(self):
        # Expected values from scikit-learn 1.9.1:
        # train_test_split(np.arange(506), test_size=0.15, random_state=73)
        table = pd.DataFrame({"row": np.arange(506)})
        train, test = split_data(table, SplitConfig(test_size=0.15, seed=73))
        assert (len(train), len(test)) == (430, 76)
        assert test["row"].tolist()[:12] == [68, 293, 258, 402, 131, 104, 471, 45, 8, 456, 454, 160]
        assert train["row"].tolist()[:12] == [
            106,
            307,
            244,
            83,
            71,
            53,
            198,
            483,
            153,
            453,
            77,
            128,
        ]
        weights_test = np.arange(1, 77)
        weights_train = np.arange(1, 431)
        assert int((test["row"].to_numpy() * weights_test).sum()) == 778036
        assert int((train["row"].to_numpy() * weights_train).sum()) == 24071752

    def test_test_set_is_ceil_of_share(self):
        table = pd.DataFrame({"row": np.arange(11)})
        train, test = split_data(table, SplitConfig(test_size=0.15, seed=1))
        assert len(test) == math.ceil(0.15 * 11) == 2
        assert sorted(train["row"].tolist() + test["row"].tolist()) == list(range(11))

    def test_refuses_to_leave_no_training_rows(self):
        table = pd.DataFrame({"row": np.arange(3)})
        with pytest.raises(ValueError, match="boston.split.test_size=0.9 leaves no training rows"):
            split_data(table, SplitConfig(test_size=0.9, seed=0))


class TestStandardize:
    def test_scaler_uses_training_rows_only(self, small_rows):
        table = parse_statlib(statlib_text(small_rows).encode())
        train, test = table.iloc[:40], table.iloc[40:]
        scaler, train_scaled, test_scaled = standardize_features(train, test)
        np.testing.assert_allclose(scaler["mean"], train[list(FEATURES)].mean().to_numpy())
        np.testing.assert_allclose(scaler["std"], train[list(FEATURES)].std(ddof=0).to_numpy())
        np.testing.assert_allclose(train_scaled[list(FEATURES)].mean().to_numpy(), 0, atol=1e-12)
        assert not np.allclose(test_scaled[list(FEATURES)].mean().to_numpy(), 0, atol=1e-3)
        expected = (test[list(FEATURES)] - train[list(FEATURES)].mean()) / train[
            list(FEATURES)
        ].std(ddof=0)
        np.testing.assert_allclose(test_scaled[list(FEATURES)].to_numpy(), expected.to_numpy())
        pd.testing.assert_series_equal(test_scaled["MEDV"], test["MEDV"])


def _prepared(n: int = 200):
    table = parse_statlib(statlib_text(linear_rows(n)).encode())
    train, test = split_data(table, SplitConfig(test_size=0.15, seed=73))
    return standardize_features(train, test)


class TestTrainEvaluate:
    @pytest.mark.parametrize("kind", ["linear", "scratch"])
    def test_default_training_reaches_the_least_squares_optimum(self, kind):
        scaler, train, test = _prepared()
        model, _, history = train_model(train, scaler, ModelConfig(kind=kind), DEFAULT_TRAIN)
        assert len(history["train_loss"]) == 500
        assert history["train_loss"][-1] < history["train_loss"][0]
        metrics, report, predictions = evaluate_model(
            model.state_dict(), ModelConfig(kind=kind), train, test
        )
        assert metrics["train_mse"] <= metrics["ols_train_mse"] * 1.001
        assert metrics["train_mse"] >= metrics["ols_train_mse"] * (1 - 1e-6)
        assert set(metrics) == HEADLINE_METRICS
        assert metrics["test_rmse"] == pytest.approx(math.sqrt(metrics["test_mse"]))
        assert report["train"]["r2"] > 0.9
        assert len(predictions) == len(test)
        np.testing.assert_allclose(
            predictions["actual"] - predictions["predicted"], predictions["residual"]
        )

    def test_same_parameters_give_the_same_numbers(self):
        scaler, train, _ = _prepared()
        config = TrainConfig(
            device="cpu", optimizer="adam", lr=0.05, epochs=30, batch_size=16, seed=5
        )
        first = train_model(train, scaler, ModelConfig(kind="linear"), config)
        assert first[1] is scaler
        second = train_model(train, scaler, ModelConfig(kind="linear"), config)
        assert first[2] == second[2]
        for a, b in zip(
            first[0].state_dict().values(), second[0].state_dict().values(), strict=True
        ):
            assert torch.equal(a, b)

    def test_exploding_loss_names_the_learning_rate(self):
        scaler, train, _ = _prepared()
        config = TrainConfig(device="cpu", optimizer="sgd", lr=5.0, epochs=200)
        with pytest.raises(TrainingDivergedError, match=r"boston\.train\.lr=5"):
            train_model(train, scaler, ModelConfig(kind="linear"), config)

    def test_report_draws_three_figures(self):
        scaler, train, test = _prepared()
        model, _, history = train_model(train, scaler, ModelConfig(kind="linear"), DEFAULT_TRAIN)
        _, _, predictions = evaluate_model(
            model.state_dict(), ModelConfig(kind="linear"), train, test
        )
        figures = plot_report(history, predictions)
        assert [len(fig.axes) for fig in figures] == [1, 1, 1]
        assert figures[1].axes[0].get_xlabel().startswith("actual MEDV")
