"""MLflow "models from code" definition of a linear regression on raw feature rows.

MLflow runs this file when it loads the model; the package never imports it.
"""

from linear_nets.serving.model import set_python_model
from linear_nets.serving.regression import RegressionPredictor

set_python_model(RegressionPredictor)
