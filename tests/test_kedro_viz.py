"""`kedro viz build` on a fresh copy of the project: the static export the README promises.

kedro-viz 12.5 writes ``build/index.html`` plus its API as JSON files: ``build/api/main`` (every
node, the layers and the list of pipelines) and ``build/api/pipelines/<id>`` (one per pipeline).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kedro.framework.project import pipelines
from kedro.framework.startup import bootstrap_project

ROOT = Path(__file__).resolve().parents[1]
# kedro-viz gives its build process 300 s; the CLI itself needs a few seconds to start.
BUILD_TIMEOUT_S = 420
BOSTON_TASKS = {"download_boston_data", "train_linear_model", "evaluate_model"}


def copy_project(dest: Path) -> Path:
    """What a fresh clone has: conf/ (no local settings) and pyproject.toml, with no data,
    no ``build/`` and no ``.viz/``; ``src`` stays empty as the package is installed."""
    local = ROOT / "conf" / "local"

    def skip_local_settings(directory: str, names: list[str]) -> list[str]:
        return [n for n in names if n != ".gitkeep"] if Path(directory) == local else []

    shutil.copytree(ROOT / "conf", dest / "conf", ignore=skip_local_settings)
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    (dest / "src").mkdir()
    return dest


def kedro_viz_build(project: Path) -> Path:
    """Run ``kedro viz build`` in ``project`` and return its ``build/`` folder.

    The command exits 0 even when the build fails (it only prints an error), so success is
    read from its output. It runs in its own process group: kedro-viz builds in a child process,
    which a timeout must stop too.
    """
    kedro = Path(sys.executable).with_name("kedro")
    command = [str(kedro) if kedro.exists() else "kedro", "viz", "build"]
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command,
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"kedro viz build ran over {BUILD_TIMEOUT_S} s:\n{output[-4000:]}")
    finally:
        if process.poll() is None:  # pragma: no cover - only on an interrupted test
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, output[-4000:]
    assert "Success! Kedro-Viz build files" in output, output[-4000:]
    return project / "build"


_BUILDS: dict[Path, Path] = {}


def shared_viz_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One build per test session (it takes about half a minute), shared by this module and
    the browser tests; none of them writes to it."""
    session = tmp_path_factory.getbasetemp()
    if session not in _BUILDS:
        project = copy_project(tmp_path_factory.mktemp("viz") / "project")
        _BUILDS[session] = kedro_viz_build(project)
    return _BUILDS[session]


def registered_pipelines(project: Path) -> set[str]:
    """The names ``register_pipelines`` returns, all of them (bootstrapping drops any filter
    an earlier ``session.run(pipeline_names=...)`` left on Kedro's lazy ``pipelines``)."""
    bootstrap_project(project)
    return set(pipelines)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def viz_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_viz_build(tmp_path_factory)


def test_build_writes_the_static_site(viz_build: Path):
    assert (viz_build / "index.html").is_file()
    main = read_json(viz_build / "api" / "main")
    assert {"nodes", "edges", "layers", "pipelines", "selected_pipeline"} <= set(main)
    assert main["nodes"], "the export holds no node"


def test_export_lists_every_registered_pipeline(viz_build: Path):
    registered = registered_pipelines(viz_build.parent)
    assert "boston" in registered
    main = read_json(viz_build / "api" / "main")
    assert {p["id"] for p in main["pipelines"]} == registered
    assert {p.name for p in (viz_build / "api" / "pipelines").iterdir()} == registered
    for name in registered:
        tasks = [
            n
            for n in read_json(viz_build / "api" / "pipelines" / name)["nodes"]
            if n["type"] == "task"
        ]
        assert tasks, f"pipeline {name!r} is exported without a node"


def test_every_dataset_has_a_layer(viz_build: Path):
    exports = [viz_build / "api" / "main", *(viz_build / "api" / "pipelines").iterdir()]
    missing = sorted(
        {
            f"{node['name']} ({', '.join(node['pipelines'])})"
            for export in exports
            for node in read_json(export)["nodes"]
            if node["type"] == "data" and not node.get("layer")
        }
    )
    assert not missing, f"datasets without a kedro-viz layer: {missing}"


def test_boston_export_holds_its_nodes(viz_build: Path):
    boston = read_json(viz_build / "api" / "pipelines" / "boston")
    tasks = {n["name"] for n in boston["nodes"] if n["type"] == "task"}
    assert tasks >= BOSTON_TASKS
    assert boston["selected_pipeline"] == "boston"
