"""linear-nets: Kedro pipelines that train PyTorch linear models and track them with MLflow."""

__version__ = "0.1.0"
