"""Sweep MSE(w) over a grid → descend from w0 → metrics and plots."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from .nodes import (
    plot_descent_loss,
    plot_mse_landscape,
    run_gradient_descent,
    summarize_landscape,
    sweep_mse,
)


def create_pipeline(**kwargs) -> Pipeline:
    """The ``landscape`` pipeline."""
    return Pipeline(
        [
            Node(
                func=sweep_mse,
                inputs=["params:landscape.data", "params:landscape.grid"],
                outputs="landscape_grid",
                name="sweep_mse_over_w",
            ),
            Node(
                func=run_gradient_descent,
                inputs=["params:landscape.data", "params:landscape.descent"],
                outputs="landscape_trace",
                name="run_gradient_descent",
            ),
            Node(
                func=summarize_landscape,
                inputs=["landscape_grid", "landscape_trace"],
                outputs=["landscape_metrics", "landscape_history"],
                name="summarize_landscape",
            ),
            Node(
                func=plot_mse_landscape,
                inputs=["landscape_grid", "landscape_trace"],
                outputs="landscape_mse_plot",
                name="plot_mse_landscape",
            ),
            Node(
                func=plot_descent_loss,
                inputs="landscape_trace",
                outputs="landscape_loss_plot",
                name="plot_descent_loss",
            ),
        ]
    )
