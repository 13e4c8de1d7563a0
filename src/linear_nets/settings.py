"""Project settings: the Kedro defaults plus the project's hooks.

See https://docs.kedro.org/en/stable/configure/configuration_basics/ for every option.
"""

import os

from omegaconf.resolvers import oc

from linear_nets.hooks import RunSummaryHook
from linear_nets.params_check import ParameterKeysHook
from linear_nets.startup import StartupHook, defer_collections
from linear_nets.tracking.hook import MlflowTrackingHook
from linear_nets.tracking.http_limits import apply_http_limits
from linear_nets.tracking.privacy import keep_private

defer_collections()  # until the pipelines or the catalog exist: see startup.py
apply_http_limits()  # a dead tracking server fails a run within a minute: see http_limits.py
keep_private()  # no telemetry or update checks, in every kedro command (LINEAR_NETS_TELEMETRY=on)
# mlflow.start_run imports IPython on every run to look for a Databricks job to resume (~0.9 s);
# this project never runs as one
os.environ.setdefault("MLFLOW_ENABLE_SGC_RUN_RESUMPTION_FOR_DATABRICKS_JOBS", "false")

# Hooks run in last-in-first-out order: the MLflow hook opens the run before the others look
# for it. It drives kedro-mlflow's own hook, whose automatic registration is disabled here.
HOOKS = (StartupHook(), RunSummaryHook(), MlflowTrackingHook(), ParameterKeysHook())
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
