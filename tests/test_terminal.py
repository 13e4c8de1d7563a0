"""What the terminal shows: short errors from `kedro run`, and no notices the user cannot act on."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner
from kedro.framework.startup import bootstrap_project
from kedro.validation.exceptions import ParameterValidationError

from linear_nets.cli import run
from linear_nets.terminal import install_filters, short_message, stderr_notes_to_debug_log
from tests.support import run_bounded

KEDRO_VALIDATION = (
    "Parameter validation failed:\n"
    "- Parameter 'boston.train': Failed to instantiate TrainConfig for parameter "
    "'boston.train': 2 validation errors for TrainConfig\n"
    "lr\n"
    "  Input should be greater than 0 [type=greater_than, input_value=-1, input_type=int]\n"
    "    For further information visit https://errors.pydantic.dev/2.14/v/greater_than\n"
    "optimiser\n"
    "  Extra inputs are not permitted [type=extra_forbidden, input_value='sgd', "
    "input_type=str]\n"
    "    For further information visit https://errors.pydantic.dev/2.14/v/extra_forbidden\n"
    "- Parameter 'boston.split': value is None but type is not Optional"
)


def test_short_message_names_each_invalid_field_on_one_line():
    assert short_message(ParameterValidationError(KEDRO_VALIDATION)) == (
        "invalid parameters:\n"
        "  boston.train.lr: Input should be greater than 0 (got -1)\n"
        "  boston.train.optimiser: Extra inputs are not permitted (got 'sgd')\n"
        "  boston.split: value is None but type is not Optional"
    )
    one = KEDRO_VALIDATION.split("optimiser", maxsplit=1)[0]
    assert short_message(ParameterValidationError(one)) == (
        "invalid parameter boston.train.lr: Input should be greater than 0 (got -1)"
    )


def test_an_unknown_field_of_a_typed_block_gets_the_nearest_known_key():
    known = {"boston.train.optimiser": "boston.train.optimizer"}
    assert short_message(ParameterValidationError(KEDRO_VALIDATION), nearest=known.get) == (
        "invalid parameters:\n"
        "  boston.train.lr: Input should be greater than 0 (got -1)\n"
        "  boston.train.optimiser: Extra inputs are not permitted (got 'sgd'); "
        "did you mean 'boston.train.optimizer'?\n"
        "  boston.split: value is None but type is not Optional"
    )
    # nothing near: the line stays as Kedro's validation said it
    assert "did you mean" not in short_message(
        ParameterValidationError(KEDRO_VALIDATION), nearest=lambda path: None
    )


def test_short_message_is_the_first_line_and_never_empty():
    assert short_message(ValueError("\n  training diverged at epoch 2.\n  details")) == (
        "training diverged at epoch 2."
    )
    assert short_message(ValueError("")) == "ValueError"
    assert short_message(KeyError()) == "KeyError"


def test_filters_drop_only_the_named_notices(caplog: pytest.LogCaptureFixture):
    install_filters()
    install_filters()  # idempotent
    assert len(logging.getLogger("mlflow.utils.environment").filters) == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        install_filters()
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


def test_mlflow_registry_notes_go_to_the_debug_log_and_other_output_passes(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.DEBUG, logger="linear_nets"), stderr_notes_to_debug_log():
        print("Successfully registered model 'tiny'.", file=sys.stderr)
        print("Registered model 'tiny' already exists. Creating a new version of this model...",
              file=sys.stderr)  # fmt: skip
        print("Created version '2' of model 'tiny'.", file=sys.stderr)
        print("WARNING something the user must see", file=sys.stderr)
    assert capsys.readouterr().err == "WARNING something the user must see\n"
    assert [r.getMessage() for r in caplog.records] == [
        "Successfully registered model 'tiny'.",
        "Registered model 'tiny' already exists. Creating a new version of this model...",
        "Created version '2' of model 'tiny'.",
    ]


def test_stderr_is_passed_on_when_the_block_fails(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(RuntimeError), stderr_notes_to_debug_log():
        print("MLflow said why", file=sys.stderr)
        raise RuntimeError("log_model failed")
    assert capsys.readouterr().err == "MLflow said why\n"
