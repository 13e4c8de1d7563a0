"""The ``fashion_mnist`` pipeline: load → scale → train → evaluate → plot."""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Node, Pipeline

from linear_nets.pipelines.fashion_mnist.nodes import (
    evaluate_softmax_regression,
    load_fashion_mnist,
    plot_confusion_matrix,
    plot_test_predictions,
    plot_training_curves,
    scale_images,
    train_softmax_regression,
)

TEST_SPLIT = ("fashion_mnist_X_test", "fashion_mnist_y_test")


def create_pipeline(**kwargs: Any) -> Pipeline:
    """Softmax regression on Fashion-MNIST, tracked in MLflow.

    Returns:
        The pipeline, from the raw IDX files to the metrics, the model and three figures.
    """
    return Pipeline(
        [
            Node(
                func=load_fashion_mnist,
                inputs=["fashion_mnist_source", "params:fashion_mnist.source"],
                outputs="fashion_mnist_raw",
                name="load_fashion_mnist",
            ),
            Node(
                func=scale_images,
                inputs=["fashion_mnist_raw", "params:fashion_mnist.preprocess"],
                outputs=["fashion_mnist_X_train", "fashion_mnist_y_train", *TEST_SPLIT],
                name="scale_fashion_mnist_images",
            ),
            Node(
                func=train_softmax_regression,
                inputs={
                    "X_train": "fashion_mnist_X_train",
                    "y_train": "fashion_mnist_y_train",
                    "X_test": TEST_SPLIT[0],
                    "y_test": TEST_SPLIT[1],
                    "model": "params:fashion_mnist.model",
                    "params": "params:fashion_mnist.train",
                },
                outputs=["fashion_mnist_model", "fashion_mnist_history"],
                name="train_softmax_regression",
            ),
            Node(
                func=evaluate_softmax_regression,
                inputs=["fashion_mnist_model", *TEST_SPLIT, "params:fashion_mnist.model"],
                outputs=[
                    "fashion_mnist_test_predictions",
                    "fashion_mnist_confusion_matrix",
                    "fashion_mnist_test_metrics",
                ],
                name="evaluate_softmax_regression",
            ),
            Node(
                func=plot_training_curves,
                inputs="fashion_mnist_history",
                outputs="fashion_mnist_curves_plot",
                name="plot_fashion_mnist_training_curves",
            ),
            Node(
                func=plot_confusion_matrix,
                inputs="fashion_mnist_confusion_matrix",
                outputs="fashion_mnist_confusion_matrix_plot",
                name="plot_fashion_mnist_confusion_matrix",
            ),
            Node(
                func=plot_test_predictions,
                inputs=[
                    "fashion_mnist_raw",
                    "fashion_mnist_test_predictions",
                    "params:fashion_mnist.report",
                ],
                outputs="fashion_mnist_predictions_plot",
                name="plot_fashion_mnist_test_predictions",
            ),
        ]
    )
