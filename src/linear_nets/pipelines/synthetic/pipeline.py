"""generate → split → train → compare recovered with true parameters → plots."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from .nodes import (
    compare_recovered_parameters,
    generate_synthetic_data,
    plot_synthetic_fit,
    plot_synthetic_loss_curve,
    split_synthetic_data,
    train_synthetic_model,
)


def create_pipeline(**kwargs) -> Pipeline:
    """The ``synthetic`` pipeline."""
    return Pipeline(
        [
            Node(
                func=generate_synthetic_data,
                inputs="params:synthetic",
                outputs="synthetic_data",
                name="generate_synthetic_data",
            ),
            Node(
                func=split_synthetic_data,
                inputs=["synthetic_data", "params:synthetic"],
                outputs=["synthetic_train", "synthetic_val"],
                name="split_synthetic_data",
            ),
            Node(
                func=train_synthetic_model,
                inputs=["synthetic_train", "synthetic_val", "params:synthetic"],
                outputs=["synthetic_model", "synthetic_history", "synthetic_coefficients"],
                name="train_synthetic_model",
            ),
            Node(
                func=compare_recovered_parameters,
                inputs=["synthetic_coefficients", "synthetic_train", "params:synthetic"],
                outputs=["synthetic_metrics", "synthetic_report"],
                name="compare_recovered_parameters",
            ),
            Node(
                func=plot_synthetic_fit,
                inputs=["synthetic_train", "synthetic_coefficients", "params:synthetic"],
                outputs="synthetic_fit_plot",
                name="plot_synthetic_fit",
            ),
            Node(
                func=plot_synthetic_loss_curve,
                inputs=["synthetic_history", "params:synthetic"],
                outputs="synthetic_loss_plot",
                name="plot_synthetic_loss_curve",
            ),
        ]
    )
