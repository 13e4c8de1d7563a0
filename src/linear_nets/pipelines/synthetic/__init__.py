"""Generate y = Xw + b + noise, train on it and compare recovered with true parameters."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
