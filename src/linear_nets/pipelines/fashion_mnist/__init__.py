"""Softmax regression on Fashion-MNIST: torchvision download → tensors → training → report."""

from linear_nets.pipelines.fashion_mnist.pipeline import create_pipeline

__all__ = ["create_pipeline"]
