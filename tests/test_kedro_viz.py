"""`kedro viz build` on a fresh copy of the project: the static export the README promises.

kedro-viz 12.5 writes ``build/index.html`` plus its API as JSON files: ``build/api/main`` (every
node, the layers and the list of pipelines) and ``build/api/pipelines/<id>`` (one per pipeline).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kedro.framework.project import pipelines
from kedro.framework.startup import bootstrap_project

from tests.support import BOSTON_TASKS


def registered_pipelines(project: Path) -> set[str]:
    """The names ``register_pipelines`` returns, all of them (bootstrapping drops any filter
    an earlier ``session.run(pipeline_names=...)`` left on Kedro's lazy ``pipelines``)."""
    bootstrap_project(project)
    return set(pipelines)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


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


def test_the_static_site_announces_no_update(viz_build: Path):
    """What ``kedro viz run --load-file build`` answers on /api/version: no banner."""
    version = read_json(viz_build / "api" / "version")
    assert version["is_outdated"] is False
    assert version["latest"] == version["installed"]


def test_boston_export_holds_its_nodes(viz_build: Path):
    boston = read_json(viz_build / "api" / "pipelines" / "boston")
    tasks = {n["name"] for n in boston["nodes"] if n["type"] == "task"}
    assert tasks >= BOSTON_TASKS
    assert boston["selected_pipeline"] == "boston"


# The order the README gives: a pipeline's data flows this way only, so kedro-viz can sort them.
LAYER_ORDER = (
    "raw",
    "intermediate",
    "primary",
    "model_input",
    "models",
    "model_output",
    "reporting",
    "model_registry",
)


def test_every_pipeline_shows_its_layers(viz_build: Path):
    """kedro-viz disables the layer bands (``layers: []`` in its API) when the datasets' layers
    form a cycle, e.g. a model in ``models`` built from ``reporting`` inputs."""
    for export in sorted((viz_build / "api" / "pipelines").iterdir()):
        pipeline = read_json(export)
        layers = pipeline["layers"]
        assert layers, f"kedro-viz shows no layers for {export.name!r} (a cycle among layers)"
        used = {n["layer"] for n in pipeline["nodes"] if n["type"] == "data" and n.get("layer")}
        assert used <= set(LAYER_ORDER), f"{export.name}: unknown layers {used - set(LAYER_ORDER)}"
        shown = [layer for layer in layers if layer in used]
        if export.name != "boston_inference":  # new rows and the @champion in, predictions out
            assert shown == [layer for layer in LAYER_ORDER if layer in used], export.name
    assert read_json(viz_build / "api" / "pipelines" / "boston")["layers"][-1] == "model_registry"
