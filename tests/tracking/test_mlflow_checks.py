"""MLflow's notebook probes and its pin check, answered without their cost (issue #11)."""

from __future__ import annotations

import subprocess
import sys
import types

import mlflow.pyfunc
import mlflow.utils.environment
import pytest

from linear_nets.tracking.mlflow_checks import (
    _when_ipython_imported,
    pins_read_from_this_environment,
)

PIN_CHECK = "warn_dependency_requirement_mismatches"


def test_a_probe_answers_at_once_until_ipython_is_imported(monkeypatch: pytest.MonkeyPatch):
    module = types.SimpleNamespace(probe=lambda: "asked IPython")
    _when_ipython_imported(module, "probe", lambda: "not a notebook")
    wrapped = module.probe

    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert module.probe() == "not a notebook"
    monkeypatch.setitem(sys.modules, "IPython", types.ModuleType("IPython"))
    assert module.probe() == "asked IPython"  # a notebook or `kedro ipython`: MLflow's own check
    _when_ipython_imported(module, "probe", lambda: "again")
    assert module.probe is wrapped  # applied once


PROBE = """
import sys
import mlflow
from mlflow.tracking.context.registry import resolve_tags
{install}
tags = resolve_tags()
print("IPython" in sys.modules, tags["mlflow.source.type"])
"""
INSTALL = (
    "from linear_nets.tracking.mlflow_checks import skip_notebook_probes_without_ipython\n"
    "skip_notebook_probes_without_ipython()"
)


@pytest.mark.slow  # two fresh interpreters importing MLflow
def test_run_tags_are_the_same_without_importing_ipython():
    def probe(install: str) -> str:
        code = PROBE.format(install=install)
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
        )
        return done.stdout.strip()

    assert probe(INSTALL) == "False LOCAL"
    pytest.importorskip("IPython")  # the dev tools install it: MLflow alone imports it to ask
    assert probe("") == "True LOCAL"


def test_pins_are_checked_again_after_a_model_is_logged(monkeypatch: pytest.MonkeyPatch):
    checked: list[list[str]] = []
    for module in (mlflow.utils.environment, mlflow.pyfunc):
        monkeypatch.setattr(module, PIN_CHECK, checked.append)

    with pins_read_from_this_environment():
        mlflow.utils.environment._process_pip_requirements([], pip_requirements=["numpy==0.0.1"])
    assert checked == []
    mlflow.utils.environment._process_pip_requirements([], pip_requirements=["numpy==0.0.1"])
    assert any("numpy==0.0.1" in pins for pins in checked)
    assert getattr(mlflow.pyfunc, PIN_CHECK) == checked.append
