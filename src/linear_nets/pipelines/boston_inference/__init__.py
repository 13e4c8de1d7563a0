"""Boston inference: new raw rows → predictions with the registered @champion model."""

from linear_nets.pipelines.boston_inference.pipeline import create_pipeline

__all__ = ["create_pipeline"]
