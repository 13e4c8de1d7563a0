"""y = Xw + b + noise at any size: Parquet partitions, streamed training, streamed optimum."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
