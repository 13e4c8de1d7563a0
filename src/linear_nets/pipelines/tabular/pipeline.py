"""The tabular pipeline: the user's file → the modular regression pipeline, as ``tabular``."""

from kedro.pipeline import Node, Pipeline

from linear_nets.pipelines.regression import create_pipeline as create_regression_pipeline
from linear_nets.pipelines.tabular.nodes import prepare_tabular_table


def create_pipeline(**kwargs) -> Pipeline:
    """Check the file's columns, then split → standardize → train → evaluate → report → package.

    Everything lives in the ``tabular`` namespace: datasets ``tabular.*`` and parameters
    ``params:tabular.*``; ``tabular.source`` reads the file named by ``tabular.source.filepath``.
    """
    checks = Pipeline(
        [
            Node(
                func=prepare_tabular_table,
                inputs=["source", "params:source", "params:target", "params:features"],
                outputs="table",
                name="prepare_tabular_table",
            )
        ]
    )
    regression = create_regression_pipeline(namespace="tabular")
    return Pipeline([checks, regression], namespace="tabular")
