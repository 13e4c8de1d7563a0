"""Custom Kedro datasets, only where kedro-datasets and kedro-mlflow have none."""

from linear_nets.datasets.fashion_mnist import FashionMNISTDataset, FashionMNISTFileError
from linear_nets.datasets.mlflow_metrics import MlflowMetricsDataset
from linear_nets.datasets.mlflow_pyfunc import MlflowPyfuncModelDataset
from linear_nets.datasets.remote_file import ChecksumMismatchError, RemoteFile, RemoteFileDataset

__all__ = [
    "ChecksumMismatchError",
    "FashionMNISTDataset",
    "FashionMNISTFileError",
    "MlflowMetricsDataset",
    "MlflowPyfuncModelDataset",
    "RemoteFile",
    "RemoteFileDataset",
]
