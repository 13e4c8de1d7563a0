"""The modular regression pipeline, instantiated per data set with a Kedro namespace."""

from linear_nets.pipelines.regression.pipeline import create_pipeline

__all__ = ["create_pipeline"]
