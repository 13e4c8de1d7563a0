"""Project settings: the Kedro defaults plus the project's hooks.

See https://docs.kedro.org/en/stable/configure/configuration_basics/ for every option.
"""

from linear_nets.hooks import MlflowRunDetailsHook, RunSummaryHook

# Hooks run in last-in-first-out order; kedro-mlflow's hook is registered by its plugin.
HOOKS = (MlflowRunDetailsHook(), RunSummaryHook())

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Deep-merge conf/local over conf/base parameters. With Kedro's default ("destructive"),
    # any conf/local/parameters*.yml makes `--params boston.train.lr=...` replace the whole
    # `boston` block, because runtime params are merged into the env layer first.
    "merge_strategy": {"parameters": "soft"},
}
