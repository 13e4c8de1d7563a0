"""Boston inference: new raw rows → predictions with the persisted scaler and model."""

from linear_nets.pipelines.boston_inference.pipeline import create_pipeline

__all__ = ["create_pipeline"]
