"""generate partitions → streamed QR least squares → streamed (optionally DDP) training → gap."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from .nodes import (
    evaluate_large_model,
    generate_large_data,
    solve_streamed_least_squares,
    train_large_model,
)


def create_pipeline(**kwargs) -> Pipeline:
    """The ``synthetic_large`` pipeline."""
    return Pipeline(
        [
            Node(
                func=generate_large_data,
                inputs="params:synthetic_large.data",
                outputs="synthetic_large_data",
                name="generate_large_data",
            ),
            Node(
                func=solve_streamed_least_squares,
                inputs="synthetic_large_data",
                outputs="synthetic_large_least_squares",
                name="solve_streamed_least_squares",
            ),
            Node(
                func=train_large_model,
                inputs=[
                    "synthetic_large_data",
                    "synthetic_large_least_squares",
                    "params:synthetic_large.model",
                    "params:synthetic_large.train",
                ],
                outputs=["synthetic_large_model", "synthetic_large_history"],
                name="train_large_model",
            ),
            Node(
                func=evaluate_large_model,
                inputs=[
                    "synthetic_large_model",
                    "synthetic_large_least_squares",
                    "params:synthetic_large.data",
                ],
                outputs=["synthetic_large_metrics", "synthetic_large_report"],
                name="evaluate_large_model",
            ),
        ]
    )
