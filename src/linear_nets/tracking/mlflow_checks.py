"""Two checks MLflow makes on every run, answered without their import and scan cost (issue #11).

Both answers are the ones MLflow's own code would give; only the work to find them is skipped:

- **Is this a Jupyter or Databricks notebook?** ``mlflow.start_run`` asks, for its source tags,
  by importing IPython (half a second with the dev tools installed) and calling
  ``get_ipython()``. That returns a shell only when IPython has already created one, which it
  cannot have done without being imported, so a process that never imported IPython gets "no"
  at once (:func:`skip_notebook_probes_without_ipython`). In a notebook or ``kedro ipython``
  the original checks run.
- **Does this environment satisfy the model's pins?** Logging a model makes MLflow compare each
  pinned requirement with the installed version, after mapping every installed distribution's
  files to its modules (a third of a second on this project's 230 packages). When the pins were
  just read from this environment's own metadata, each comparison is a version with itself;
  :func:`pins_read_from_this_environment` skips it for that one ``log_model`` call. Pins a user
  passes in, and loading a model later, are still checked.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_MARK = "_linear_nets_fast_path"


def skip_notebook_probes_without_ipython() -> None:
    """Make MLflow's notebook probes answer "not a notebook" without importing IPython when no
    code in this process has imported it (idempotent)."""
    from mlflow.tracking.context import jupyter_notebook_context as jupyter
    from mlflow.utils import databricks_utils as databricks

    # each original imports IPython to call get_ipython(), and gives up when it returns None
    _when_ipython_imported(jupyter, "is_running_in_ipython_environment", lambda: False)
    no_dbutils = getattr(databricks, "_NoDbutilsError", None)  # what _get_dbutils raises then
    if no_dbutils is not None:
        _when_ipython_imported(databricks, "_get_dbutils", functools.partial(_raise, no_dbutils))


def _raise(error: type[Exception]) -> Any:
    raise error


def _when_ipython_imported(module: Any, name: str, otherwise: Callable[[], Any]) -> None:
    """Replace ``module.name`` by a function that calls it only once IPython is imported."""
    original = getattr(module, name, None)
    if original is None or getattr(original, _MARK, False):
        return  # gone in another MLflow version: its own check runs (tests/tracking tell)

    @functools.wraps(original)
    def probe() -> Any:
        # get_ipython() returns a shell only after IPython created one, which needs IPython loaded
        return original() if "IPython" in sys.modules else otherwise()

    setattr(probe, _MARK, True)
    setattr(module, name, probe)


@contextmanager
def pins_read_from_this_environment() -> Iterator[None]:
    """Within: MLflow skips comparing a model's pins with the installed versions. Only for pins
    taken from ``importlib.metadata`` of this very environment, which match by construction."""
    import mlflow.pyfunc
    import mlflow.utils.environment

    modules = (mlflow.utils.environment, mlflow.pyfunc)
    name = "warn_dependency_requirement_mismatches"
    before: dict[Any, Callable[..., Any]] = {
        module: getattr(module, name) for module in modules if hasattr(module, name)
    }
    for module in before:
        setattr(module, name, _satisfied)
    try:
        yield
    finally:
        for module, original in before.items():
            setattr(module, name, original)


def _satisfied(model_requirements: list[str]) -> None:
    """MLflow's mismatch warning for pins that are this environment's versions: nothing to say."""
