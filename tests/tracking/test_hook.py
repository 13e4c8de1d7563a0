"""The tracking hook: one experiment per pipeline, parameters once, readable tags, own files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.runner import ThreadRunner

from linear_nets.engine import TrainConfig
from linear_nets.tracking.hook import _find, _readable, git_commit
from tests.support import latest_output, mlflow_client, run_pipeline


def test_find_looks_inside_nested_parameter_models():
    inner = TrainConfig(lr=0.1, epochs=3)
    assert _find({"a": {"b": inner}, "c": 1}, TrainConfig) == [inner]


def test_tag_values_are_readable():
    assert _readable("<kedro.runner.sequential_runner.SequentialRunner object at 0x7f1>") == (
        "SequentialRunner"
    )
    assert _readable(["boston", "synthetic"]) == "boston,synthetic"
    assert _readable({"b": 1, "a": {"c": 2}}) == '{"a": {"c": 2}, "b": 1}'


def test_git_commit_outside_a_repository_is_unknown(tmp_path: Path):
    assert git_commit(tmp_path) == (None, False)


def test_git_commit_of_this_checkout():
    commit, _ = git_commit(Path(__file__).parent)
    assert commit is not None and len(commit) == 40


def test_a_run_is_tagged_cleanly_in_its_pipelines_experiment(
    kedro_project: Path, capsys: pytest.CaptureFixture[str]
):
    run_pipeline(kedro_project, "synthetic", params={"synthetic": {"train": {"lr": 0.05}}})
    printed = capsys.readouterr().out
    assert "kedro run --pipelines=synthetic: done" in printed
    assert "w_max_abs_error" in printed
    assert "data/06_models/synthetic_model.pt/" in printed

    client = mlflow_client(kedro_project)
    assert client.get_experiment_by_name("linear_nets") is None
    experiment = client.get_experiment_by_name("linear_nets.synthetic")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.info.run_id in printed
    tags, params = run.data.tags, run.data.params
    assert tags["device"] == "cpu"
    assert tags["runner"] == "SequentialRunner"
    assert tags["pipeline_names"] == "synthetic"
    assert tags["kedro_command"] == (
        'kedro run --pipelines=synthetic --params="synthetic.train.lr=0.05"'
    )
    assert " object at 0x" not in json.dumps(tags)
    assert "run_id" not in tags
    assert tags["linear_nets.pid"].isdigit()
    # typed parameters flattened, each once; no truncated repr of a whole block
    assert params["synthetic.train.optimizer"] == "manual_sgd"
    assert params["synthetic.train.lr"] == "0.05"
    assert not any(value.startswith(("{", "n=", "w=")) for value in params.values())
    assert "synthetic" not in params and "synthetic.train" not in params

    # the run's files are in the version folder named after its save version
    version = tags["kedro.save_version"]
    report = latest_output(kedro_project, "data/08_reporting/synthetic_report.json")
    assert report.parent.name == version
    metrics_file = latest_output(kedro_project, "data/08_reporting/synthetic_metrics.json")
    metrics = json.loads(metrics_file.read_text())
    assert run.data.metrics["w_max_abs_error"] == pytest.approx(metrics["w_max_abs_error"])


def test_a_thread_runner_run_is_published_once_its_pipeline_succeeded(kedro_project: Path):
    bootstrap_project(kedro_project)
    with KedroSession.create(project_path=kedro_project) as session:
        session.run(pipeline_names=["synthetic"], runner=ThreadRunner())
    client = mlflow_client(kedro_project)
    experiment = client.get_experiment_by_name("linear_nets.synthetic")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["w_max_abs_error"] <= 0.01
    assert {artifact.path for artifact in client.list_artifacts(run.info.run_id)}


def test_holding_the_signals_survives_a_signal_landing_between_the_handlers(monkeypatch):
    """The second SIGTERM a process group gets can run its handler while the first handlers are
    being replaced; the hold must still end with both signals ignored, and undo itself."""
    import signal

    from linear_nets.tracking import hook

    real_signal = signal.signal
    before = {signum: signal.getsignal(signum) for signum in hook._SIGNALS}
    landed = []

    def signal_then_interrupt(signum, handler):
        previous = real_signal(signum, handler)
        if not landed:  # the pending handler runs right after the first replacement
            landed.append(signum)
            raise hook.Terminated("signal SIGTERM")
        return previous

    monkeypatch.setattr(hook.signal, "signal", signal_then_interrupt)
    with hook._signals_held():
        assert all(signal.getsignal(s) == signal.SIG_IGN for s in hook._SIGNALS)
    assert landed
    # the handler whose replacement was interrupted stays ignored; the other is put back
    assert signal.getsignal(landed[0]) == signal.SIG_IGN
    for signum in set(hook._SIGNALS) - set(landed):
        assert signal.getsignal(signum) == before[signum]
    for signum, handler in before.items():
        real_signal(signum, handler)


def test_an_interrupted_run_is_ended_at_exit_even_when_another_signal_lands_first(monkeypatch):
    from linear_nets.tracking import hook

    tracker = hook.MlflowTrackingHook()
    tracker._run = object()
    ended = []

    def end(state, status, reason):
        if not ended:
            ended.append("interrupted")
            raise hook.Terminated("signal SIGTERM")  # before the handlers were held
        ended.append(status)
        tracker._run = None

    monkeypatch.setattr(tracker, "_end", end)
    tracker._end_abandoned_run()
    assert ended == ["interrupted", "KILLED"]
