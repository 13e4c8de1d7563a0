"""Project pipelines."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

DEFAULT_PIPELINE = "boston"


def register_pipelines() -> dict[str, Pipeline]:
    """Register every pipeline under ``pipelines/``; a bare ``kedro run`` runs ``boston``.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects.
    """
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = pipelines[DEFAULT_PIPELINE]
    return pipelines
