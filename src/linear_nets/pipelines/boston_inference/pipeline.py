"""The boston_inference pipeline: run it after ``kedro run --pipeline=boston``."""

from kedro.pipeline import Node, Pipeline

from linear_nets.pipelines.boston_inference.nodes import predict_prices


def create_pipeline(**kwargs) -> Pipeline:
    """New raw rows + ``models:/boston_linear_regression@champion`` → predictions."""
    return Pipeline(
        [
            Node(
                func=predict_prices,
                inputs=["boston_new_rows", "boston_champion_model"],
                outputs="boston_new_predictions",
                name="predict_prices",
            )
        ]
    )
