"""MSE(w) over a grid for y = 2x, and the gradient-descent path down it."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
