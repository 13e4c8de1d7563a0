"""The process set-up: telemetry off unless the user opts in, and never over a user's value."""

from __future__ import annotations

import pytest

from linear_nets.process import MLFLOW_DEFAULTS, OPT_IN, TELEMETRY_SWITCHES, set_up


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [*TELEMETRY_SWITCHES, *MLFLOW_DEFAULTS, OPT_IN]:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_telemetry_is_switched_off_and_mlflow_defaults_set(clean_environment):
    import os

    set_up()
    assert {name: os.environ[name] for name in TELEMETRY_SWITCHES} == TELEMETRY_SWITCHES
    assert {name: os.environ[name] for name in MLFLOW_DEFAULTS} == MLFLOW_DEFAULTS


def test_a_user_who_opts_in_keeps_every_tools_default(clean_environment):
    import os

    clean_environment.setenv(OPT_IN, "on")
    set_up()
    assert not [name for name in TELEMETRY_SWITCHES if name in os.environ]


def test_a_value_the_user_set_is_never_overridden(clean_environment):
    import os

    clean_environment.setenv("MLFLOW_WORKERS", "4")
    clean_environment.setenv("DO_NOT_TRACK", "false")
    set_up()
    assert (os.environ["MLFLOW_WORKERS"], os.environ["DO_NOT_TRACK"]) == ("4", "false")
