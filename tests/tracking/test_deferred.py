"""Deferred MLflow logging: phases in order, and nothing kept when any action fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from linear_nets.tracking import deferred


@pytest.fixture
def run(tmp_path: Path) -> Iterator[mlflow.ActiveRun]:
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.MlflowClient().create_experiment("deferred")
    with mlflow.start_run(experiment_id=experiment) as active:
        yield active
    mlflow.set_tracking_uri(previous)


def _register(name: str):
    def action(run_id: str) -> None:
        client = mlflow.MlflowClient()
        if not client.search_registered_models(f"name = '{name}'"):
            client.create_registered_model(name)
        client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)

    return action


def test_phases_run_in_order_whatever_the_order_of_queueing(run):
    done: list[str] = []
    log = deferred.DeferredLog(run.info.run_id)
    for phase in ("promote", "metrics", "model"):
        log.add(lambda run_id, phase=phase: done.append(phase), phase)
    log.commit()
    assert done == ["model", "metrics", "promote"]


def test_an_unknown_phase_is_refused(run):
    with pytest.raises(ValueError, match="unknown logging phase 'models'"):
        deferred.log_when_done(lambda run_id: None, phase="models")


def test_without_a_deferring_run_logging_happens_at_once(run):
    deferred.log_when_done(lambda run_id: mlflow.MlflowClient().log_metric(run_id, "m", 1.0))
    assert mlflow.MlflowClient().get_run(run.info.run_id).data.metrics == {"m": 1.0}


def test_a_failure_deletes_the_versions_and_restores_the_alias(run):
    client = mlflow.MlflowClient()
    other = client.create_run(run.info.experiment_id).info.run_id
    _register("m")(other)  # version 1: the champion of an earlier run
    client.set_registered_model_alias("m", "champion", "1")

    log = deferred.DeferredLog(run.info.run_id)
    log.add(_register("m"), "model")
    log.add(lambda run_id: client.set_registered_model_alias("m", "champion", "2"), "promote")

    def fail(run_id: str) -> None:
        raise RuntimeError("registry unreachable")

    log.add(fail, "promote")
    with pytest.raises(RuntimeError, match="registry unreachable"):
        log.commit()
    assert [int(v.version) for v in client.search_model_versions("name = 'm'")] == [1]
    aliases = client.get_registered_model("m").aliases
    assert {alias: int(version) for alias, version in aliases.items()} == {"champion": 1}
