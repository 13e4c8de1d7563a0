"""Every command in the README's ```bash blocks works as the README says.

Each command is in exactly one of three tables: ``RUN_HERE`` (run below, as a process in a fresh
project copy, with the outcome the README promises checked), ``COVERED`` (the test that runs it,
or what it does, already) and ``NOT_RUN`` (why no test runs it: a GPU, several machines, a
placeholder to fill in, a command that deletes the checkout's files). A command added to the
README without an entry fails ``test_every_readme_command_is_accounted_for``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.support import (
    LOOPBACK,
    ROOT,
    free_port,
    latest_output,
    make_project_copy,
    mlflow_client,
    process_group,
    run_bounded,
    wait_for_http,
)

README = ROOT / "README.md"
COMMAND_TIMEOUT_S = 600
UI_START_TIMEOUT_S = 120

ADAM = 'bin/uv run kedro run --pipeline=boston --params "boston.train.optimizer=adam,boston.train.lr=0.2"'  # noqa: E501
TABULAR = 'bin/uv run kedro run --pipelines=tabular --params "tabular.source.filepath=data/01_raw/example_houses.csv,tabular.target=price"'  # noqa: E501
TABULAR_DE = 'bin/uv run kedro run --pipelines=tabular --params "tabular.source.filepath=data/houses_de.csv,tabular.target=price,tabular.source.sep=semicolon,tabular.source.decimal=comma"'  # noqa: E501
SYNTHETIC_MAE = 'bin/uv run kedro run --pipeline=synthetic --params "synthetic.train.loss=mae,synthetic.train.lr=0.01,synthetic.train.epochs=20"'  # noqa: E501
MLFLOW_UI = "bin/uv run kedro mlflow ui"

RUN_HERE = {
    ADAM: "test_the_adam_example_converges_and_is_registered",
    TABULAR: "test_the_tabular_example_prints_the_readme_coefficients",
    TABULAR_DE: "test_a_semicolon_decimal_comma_csv_gives_the_same_coefficients",
    SYNTHETIC_MAE: "test_the_mae_example_of_the_tutorials_runs",
    MLFLOW_UI: "test_kedro_mlflow_ui_answers_with_one_worker_and_no_job_runner",
}

BOSTON_RUN = "tests/pipelines/boston/test_pipeline.py::test_full_run_is_tracked_and_persisted"
SYNTHETIC_RUN = "tests/pipelines/synthetic/test_pipeline.py::test_defaults_recover_the_true_parameters"  # noqa: E501
NOTEBOOK = "tests/test_notebook.py::test_the_walkthrough_trains_what_it_lacks_and_runs"
SERVING = "tests/test_serving.py::test_batch_inference_pyfunc_and_server_give_the_same_numbers"
PROJECT_SERVER = "tests/serving/test_server.py::test_rows_as_json_csv_and_parquet_give_the_model_numbers"  # noqa: E501
TEAM = "tests/test_tracking_server.py::test_an_editor_runs_a_pipeline_and_a_reader_cannot_move_the_champion"  # noqa: E501
TEAM_USERS = TEAM
TEAM_BACKUP = "tests/test_tracking_server.py::test_a_backup_restores_into_a_fresh_folder"
SWEEP = "tests/test_sweep.py::test_a_parallel_sweep_records_every_configuration_and_fails_if_any_failed"  # noqa: E501
FASHION = "tests/pipelines/fashion_mnist/test_pipeline.py::test_full_run_downloads_trains_and_tracks"  # noqa: E501

COVERED = {
    "bin/uv run kedro run --pipeline=boston": BOSTON_RUN,
    'bin/uv run kedro run --pipelines=tabular --params "tabular.source.filepath=data/houses.xlsx,tabular.target=price,tabular.source.sheet=houses"':  # noqa: E501
    "tests/pipelines/tabular/test_pipeline.py::test_an_excel_sheet_trains_and_csv_options_reach_the_dataset",
    "bin/uv run kedro runs clean": "tests/tracking/test_run_status.py::test_runs_clean_marks_runs_whose_process_is_gone",  # noqa: E501
    "bin/uv run kedro sweep": SWEEP,
    "bin/uv run kedro sweep --workers 2": SWEEP,
    "bin/tracking-server start": TEAM,
    "bin/uv run kedro run --pipeline=boston --env=team": TEAM,
    "bin/tracking-server status": TEAM,
    "bin/tracking-server stop": TEAM,
    "TRACKING_SERVER_PORT=5050 bin/tracking-server start": TEAM,  # on a free port
    "TRACKING_SERVER_PORT=5050 bin/uv run kedro run --pipeline=boston --env=team": TEAM,
    """curl -s http://127.0.0.1:5001/invocations -H 'Content-Type: application/json' -d '{"dataframe_split": {"columns": ["CRIM","ZN","INDUS","CHAS","NOX","RM","AGE","DIS","RAD","TAX","PTRATIO","B","LSTAT"], "data": [[0.00632,18,2.31,0,0.538,6.575,65.2,4.09,1,296,15.3,396.9,4.98]]}}'""": SERVING,  # noqa: E501
    "MLFLOW_TRACKING_URI=sqlite:///mlflow.db bin/uv run python -m linear_nets.serving.server -m models:/boston_linear_regression@champion --host 127.0.0.1 --port 5001": PROJECT_SERVER,  # noqa: E501
    "curl -s http://127.0.0.1:5001/invocations -H 'Content-Type: text/csv' --data-binary @data/01_raw/boston_new_rows.csv": PROJECT_SERVER,  # noqa: E501
    'bin/uv run kedro run --pipeline=boston --params "boston.train.optimizer=lstsq"': "tests/pipelines/tabular/test_pipeline.py::test_defaults_register_an_exact_fit_of_a_collinear_real_table",  # noqa: E501
    'bin/uv run kedro run --pipeline=boston --params "boston.split.test_size=0"': "tests/pipelines/boston/test_pipeline.py::test_test_size_zero_prints_the_published_full_data_table",  # noqa: E501
    "bin/tracking-server user add alice --role editor": TEAM_USERS,
    "bin/tracking-server user add bob": TEAM_USERS,
    'echo "$PASSWORD" | bin/tracking-server user add carol --password-stdin': TEAM_USERS,
    "bin/tracking-server backup ~/team-2026-12-06.tgz": TEAM_BACKUP,
    "bin/tracking-server restore ~/team-2026-12-06.tgz": TEAM_BACKUP,
    "bin/uv run kedro run --pipeline=boston_inference": "tests/pipelines/boston_inference/test_pipeline.py::test_predicts_new_rows_with_the_champion",  # noqa: E501
    "bin/uv run kedro run --pipeline=synthetic": SYNTHETIC_RUN,
    'bin/uv run kedro run --pipeline=synthetic --params "synthetic.model.kind=linear,synthetic.train.optimizer=sgd"': SYNTHETIC_RUN,  # noqa: E501
    "bin/uv run kedro run --pipeline=synthetic --params synthetic.model.kind=linear": NOTEBOOK,
    "bin/uv run kedro run --pipeline=landscape": "tests/pipelines/landscape/test_pipeline.py::test_defaults_find_w_2_both_ways",  # noqa: E501
    "bin/uv run kedro run --pipeline=fashion_mnist --params fashion_mnist.source.mirror=/path/to/fashion-mnist": FASHION,  # noqa: E501
    'bin/uv run kedro run --pipeline=fashion_mnist --params "fashion_mnist.source.mirror=/path/to/fashion-mnist,fashion_mnist.model.kind=scratch"': FASHION,  # noqa: E501
    "bin/uv run kedro run --pipeline=synthetic_large": "tests/pipelines/synthetic_large/test_pipeline.py::test_a_small_run_streams_to_the_optimum",  # noqa: E501
    'bin/uv run kedro run --pipeline=synthetic_large --params "synthetic_large.train.distributed.enabled=true"': "tests/engine/test_distributed.py::test_two_gloo_processes_reproduce_one_process_full_batch",  # noqa: E501
    "bin/uv run kedro viz build": "tests/test_kedro_viz.py::test_every_pipeline_shows_its_layers",
    "bin/uv run kedro viz build && bin/uv run kedro viz run --load-file build":
    "tests/test_kedro_viz.py::test_the_static_site_announces_no_update",
    "bin/uv run kedro jupyter notebook": NOTEBOOK,
}

