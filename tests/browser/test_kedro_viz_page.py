"""The static `kedro viz build` site, opened in headless Chromium: does it draw the boston graph?

The JSON export can be right while the page stays blank (a missing asset, an API file the app
cannot parse); only a browser shows that.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.browser import Chromium
from tests.support import BOSTON_TASKS

pytestmark = pytest.mark.browser


def pretty(name: str) -> str:
    """kedro-viz's "pretty name" setting: ``train_linear_model`` -> ``Train Linear Model``."""
    return re.sub(r"(^|\s)\S", lambda m: m.group().upper(), re.sub(r"[-_.]", " ", name))


class FlowchartNodes(HTMLParser):
    """The nodes drawn in kedro-viz's flowchart: each is an SVG ``<g class="pipeline-node">``
    (with ``data-node-fullname``) around a ``<text class="pipeline-node__text">`` label."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.full_names: set[str] = set()
        self.labels: set[str] = set()
        self._in_label = False
        self.feed(dom)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if tag == "g" and "pipeline-node" in classes and attributes.get("data-node-fullname"):
            self.full_names.add(attributes["data-node-fullname"] or "")
        self._in_label = tag == "text" and "pipeline-node__text" in classes

    def handle_endtag(self, tag: str) -> None:
        if tag == "text":
            self._in_label = False

    def handle_data(self, data: str) -> None:
        if self._in_label and data.strip():
            self.labels.add(data.strip())

    def shows(self, name: str) -> bool:
        return name in self.full_names or name in self.labels or pretty(name) in self.labels


def tasks(build: Path, pipeline: str) -> set[str]:
    export = json.loads((build / "api" / "pipelines" / pipeline).read_text())
    return {node["name"] for node in export["nodes"] if node["type"] == "task"}


def test_boston_graph_shows_its_nodes(
    chromium: Chromium, viz_site: str, viz_build_dir: Path, tmp_path: Path
):
    boston = tasks(viz_build_dir, "boston")
    assert boston >= BOSTON_TASKS
    others = (
        set().union(
            *(tasks(viz_build_dir, p.name) for p in (viz_build_dir / "api" / "pipelines").iterdir())
        )
        - boston
    )
    url = f"{viz_site}/?pid=boston"

    # boston is the regression template under the namespace "boston": kedro-viz draws a namespace
    # collapsed, as one node named after it, beside the datasets the instance shares
    drawn = {"boston"}
    dom = chromium.wait_for_dom(url, lambda d: all(map(FlowchartNodes(d).shows, drawn)))

    graph = FlowchartNodes(dom)
    missing = sorted(name for name in drawn if not graph.shows(name))
    foreign = sorted(name for name in others if graph.shows(name))
    if missing or foreign:
        shot = chromium.screenshot(url, tmp_path / "kedro_viz_boston.png")
        pytest.fail(
            f"boston flowchart: missing {missing}, from other pipelines {foreign}; "
            f"drawn {sorted(graph.full_names or graph.labels)}; screenshot {shot}"
        )


class LayerNames(HTMLParser):
    """The layer bands' labels kedro-viz draws beside the flowchart (``pipeline-layer-name``);
    none at all when it found the layers circular."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.names: list[str] = []
        self._depth = 0
        self.feed(dom)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if self._depth:
            self._depth += 1
        elif "pipeline-layer-name" in classes:  # <li data-id="layer-label--raw">raw</li>
            self._depth = 1
            self.names.append((dict(attrs).get("data-id") or "").removeprefix("layer-label--"))

    def handle_endtag(self, tag: str) -> None:
        if self._depth:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._depth and not self.names[-1]:
            self.names[-1] = data.strip()

    def shown(self) -> set[str]:
        """The labels as layer names: ``Model Registry`` -> ``model_registry``."""
        return {re.sub(r"\s+", "_", name.strip().lower()) for name in self.names if name.strip()}


def test_boston_graph_draws_its_layers(chromium: Chromium, viz_site: str, tmp_path: Path):
    # the modular pipeline expanded (kedro-viz's own URL parameter): its inner layers show too
    url = f"{viz_site}/?pid=boston&expandAllPipelines=true"
    expected = {"raw", "model_input", "models", "reporting", "model_registry"}
    dom = chromium.wait_for_dom(url, lambda d: expected <= LayerNames(d).shown())
    shown = LayerNames(dom).shown()
    if not expected <= shown:
        shot = chromium.screenshot(url, tmp_path / "kedro_viz_layers.png")
        pytest.fail(f"layer bands: expected {sorted(expected)}, drawn {sorted(shown)}; {shot}")
