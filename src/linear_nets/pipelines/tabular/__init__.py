"""Linear regression on the user's own CSV or Parquet file."""

from linear_nets.pipelines.tabular.pipeline import create_pipeline

__all__ = ["create_pipeline"]
