"""What the terminal shows: short errors from `kedro run`, and no notices the user cannot act on."""

from __future__ import annotations

import errno
import logging
import os
import sys
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner
from kedro.framework.startup import bootstrap_project
from kedro.io import DatasetError
from kedro.validation.exceptions import ParameterValidationError

from linear_nets.cli import run
from linear_nets.engine import TrainConfig
from linear_nets.params_check import invalid_fields
from linear_nets.process import WARNING_FILTERS, set_up
from linear_nets.terminal import parameter_message, short_message
from tests.support import run_bounded


def test_invalid_fields_come_from_pydantics_own_errors_one_line_each():
    parameters = {"boston": {"train": {"epochs": 5, "lr": -1, "optimiser": "sgd"}}}
    typed = {"boston.train": TrainConfig}
    lines = invalid_fields(parameters, typed)
    assert lines == [
        "boston.train.lr: Input should be greater than 0 (got -1)",
        "boston.train.optimiser: Extra inputs are not permitted (got 'sgd')",
    ]
    assert parameter_message(lines) == (
        "invalid parameters:\n"
        "  boston.train.lr: Input should be greater than 0 (got -1)\n"
        "  boston.train.optimiser: Extra inputs are not permitted (got 'sgd')"
    )
    assert parameter_message(lines[:1]) == (
        "invalid parameter boston.train.lr: Input should be greater than 0 (got -1)"
    )


def test_an_unknown_field_of_a_typed_block_gets_the_nearest_known_key():
    parameters = {"boston": {"train": {"epochs": 5, "lr": 0.1, "optimiser": "sgd"}}}
    known = {"boston.train.optimiser": "boston.train.optimizer"}
    assert invalid_fields(parameters, {"boston.train": TrainConfig}, nearest=known.get) == [
        "boston.train.optimiser: Extra inputs are not permitted (got 'sgd'); "
        "did you mean 'boston.train.optimizer'?"
    ]
    # a parameter the configuration does not set is Kedro's to report, not ours
    assert invalid_fields({}, {"boston.train": TrainConfig}) == []


def test_short_message_is_the_first_line_and_never_empty():
    assert short_message(ValueError("\n  training diverged at epoch 2.\n  details")) == (
        "training diverged at epoch 2."
    )
    assert short_message(ValueError("")) == "ValueError"
    assert short_message(KeyError()) == "KeyError"


def test_short_message_names_the_operating_systems_reason_a_library_wrapped():
    full = OSError(errno.ENOSPC, "No space left on device")
    error = DatasetError("Failed while saving data to dataset 'boston.table'.")
    error.__cause__ = full
    assert short_message(error) == (
        "Failed while saving data to dataset 'boston.table'.: No space left on device"
    )


def test_set_up_drops_only_the_named_notices(caplog: pytest.LogCaptureFixture):
    set_up()
    set_up()  # idempotent
    assert len(logging.getLogger("mlflow.utils.environment").filters) == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for message, category, module in WARNING_FILTERS:
            warnings.filterwarnings("ignore", message=message, category=category, module=module)
        warnings.warn_explicit(
            "register_new_resolver() is deprecated", UserWarning, "x.py", 1, "kedro.config"
        )
        warnings.warn_explicit("something else", UserWarning, "x.py", 1, "kedro.config")
    assert [str(w.message) for w in caught] == ["something else"]

    with caplog.at_level(logging.INFO):
        env = logging.getLogger("mlflow.utils.environment")
        env.warning("Failed to resolve installed pip version. ``pip`` will be added")
        env.warning("Encountered an unexpected error while inferring pip requirements")
        logging.getLogger("py.warnings").warning(
            "%s", "x.py:1: UserWarning: \x1b[33mAdd type hints to the `predict` method\x1b[0m"
        )
    assert [record.getMessage() for record in caplog.records] == [
        "Encountered an unexpected error while inferring pip requirements"
    ]


@pytest.mark.slow
def test_kedro_run_prints_the_invalid_field_not_a_traceback(kedro_project: Path):
    bootstrap_project(kedro_project)
    result = CliRunner().invoke(
        run, ["--pipeline=boston", "--params", "boston.train.lr=-1"], catch_exceptions=False
    )
    assert result.exit_code == 1
    assert "invalid parameter boston.train.lr: Input should be greater than 0 (got -1)" in (
        result.output
    )
    assert "Traceback" not in result.output
    assert "--verbose" in result.output

    verbose = CliRunner().invoke(
        run, ["--pipeline=boston", "--params", "boston.train.lr=-1", "--verbose"]
    )
    assert isinstance(verbose.exception, ParameterValidationError)

    typo = CliRunner().invoke(run, ["--pipeline=boston", "--params", "boston.train.lrr=0.1"])
    assert typo.exit_code == 1
    assert (
        "invalid parameter boston.train.lrr: Extra inputs are not permitted (got 0.1); "
        "did you mean 'boston.train.lr'?"
    ) in typo.output


NOISE = (
    "register_new_resolver",  # OmegaConf's deprecation, from Kedro and kedro-mlflow
    "\x1b[33m",  # MLflow's type-hint warning, with raw colour codes
    "Add type hints",
    "Failed to resolve installed pip version",
    "--pipelines' instead",  # Kedro's note on `--pipeline`
    "Using synchronous mode",
    "Loading data from",
    "Registering new custom resolver",
)


@pytest.mark.slow
def test_python_dash_m_runs_quietly_with_short_errors_and_a_full_log(kedro_project: Path):
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    command = [sys.executable, "-m", "linear_nets", "--pipeline=boston"]
    returncode, stdout, stderr = run_bounded(
        [*command, "--params", "boston.train.epochs=50"], timeout_s=600, cwd=kedro_project, env=env
    )
    output = stdout + stderr
    assert returncode == 0, output
    assert "Running node: train_linear_model" in output
    assert [noise for noise in NOISE if noise in output] == []

    returncode, stdout, stderr = run_bounded(
        [*command, "--params", "boston.train.lr=-1"], timeout_s=300, cwd=kedro_project, env=env
    )
    output = stdout + stderr
    assert returncode == 1, output
    assert "invalid parameter boston.train.lr: Input should be greater than 0 (got -1)" in output
    assert "Traceback" not in output
    assert "ParameterValidationError" not in output
    assert [noise for noise in NOISE if noise in output] == []
    log = (kedro_project / "info.log").read_text()
    assert "Traceback" in log
    assert "ParameterValidationError" in log

    # a node that fails on its data: one message, no advice to repeat what would fail again
    bad = kedro_project / "data/01_raw/bad.csv"
    bad.write_text("a,b,price\n1,2,3\n1,x,4\n")
    returncode, stdout, stderr = run_bounded(
        [sys.executable, "-m", "linear_nets", "--pipeline=tabular", "--params",
         f"tabular.source.filepath={bad},tabular.target=price"],
        timeout_s=300, cwd=kedro_project, env=env,
    )  # fmt: skip
    output = stdout + stderr
    assert returncode == 1, output
    assert output.count("Error: ") == 1, output
    assert "No nodes ran" not in output
    assert "failed with error" not in output
    assert "(the traceback is in info.log" in output