NOT_RUN = {
    "bin/uv run pytest": "the test suite itself",
    'bin/uv run pytest -m "not slow"': "the test suite itself",
    'bin/uv run pytest -m "not browser"': "the test suite itself",
    "bin/uv run ruff check .": "CI runs the linter (.ci/run)",
    "bin/uv run python benchmarks/training.py --quick": "speed targets, run by hand",
    "bin/uv run python benchmarks/startup.py": "speed targets, run by hand",
    'bin/uv run kedro run --pipeline=boston --params "boston.train.device=cuda,boston.model.kind=scratch"':  # noqa: E501
    "needs a GPU; without one it stops at the training node, as "
    "tests/engine/test_devices.py::test_training_on_an_absent_device_fails_before_it_starts checks",
    "bin/uv run kedro run --pipeline=fashion_mnist": "downloads from torchvision's mirror "
    f"(network); {FASHION} runs the pipeline against a loopback mirror",
    'bin/uv run kedro run --pipeline=synthetic_large --params "synthetic_large.data.n=100000000"':
    "6.8 GB of Parquet and 2 minutes; benchmarks/scale.py measures it",
    'bin/uv run kedro run --pipeline=synthetic_large --params "synthetic_large.train.device=cuda,synthetic_large.train.distributed.enabled=true,synthetic_large.train.distributed.nproc_per_node=1"':  # noqa: E501
    "needs a GPU (nccl)",
    'bin/uv run kedro run --pipeline=synthetic_large --params "synthetic_large.train.distributed.enabled=true,synthetic_large.train.distributed.nnodes=2,synthetic_large.train.distributed.nproc_per_node=2,synthetic_large.train.distributed.rdzv_endpoint=node0:29500"':  # noqa: E501
    "needs two machines",
    "bin/uv run kedro viz run": "a server that serves what `kedro viz build` exports "
    "(tests/test_kedro_viz.py, tests/browser/test_kedro_viz_page.py)",
    "rm -rf .venv && bin/uv sync": "rebuilds the environment the tests run in",
    "git clean -fdX data/ && rm -rf mlflow.db mlruns/ mlartifacts/ info.log* .viz/ build/":
    "deletes the checkout's outputs",
    "git clean -ndX data/": "lists the checkout's outputs (git clean -n deletes nothing)",
    "export MLFLOW_TRACKING_URI=sqlite:///mlflow.db": "sets the shell's store for the lines below",
    "export TRACKING_SERVER_HOST=tracking.example.org TRACKING_SERVER_PORT=5000":
    "a colleague's shell, pointing at a server on another machine",
    "export MLFLOW_TRACKING_USERNAME=alice MLFLOW_TRACKING_PASSWORD=...":
    "a placeholder to fill in",
    "bin/uv run mlflow experiments search": "MLflow's own CLI on the store",
    "bin/uv run mlflow runs list --experiment-id <ID>": "a placeholder to fill in",
    "bin/uv run mlflow runs delete --run-id <RUN_ID>": "a placeholder to fill in",
    "bin/uv run mlflow gc --backend-store-uri sqlite:///mlflow.db": "MLflow's own CLI on the store",
    """bin/uv run python -c "from mlflow import MlflowClient; MlflowClient('sqlite:///mlflow.db').delete_model_version('boston_linear_regression', '<VERSION>')\"""":  # noqa: E501
    "a placeholder to fill in",
    "rm -rf data/06_models/boston_model.pt/<VERSION_TIMESTAMP> data/06_models/boston_model_scaler.json/<VERSION_TIMESTAMP>":  # noqa: E501
    "a placeholder to fill in",
}


