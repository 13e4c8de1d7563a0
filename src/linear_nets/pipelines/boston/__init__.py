"""Boston housing: download, parse, split, standardize, train, evaluate, report."""

from linear_nets.pipelines.boston.pipeline import create_pipeline

__all__ = ["create_pipeline"]
