"""The boston pipeline: StatLib file → trained, evaluated, reported linear regression."""

from kedro.pipeline import Node, Pipeline

from linear_nets.pipelines.boston.nodes import (
    download_data,
    evaluate_model,
    package_model,
    parse_statlib,
    plot_report,
    split_data,
    standardize_features,
    train_model,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Download → parse → split → standardize → train → evaluate → report."""
    return Pipeline(
        [
            Node(
                func=download_data,
                inputs=["boston_source", "params:boston.source"],
                outputs="boston_raw",
                name="download_boston_data",
            ),
            Node(
                func=parse_statlib,
                inputs="boston_raw",
                outputs="boston_table",
                name="parse_statlib_records",
            ),
            Node(
                func=split_data,
                inputs=["boston_table", "params:boston.split"],
                outputs=["boston_train", "boston_test"],
                name="split_train_test",
            ),
            Node(
                func=standardize_features,
                inputs=["boston_train", "boston_test"],
                outputs=["boston_scaler", "boston_train_scaled", "boston_test_scaled"],
                name="standardize_features",
            ),
            Node(
                func=train_model,
                inputs=[
                    "boston_train_scaled",
                    "boston_scaler",
                    "params:boston.model",
                    "params:boston.train",
                ],
                outputs=["boston_model", "boston_model_scaler", "boston_history"],
                name="train_linear_model",
            ),
            Node(
                func=evaluate_model,
                inputs=[
                    "boston_model",
                    "params:boston.model",
                    "boston_train_scaled",
                    "boston_test_scaled",
                ],
                outputs=["boston_metrics", "boston_evaluation", "boston_test_predictions"],
                name="evaluate_model",
            ),
            Node(
                func=package_model,
                inputs=["boston_model_scaler", "boston_model", "boston_test"],
                outputs="boston_pyfunc_model",
                name="package_pyfunc_model",
            ),
            Node(
                func=plot_report,
                inputs=["boston_history", "boston_test_predictions"],
                outputs=[
                    "boston_loss_curve_plot",
                    "boston_predictions_plot",
                    "boston_residuals_plot",
                ],
                name="plot_report",
            ),
        ]
    )