def readme_commands(text: str) -> list[str]:
    """The commands of every ```bash block, once each: continuation lines (a trailing backslash,
    or an open quote) joined, runs of spaces made one, comments after two spaces dropped."""
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        pending = ""
        for raw in re.sub(r"\\\n", " ", block).splitlines():
            line = re.sub(r"\s{2,}#.*$", "", raw).strip()
            if not pending and (not line or line.startswith("#")):
                continue
            pending = f"{pending} {line}".strip()
            try:
                shlex.split(pending)
            except ValueError:  # "No closing quotation": the command goes on
                continue
            command = re.sub(r"(?<=\S) {2,}(?=\S)", " ", pending)
            if command not in commands:
                commands.append(command)
            pending = ""
    return commands


def test_every_readme_command_is_accounted_for():
    commands = readme_commands(README.read_text())
    tables = {**RUN_HERE, **COVERED, **NOT_RUN}
    assert len(tables) == len(RUN_HERE) + len(COVERED) + len(NOT_RUN), "a command listed twice"
    missing = [command for command in commands if command not in tables]
    assert not missing, f"README commands no test runs or explains: {missing}"
    stale = [command for command in tables if command not in commands]
    assert not stale, f"listed here but no longer in the README: {stale}"
    this_file = Path(__file__).read_text()
    assert all(f"def {name}(" in this_file for name in RUN_HERE.values())
    for where in COVERED.values():
        path, name = where.split("::")
        assert f"def {name}(" in (ROOT / path).read_text(), f"no test {where}"


