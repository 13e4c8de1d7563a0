"""linear-nets: Kedro pipelines that train PyTorch linear models and track them with MLflow."""

from linear_nets.terminal import install_filters

__version__ = "0.1.0"

# Before any command imports MLflow, OmegaConf or the pipelines (see terminal.py).
install_filters()
