"""The boston pipeline: the StatLib file → the modular regression pipeline, as ``boston``."""

from kedro.pipeline import Node, Pipeline

from linear_nets.pipelines.boston.nodes import download_boston_data, parse_statlib_records
from linear_nets.pipelines.regression import create_pipeline as create_regression_pipeline


def create_pipeline(**kwargs) -> Pipeline:
    """Download → parse, then split → standardize → train → evaluate → report → package.

    Everything lives in the ``boston`` namespace: datasets ``boston.*`` (files
    ``data/*/boston_*`` through the catalog's factories) and parameters ``params:boston.*``.
    """
    statlib = Pipeline(
        [
            Node(
                func=download_boston_data,
                inputs=["source", "params:source"],
                outputs="raw",
                name="download_boston_data",
            ),
            Node(
                func=parse_statlib_records,
                inputs="raw",
                outputs="table",
                name="parse_statlib_records",
            ),
        ]
    )
    regression = create_regression_pipeline(namespace="boston")
    return Pipeline([statlib, regression], namespace="boston")
