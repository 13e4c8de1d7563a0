"""Project pipelines."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

from linear_nets.startup import end_startup

DEFAULT_PIPELINE = "boston"
TEMPLATES = ("regression",)
"""Modular pipelines that only run inside an instance (``boston``, ``tabular``), not alone."""


def register_pipelines() -> dict[str, Pipeline]:
    """Register every pipeline under ``pipelines/``; a bare ``kedro run`` runs ``boston``.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects.
    """
    pipelines = find_pipelines(raise_errors=True)
    for template in TEMPLATES:
        pipelines.pop(template, None)
    # Kedro 1.7 imports only the pipelines a run names, so boston is absent from e.g.
    # `kedro run --pipelines=synthetic`; a bare `kedro run` loads them all.
    if DEFAULT_PIPELINE in pipelines:
        pipelines["__default__"] = pipelines[DEFAULT_PIPELINE]
    end_startup()  # the pipelines' imports (torch) are done: collect at Python's pace again
    return pipelines
