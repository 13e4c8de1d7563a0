"""Project settings: the Kedro defaults plus the project's hooks.

See https://docs.kedro.org/en/stable/configure/configuration_basics/ for every option.
"""

from linear_nets.hooks import MlflowRunDetailsHook, RunSummaryHook

# Hooks run in last-in-first-out order; kedro-mlflow's hook is registered by its plugin.
HOOKS = (MlflowRunDetailsHook(), RunSummaryHook())

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
}