def test_commands_are_read_whole():
    text = "```bash\nbin/uv run a \\\n    --b 1   # note\ncurl -d '{\"x\":\n  1}'\nb  c\n```\n"
    assert readme_commands(text) == ["bin/uv run a --b 1", "curl -d '{\"x\": 1}'", "b c"]


# --- the commands run here, in order, in one project copy -----------------------------------------


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, empty_mlflow_store: Path) -> Path:
    return make_project_copy(tmp_path_factory.mktemp("readme") / "project", empty_mlflow_store)


def environment() -> dict[str, str]:
    """``bin/uv run``'s environment: this virtual environment's scripts first on PATH."""
    scripts = Path(sys.executable).parent
    path = f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "PATH": path, "KEDRO_DISABLE_TELEMETRY": "true", "COLUMNS": "200"}


def run_readme(command: str, project: Path) -> str:
    """Run a README command as written, less ``bin/uv run`` (the environment is this one)."""
    assert command in RUN_HERE
    line = command.removeprefix("bin/uv run ")
    code, stdout, stderr = run_bounded(
        ["bash", "-c", line], timeout_s=COMMAND_TIMEOUT_S, cwd=project, env=environment()
    )
    output = stdout + stderr
    assert code == 0, f"{command} exited {code}:\n{output[-4000:]}"
    return output


def latest_run(project: Path, pipeline: str):
    client = mlflow_client(project)
    experiment = client.get_experiment_by_name(f"linear_nets.{pipeline}")
    newest_first = ["attributes.start_time DESC"]
    return client.search_runs([experiment.experiment_id], order_by=newest_first)[0]


@pytest.mark.slow
def test_the_adam_example_converges_and_is_registered(project: Path):
    from linear_nets.tracking.registry import NOT_REGISTERED_TAG, VERSION_TAG

    run_readme(ADAM, project)
    run = latest_run(project, "boston")
    assert run.data.params["boston.train.optimizer"] == "adam"
    assert run.data.metrics["train_mse"] <= run.data.metrics["ols_train_mse"] * 1.01
    assert NOT_REGISTERED_TAG not in run.data.tags, run.data.tags.get(NOT_REGISTERED_TAG)
    assert VERSION_TAG in run.data.tags


