"""Project settings: the Kedro defaults plus the project's hooks.

See https://docs.kedro.org/en/stable/configure/configuration_basics/ for every option.
"""

from omegaconf.resolvers import oc

from linear_nets.datasets.partial_saves import PartialSaveHook
from linear_nets.hooks import RunSummaryHook
from linear_nets.params_check import ParameterKeysHook
from linear_nets.process import set_up
from linear_nets.startup import StartupHook
from linear_nets.tracking.hook import MlflowTrackingHook

set_up()  # done already by the CLI (the kedro.init entry point); here for notebooks and tests

# Hooks run in last-in-first-out order: the parameter check runs first, then the MLflow hook
# opens the run before the summary looks for it (and publishes before the summary reads it).
HOOKS = (StartupHook(), RunSummaryHook(), MlflowTrackingHook(), ParameterKeysHook())
HOOKS += (PartialSaveHook(),)  # removes what a save that stopped half-way wrote
# The project owns the MLflow run's lifecycle (linear_nets.tracking.hook); kedro-mlflow stays
# for its mlflow.yml, `kedro mlflow ui` and its registry dataset.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow", "kedro-mlflow")

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Deep-merge conf/local over conf/base parameters. With Kedro's default ("destructive"),
    # any conf/local/parameters*.yml makes `--params boston.train.lr=...` replace the whole
    # `boston` block, because runtime params are merged into the env layer first.
    "merge_strategy": {"parameters": "soft"},
    # ${oc.env:...} beyond credentials: conf/team/mlflow.yml reads the tracking server's address
    "custom_resolvers": {"oc.env": oc.env},
}
