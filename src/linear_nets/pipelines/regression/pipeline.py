"""split → standardize → train, cross-validate → evaluate → report → package, for any table.

Not run on its own: each data set instantiates it under its namespace, e.g.
``Pipeline([front_nodes, create_pipeline(namespace="boston")], namespace="boston")``, so
``table`` becomes ``boston.table``, ``params:train`` becomes ``params:boston.train`` and the
catalog's ``{namespace}.*`` factories give every instance its own files. The nodes are told
the namespace too, so that their errors name ``boston.train.lr``, not ``train.lr``.
"""

from collections.abc import Callable
from functools import partial, update_wrapper
from typing import Any

from kedro.pipeline import Node, Pipeline

from linear_nets.pipelines.regression.nodes import (
    cross_validate,
    evaluate_model,
    package_pyfunc_model,
    plot_coefficients,
    plot_report,
    split_train_test,
    standardize_features,
    tabulate_coefficients,
    train_linear_model,
)


def _in_namespace(func: Callable[..., Any], namespace: str | None) -> Callable[..., Any]:
    """``func`` with ``namespace`` bound; still ``func`` to Kedro (name, signature, type hints,
    so its ``params:`` inputs are validated) and to kedro-viz (its source)."""
    return update_wrapper(partial(func, namespace=namespace), func)


def create_pipeline(namespace: str | None = None, **kwargs) -> Pipeline:
    """The template: ``table`` (features, then the target) → trained, reported model.

    Args:
        namespace: the namespace the caller puts the nodes under, named in their errors.
    """
    return Pipeline(
        [
            Node(
                func=split_train_test,
                inputs=["table", "params:split"],
                outputs=["train_rows", "test_rows"],
                name="split_train_test",
            ),
            Node(
                func=standardize_features,
                inputs=["train_rows", "test_rows"],
                outputs=["scaler", "train_scaled", "test_scaled"],
                name="standardize_features",
            ),
            Node(
                func=_in_namespace(train_linear_model, namespace),
                inputs=["train_scaled", "scaler", "params:model", "params:train"],
                outputs=["model", "model_scaler", "history"],
                name="train_linear_model",
            ),
            Node(
                func=_in_namespace(cross_validate, namespace),
                inputs=["train_rows", "params:model", "params:train", "params:split"],
                outputs="cross_validation",
                name="cross_validate",
            ),
            Node(
                func=evaluate_model,
                inputs=["model", "train_scaled", "test_scaled", "cross_validation"],
                outputs=["metrics", "evaluation", "test_predictions"],
                name="evaluate_model",
            ),
            Node(
                func=tabulate_coefficients,
                inputs=["model", "model_scaler", "train_rows"],
                outputs="coefficients",
                name="tabulate_coefficients",
            ),
            Node(
                func=_in_namespace(package_pyfunc_model, namespace),
                inputs={
                    "scaler": "model_scaler",
                    "state_dict": "model",
                    "test_rows": "test_rows",
                    "train_rows": "train_rows",
                    "metrics": "metrics",
                    "history": "history",
                    "training": "params:train",
                    "registry": "params:registry",
                },
                outputs="pyfunc_model",
                name="package_pyfunc_model",
            ),
            Node(
                func=plot_report,
                inputs=["history", "test_predictions", "evaluation", "params:train"],
                outputs=["loss_curve_plot", "predictions_plot", "residuals_plot"],
                name="plot_report",
            ),
            Node(
                func=plot_coefficients,
                inputs=["coefficients", "model_scaler"],
                outputs="coefficients_plot",
                name="plot_coefficients",
            ),
        ]
    )
