"""The ``fashion_mnist`` pipeline: load → split → preprocess → train → evaluate → plot."""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Node, Pipeline

from linear_nets.pipelines.fashion_mnist.nodes import (
    evaluate_softmax_regression,
    load_fashion_mnist,
    package_fashion_pyfunc_model,
    plot_fashion_mnist_confusion_matrix,
    plot_fashion_mnist_curves,
    plot_fashion_mnist_predictions,
    preprocess_fashion_mnist,
    split_fashion_mnist,
    train_softmax_regression,
)

FEATURES = tuple(
    f"fashion_mnist_{name}" for name in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")
)


def create_pipeline(**kwargs: Any) -> Pipeline:
    """Softmax regression on Fashion-MNIST, selected on validation, tested once, tracked in MLflow.

    Returns:
        The pipeline, from the raw IDX archives to the metrics, the model and three figures.
    """
    X_train, y_train, X_val, y_val, X_test, y_test = FEATURES
    return Pipeline(
        [
            Node(
                func=load_fashion_mnist,
                inputs=["fashion_mnist_source", "params:fashion_mnist.source"],
                outputs="fashion_mnist_raw",
                name="load_fashion_mnist",
            ),
            Node(
                func=split_fashion_mnist,
                inputs=["fashion_mnist_raw", "params:fashion_mnist.split"],
                outputs="fashion_mnist_splits",
                name="split_fashion_mnist",
            ),
            Node(
                func=preprocess_fashion_mnist,
                inputs=["fashion_mnist_splits", "params:fashion_mnist.preprocess"],
                outputs=[*FEATURES, "fashion_mnist_pixel_statistics"],
                name="preprocess_fashion_mnist",
            ),
            Node(
                func=train_softmax_regression,
                inputs={
                    "X_train": X_train,
                    "y_train": y_train,
                    "X_val": X_val,
                    "y_val": y_val,
                    "model": "params:fashion_mnist.model",
                    "params": "params:fashion_mnist.train",
                },
                outputs=["fashion_mnist_model", "fashion_mnist_history"],
                name="train_softmax_regression",
            ),
            Node(
                func=evaluate_softmax_regression,
                inputs=["fashion_mnist_model", X_test, y_test, "params:fashion_mnist.model"],
                outputs=[
                    "fashion_mnist_test_predictions",
                    "fashion_mnist_confusion_matrix",
                    "fashion_mnist_test_metrics",
                ],
                name="evaluate_softmax_regression",
            ),
            Node(
                func=plot_fashion_mnist_curves,
                inputs=[
                    "fashion_mnist_history",
                    "fashion_mnist_test_metrics",
                    "params:fashion_mnist.train",
                ],
                outputs="fashion_mnist_curves_plot",
                name="plot_fashion_mnist_curves",
            ),
            Node(
                func=plot_fashion_mnist_confusion_matrix,
                inputs="fashion_mnist_confusion_matrix",
                outputs="fashion_mnist_confusion_matrix_plot",
                name="plot_fashion_mnist_confusion_matrix",
            ),
            Node(
                func=plot_fashion_mnist_predictions,
                inputs=[
                    "fashion_mnist_raw",
                    "fashion_mnist_test_predictions",
                    "params:fashion_mnist.report",
                ],
                outputs="fashion_mnist_predictions_plot",
                name="plot_fashion_mnist_predictions",
            ),
            Node(
                func=package_fashion_pyfunc_model,
                inputs={
                    "state_dict": "fashion_mnist_model",
                    "splits": "fashion_mnist_splits",
                    "statistics": "fashion_mnist_pixel_statistics",
                    "X_train": X_train,
                    "history": "fashion_mnist_history",
                    "model": "params:fashion_mnist.model",
                    "preprocess": "params:fashion_mnist.preprocess",
                    "registry": "params:fashion_mnist.registry",
                },
                outputs="fashion_mnist_pyfunc_model",
                name="package_fashion_pyfunc_model",
            ),
        ]
    )
