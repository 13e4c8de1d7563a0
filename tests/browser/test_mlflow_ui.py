"""A boston run, seen where people look for it: the MLflow UI's runs page, in headless Chromium.

The tracking tests read the store through the client; this one checks that the store the
pipeline writes is one the UI serves (same backend URI, experiment and run name).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.browser import Chromium
from tests.support import (
    LOOPBACK,
    NO_JOB_RUNNER,
    free_port,
    mlflow_client,
    mlflow_server_command,
    process_group,
    run_pipeline,
    wait_for_http,
)

pytestmark = pytest.mark.browser

EXPERIMENT = "linear_nets.boston"
# Cold start of `mlflow server` takes 10-40 s here (uvicorn imports the whole of MLflow).
SERVER_START_TIMEOUT_S = 180


class RunLinks(HTMLParser):
    """Text of each link to a run page (``href`` ending ``/runs/<run_id>``), by run id."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.names: dict[str, str] = {}
        self._run_id: str | None = None
        self.feed(dom)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href") or ""
        if tag == "a" and "/runs/" in href:
            self._run_id = href.rstrip("/").rsplit("/runs/", 1)[1]
            self.names[self._run_id] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._run_id = None

    def handle_data(self, data: str) -> None:
        if self._run_id is not None:
            self.names[self._run_id] += data.strip()


@dataclass(frozen=True)
class MlflowServer:
    url: str
    process: subprocess.Popen
    log: Path

    def wait_until_up(self) -> str:
        wait_for_http(f"{self.url}/health", SERVER_START_TIMEOUT_S, self.process, self.log)
        return self.url


@pytest.fixture
def mlflow_ui(kedro_project: Path, tmp_path: Path) -> Iterator[MlflowServer]:
    """``mlflow server`` on the project copy's SQLite store, on a free loopback port; started,
    not waited for, so that it boots while the test runs its pipeline."""
    port = free_port()
    command = mlflow_server_command(kedro_project / "mlflow.db", port)
    log = tmp_path / "mlflow-server.log"
    with process_group(command, cwd=kedro_project, log=log, env=NO_JOB_RUNNER) as server:
        yield MlflowServer(f"http://{LOOPBACK}:{port}", server, log)


def test_runs_page_lists_the_boston_run(
    chromium: Chromium, kedro_project: Path, mlflow_ui: MlflowServer, tmp_path: Path
):
    run_pipeline(kedro_project, "boston", {"boston": {"train": {"epochs": 20}}})
    client = mlflow_client(kedro_project)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "boston"
    url = f"{mlflow_ui.wait_until_up()}/#/experiments/{experiment.experiment_id}/runs"

    dom = chromium.wait_for_dom(url, lambda d: run.info.run_id in RunLinks(d).names)

    links = RunLinks(dom).names
    if links.get(run.info.run_id) != "boston":
        shot = chromium.screenshot(url, tmp_path / "mlflow_runs.png")
        pytest.fail(
            f"runs page links to {links}, not to run {run.info.run_id} named 'boston'; "
            f"screenshot {shot}"
        )
