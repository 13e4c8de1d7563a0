"""Typos in parameter keys stop the run before any work, naming the key and the nearest one."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from kedro.framework.project import pipelines
from kedro.framework.startup import bootstrap_project

from linear_nets.params_check import (
    UnknownParameterError,
    base_parameters,
    check_run_parameters,
    known_keys,
    params_option,
    run_command,
    typed_parameters,
)
from tests.support import mlflow_client, run_bounded, run_pipeline

ROOT = Path(__file__).resolve().parents[1]
PATTERNS = ["parameters*", "parameters*/**", "**/parameters*"]


def known_for(pipeline: str):
    bootstrap_project(ROOT)
    base = base_parameters(ROOT / "conf", "base", PATTERNS)
    return base, known_keys(base, typed_parameters(pipelines[pipeline]))


@pytest.mark.parametrize(
    ("pipeline", "typo", "nearest"),
    [
        ("boston", {"boston": {"trian": {"lr": 5}}}, "boston.train.lr"),
        ("boston", {"bostn": {"train": {"lr": 5}}}, "boston.train.lr"),
        ("boston", {"boston.train.lr_shedule": "cosine"}, "boston.train.lr_schedule"),
        (
            "fashion_mnist",
            {"fashion_mnist": {"trian": {"epochs": 1}}},
            "fashion_mnist.train.epochs",
        ),
    ],
)
def test_a_misspelt_runtime_key_names_itself_and_the_nearest(pipeline, typo, nearest):
    base, known = known_for(pipeline)
    with pytest.raises(UnknownParameterError) as error:
        check_run_parameters(base | typo, typo, known, env="local")
    message = str(error.value)
    assert "(--params)" in message
    assert f"did you mean '{nearest}'?" in message


def test_known_keys_include_typed_fields_that_the_yaml_leaves_out():
    base, known = known_for("boston")
    # lr_schedule is a TrainConfig field with a default: not in the YAML, still valid
    runtime = {"boston": {"train": {"lr_schedule": "cosine", "lr": 0.5}}, "sweep": {"id": "x"}}
    check_run_parameters(base | runtime, runtime, known, env="local")


def test_a_local_file_key_is_named_with_its_environment():
    base, known = known_for("landscape")
    merged = base | {"landscape": {**base["landscape"], "gird": {"step": 0.5}}}
    with pytest.raises(UnknownParameterError, match=r"'landscape.gird.step' \(conf/local/"):
        check_run_parameters(merged, {}, known, env="local")


def test_sweep_grids_are_left_to_kedro_sweep():
    base, known = known_for("boston")
    merged = base | {"boston_sweep": {"boston.train.epochs": [40]}}
    check_run_parameters(merged, {}, known, env="local")


def test_params_option_round_trips_through_kedro_parsing():
    from kedro.framework.cli.utils import _split_params

    flat = {"a.b": 0.1, "a.c": None, "a.d": "adam", "e": True, "f": 3}
    option = params_option(flat)
    assert _split_params(None, None, option) == {
        "a": {"b": 0.1, "c": None, "d": "adam"},
        "e": True,
        "f": 3,
    }
    assert run_command(["boston"], "team", {"a.b": 1}) == (
        "kedro run --pipeline=boston --env=team --params a.b=1"
    )
    with pytest.raises(UnknownParameterError, match="holds a comma"):
        params_option({"w": [1, 2]})


def test_a_typo_in_a_local_file_stops_a_session_before_mlflow_opens_a_run(kedro_project: Path):
    (kedro_project / "conf/local/parameters.yml").write_text("boston:\n  trian:\n    lr: 5\n")
    with pytest.raises(UnknownParameterError, match="did you mean 'boston.train.lr'"):
        run_pipeline(kedro_project, "boston")
    assert not list((kedro_project / "data/06_models").iterdir())
    client = mlflow_client(kedro_project)
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []


@pytest.mark.slow
def test_kedro_run_with_a_misspelt_params_key_exits_non_zero(kedro_project: Path):
    kedro = Path(sys.executable).with_name("kedro")
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    code, stdout, stderr = run_bounded(
        [str(kedro), "run", "--pipeline=boston", "--params", "bostn.train.lr=5"],
        timeout_s=300,
        cwd=kedro_project,
        env=env,
    )
    output = " ".join((stdout + stderr).split())
    assert code != 0, output[-3000:]
    expected = "unknown parameter 'bostn.train.lr' (--params): did you mean 'boston.train.lr'?"
    assert expected in output
    assert "train_linear_model" not in output  # stopped before any node ran
