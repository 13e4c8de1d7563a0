"""The modular regression pipeline: one template, an instance per data set, each with its files."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from linear_nets.pipelines.regression import create_pipeline

TEMPLATE_NODES = [
    "split_train_test",
    "cross_validate",
    "standardize_features",
    "train_linear_model",
    "evaluate_model",
    "tabulate_coefficients",
    "package_pyfunc_model",
    "plot_coefficients",
    "plot_report",
]


def test_template_node_names_are_their_function_names():
    nodes = create_pipeline().nodes
    assert [node.name for node in nodes] == TEMPLATE_NODES
    assert all(node.name == node.func.__name__ for node in nodes)


def test_template_takes_a_table_and_four_parameter_blocks():
    template = create_pipeline()
    assert template.inputs() == {
        "table",
        "params:split",
        "params:model",
        "params:train",
        "params:registry",
    }


@pytest.mark.parametrize(
    ("instance", "front"),
    [
        ("boston", ["download_boston_data", "parse_statlib_records"]),
        ("tabular", ["prepare_tabular_table"]),
    ],
)
def test_each_instance_is_the_template_under_its_namespace(instance: str, front: list[str]):
    from kedro.framework.project import configure_project

    configure_project("linear_nets")
    nodes = pipelines[instance].nodes
    assert [node.name for node in nodes] == [
        f"{instance}.{name}" for name in front + TEMPLATE_NODES
    ]
    assert {node.namespace for node in nodes} == {instance}
    assert "regression" not in pipelines  # a template, not a pipeline to run


BOSTON_FILES = {
    "boston.source": "data/01_raw/boston.txt",
    "boston.table": "data/02_intermediate/boston_table.parquet",
    "boston.train_rows": "data/03_primary/boston_train.parquet",
    "boston.test_rows": "data/03_primary/boston_test.parquet",
    "boston.scaler": "data/05_model_input/boston_scaler.json",
    "boston.train_scaled": "data/05_model_input/boston_train_scaled.parquet",
    "boston.test_scaled": "data/05_model_input/boston_test_scaled.parquet",
    "boston.model": "data/06_models/boston_model.pt",
    "boston.model_scaler": "data/06_models/boston_model_scaler.json",
    "boston.history": "data/08_reporting/boston_history.json",
    "boston.metrics": "data/08_reporting/boston_metrics.json",
    "boston.evaluation": "data/08_reporting/boston_evaluation.json",
    "boston.cross_validation": "data/08_reporting/boston_cross_validation.json",
    "boston.test_predictions": "data/07_model_output/boston_test_predictions.csv",
    "boston.coefficients": "data/08_reporting/boston_coefficients.csv",
    "boston.loss_curve_plot": "data/08_reporting/boston_loss_curve.png",
    "boston.predictions_plot": "data/08_reporting/boston_predictions.png",
    "boston.residuals_plot": "data/08_reporting/boston_residuals.png",
    "boston.coefficients_plot": "data/08_reporting/boston_coefficients.png",
}


def _catalog(project: Path, params: dict | None = None):
    bootstrap_project(project)
    with KedroSession.create(project_path=project, runtime_params=params) as session:
        return session.load_context().catalog


def test_boston_keeps_its_file_names_and_every_dataset_has_a_layer(kedro_project: Path):
    catalog = _catalog(kedro_project)
    for name, path in BOSTON_FILES.items():
        assert str(catalog.get(name)._describe()["filepath"]).endswith(path), name
    for instance in ("boston", "tabular"):
        for name in pipelines[instance].datasets():
            if name.startswith("params:"):
                continue
            dataset = catalog.get(name)
            assert dataset is not None, name
            assert dataset.metadata["kedro-viz"]["layer"], name
    model = catalog.get("boston.pyfunc_model")._describe()
    assert model["registered_model_name"] == "boston_linear_regression"


def test_tabular_reads_the_file_and_name_given_on_the_command_line(kedro_project: Path):
    default = _catalog(kedro_project)
    assert (
        default.get("tabular.source")
        ._describe()["filepath"]
        .endswith("data/01_raw/example_houses.csv")
    )
    assert (
        default.get("tabular.pyfunc_model")._describe()["registered_model_name"]
        == "tabular_linear_regression"
    )
    given = _catalog(
        kedro_project,
        {
            "tabular": {
                "source": {"filepath": "/data/mine.parquet"},
                "registered_model_name": "mine",
            }
        },
    )
    assert given.get("tabular.source")._describe()["filepath"] == "/data/mine.parquet"
    assert given.get("tabular.pyfunc_model")._describe()["registered_model_name"] == "mine"
