"""MLflow "models from code" definition of a softmax classifier on raw 0–255 pixel rows.

MLflow runs this file when it loads the model; the package never imports it.
"""

from linear_nets.serving.classifier import PixelClassifier
from linear_nets.serving.model import set_python_model

set_python_model(PixelClassifier)
