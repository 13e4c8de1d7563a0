"""boston_inference predicts with the registered @champion, and says what to do without one."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from linear_nets.hooks import MissingModelError
from linear_nets.pipelines.boston.nodes import FEATURES
from linear_nets.pipelines.boston_inference.nodes import PREDICTION
from tests.support import latest_output, mlflow_client, run_bounded, run_pipeline

CHAMPION_URI = "models:/boston_linear_regression@champion"
FIRST = "no model models:/boston_linear_regression@champion in the MLflow registry yet: run `kedro run --pipeline=boston` first"  # noqa: E501


# Before the tests that use ``trained_boston``: kedro-mlflow 2.0.3's hook keeps the previous
# run's id, and a tracking-disabled pipeline run later in the same process reopens that run.
def test_before_any_boston_run_it_says_what_to_run(kedro_project: Path):
    with pytest.raises(MissingModelError) as raised:
        run_pipeline(kedro_project, "boston_inference")
    assert raised.value.message == FIRST
    assert not (kedro_project / "data/07_model_output/boston_new_predictions.csv").exists()


@pytest.mark.slow
def test_the_cli_error_is_one_line(kedro_project: Path):
    kedro = Path(sys.executable).with_name("kedro")
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "NO_COLOR": "1", "COLUMNS": "300"}
    code, stdout, stderr = run_bounded(
        [str(kedro), "run", "--pipeline=boston_inference"],
        timeout_s=180,
        cwd=kedro_project,
        env=env,
    )
    assert code == 1
    assert f"Error: {FIRST}" in stderr.splitlines()
    assert "Traceback" not in stdout + stderr


def test_predicts_new_rows_with_the_champion(
    trained_boston: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("COLUMNS", "400")  # the summary table on one line per row
    client = mlflow_client(trained_boston)
    champion = client.get_model_version_by_alias("boston_linear_regression", "champion")
    run_pipeline(trained_boston, "boston_inference")
    printed = capsys.readouterr().out
    assert f"{CHAMPION_URI} (version {champion.version}" in printed
    written = latest_output(trained_boston, "data/07_model_output/boston_new_predictions.csv")
    # versioned: <file>/<this run's version>/<file>, never overwriting an earlier run's
    assert written.parent.parent.name == "boston_new_predictions.csv"
    assert f"{written.relative_to(trained_boston)}  (8 rows)" in printed

    new_rows = pd.read_csv(trained_boston / "data/01_raw/boston_new_rows.csv")
    predictions = pd.read_csv(written)
    assert len(predictions) == len(new_rows) == 8
    pd.testing.assert_frame_equal(predictions[list(FEATURES)], new_rows[list(FEATURES)])

    mlflow.set_tracking_uri(f"sqlite:///{trained_boston / 'mlflow.db'}")
    pyfunc = mlflow.pyfunc.load_model(CHAMPION_URI)
    assert pyfunc.metadata.run_id == champion.run_id
    np.testing.assert_allclose(predictions[PREDICTION], pyfunc.predict(new_rows), rtol=1e-12)
    # first sample row is the first StatLib record (MEDV 24.0): a sane house price
    assert 15 < predictions[PREDICTION].iloc[0] < 40


@pytest.mark.parametrize(
    ("value", "message"),
    [("inf", r"value inf is not finite"), ("1e308", r"value 1e\+308 overflows float32")],
)
def test_a_non_finite_or_overflowing_row_is_refused_by_column_and_row(
    trained_boston: Path, value: str, message: str
):
    path = trained_boston / "data/01_raw/boston_new_rows.csv"
    shipped = path.read_text()
    lines = shipped.splitlines()
    header = lines[0].split(",")
    cells = lines[3].split(",")
    cells[header.index("TAX")] = value
    lines[3] = ",".join(cells)
    try:
        path.write_text("\n".join(lines) + "\n")
        with pytest.raises(Exception, match=rf"column 'TAX', row 3: {message}"):  # rows from 1
            run_pipeline(trained_boston, "boston_inference")
    finally:
        path.write_text(shipped)


def test_a_champion_whose_code_changed_is_refused_before_it_runs(
    trained_boston: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    client = mlflow_client(trained_boston)
    champion = client.get_model_version_by_alias("boston_linear_regression", "champion")
    uri = client.get_model_version_download_uri(champion.name, champion.version)
    code = trained_boston / uri.removeprefix("file://") / "regression_model.py"
    shipped = code.read_text()
    marker = tmp_path / "marker"
    monkeypatch.setenv("MARKER", str(marker))
    try:  # the changed file would leave a marker when it runs
        payload = "import os, pathlib\npathlib.Path(os.environ['MARKER']).touch()\n"
        code.write_text(f"{shipped}\n{payload}")
        with pytest.raises(Exception, match=(
            "model file regression_model.py of boston_linear_regression version "
            f"{champion.version} changed since the model was published"
        )):  # fmt: skip
            run_pipeline(trained_boston, "boston_inference")
    finally:
        code.write_text(shipped)
    assert not marker.exists()