def readme_coefficients() -> pd.DataFrame:
    """The coefficient table the README prints for the example houses."""
    text = README.read_text()
    table = text[text.index("| feature | model | ols |") :].split("\n\n")[0].splitlines()
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table[2:]]
    frame = pd.DataFrame(rows, columns=header).set_index("feature")
    return frame.map(lambda cell: cell.replace("\u2212", "-"))


def assert_as_printed(computed: float, printed: str, where: str) -> None:
    """``computed`` rounds to ``printed`` (to its last digit)."""
    digits = len(printed.split(".")[1]) if "." in printed and "e" not in printed else 0
    tolerance = 0.5 * 10.0**-digits * 1.0001 if "e" not in printed else abs(float(printed))
    assert abs(computed - float(printed)) <= tolerance, f"{where}: {computed} is not {printed}"


@pytest.mark.slow
def test_the_tabular_example_prints_the_readme_coefficients(project: Path):
    run_readme(TABULAR, project)
    computed = pd.read_csv(
        latest_output(project, "data/08_reporting/tabular_coefficients.csv")
    ).set_index("feature")
    printed = readme_coefficients()
    assert list(computed.index) == list(printed.index)
    for feature in printed.index:
        for column in ("model", "ols", "std_error", "ci_low", "ci_high"):
            where = f"{feature}.{column}"
            assert_as_printed(computed.loc[feature, column], printed.loc[feature, column], where)


@pytest.mark.slow
def test_a_semicolon_decimal_comma_csv_gives_the_same_coefficients(project: Path):
    """The example houses as a German spreadsheet exports them, then the README's command."""
    houses = pd.read_csv(project / "data" / "01_raw" / "example_houses.csv")
    houses.to_csv(project / "data" / "houses_de.csv", sep=";", decimal=",", index=False)
    assert "22,3" in (project / "data" / "houses_de.csv").read_text()

    if not (project / "data/08_reporting/tabular_coefficients.csv").exists():
        run_readme(TABULAR, project)  # when run alone
    reference = pd.read_csv(latest_output(project, "data/08_reporting/tabular_coefficients.csv"))
    run_readme(TABULAR_DE, project)
    computed = pd.read_csv(latest_output(project, "data/08_reporting/tabular_coefficients.csv"))
    pd.testing.assert_frame_equal(computed, reference)


@pytest.mark.slow
def test_the_mae_example_of_the_tutorials_runs(project: Path):
    run_readme(SYNTHETIC_MAE, project)
    run = latest_run(project, "synthetic")
    assert run.info.status == "FINISHED"
    assert (run.data.params["synthetic.train.loss"], run.data.params["synthetic.train.epochs"]) == (
        "mae",
        "20",
    )
    assert {"w_max_abs_error", "b_abs_error"} <= set(run.data.metrics)


def group_commands(pgid: int) -> list[str]:
    listed = subprocess.run(
        ["ps", "-o", "args=", "-g", str(pgid)], capture_output=True, text=True, check=False
    )
    return [line for line in listed.stdout.splitlines() if line.strip()]


@pytest.mark.slow
def test_kedro_mlflow_ui_answers_with_one_worker_and_no_job_runner(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """``kedro mlflow ui`` starts ``mlflow ui`` with the project's defaults (process.py): one
    web worker and no job-execution processes, so it answers in seconds, not minutes."""
    for name in ("MLFLOW_WORKERS", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"):
        monkeypatch.delenv(name, raising=False)
    port = free_port()
    command = [str(Path(sys.executable).parent / "kedro"), "mlflow", "ui", "--port", str(port)]
    log = tmp_path / "ui.log"
    with process_group(command, cwd=project, log=log, env=environment()) as ui:
        wait_for_http(f"http://{LOOPBACK}:{port}/health", UI_START_TIMEOUT_S, ui, log)
        processes = group_commands(ui.pid)
    assert len(processes) <= 3, processes  # kedro, mlflow ui, one uvicorn worker
    assert not [p for p in processes if "huey" in p or "jobs._job_runner" in p], processes
