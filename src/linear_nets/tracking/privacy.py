"""No telemetry and no update checks unless the user opts in.

MLflow sends usage telemetry (and resolves its telemetry host) on every run and in the UI,
kedro-telemetry reports commands, and ``kedro viz run`` asks the Python package index whether
a newer kedro-viz exists. :func:`keep_private`, called from ``settings.py`` (imported by every
``kedro`` command before any of them loads), switches all three off. ``LINEAR_NETS_TELEMETRY=on``
leaves every component at its own default.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from types import ModuleType
from typing import Any

OPT_IN = "LINEAR_NETS_TELEMETRY"
SWITCHES = {
    "MLFLOW_DISABLE_TELEMETRY": "true",  # MLflow's usage telemetry
    "KEDRO_DISABLE_TELEMETRY": "true",  # kedro-telemetry (also off through .telemetry)
    "DO_NOT_TRACK": "true",  # the cross-tool convention both of them honour
}
_KEDRO_VIZ_PYPI = "kedro_viz.integrations.pypi"


def opted_in() -> bool:
    return os.environ.get(OPT_IN, "").lower() in {"1", "true", "on", "yes"}


def keep_private() -> None:
    """Switch telemetry and kedro-viz's update check off, unless the user opted in."""
    if opted_in():
        return
    for name, value in SWITCHES.items():
        os.environ.setdefault(name, value)
    if _KEDRO_VIZ_PYPI in sys.modules:
        _no_update_check(sys.modules[_KEDRO_VIZ_PYPI])
    elif not any(isinstance(finder, _PatchKedroViz) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PatchKedroViz())


def _latest_version_unknown() -> None:
    """kedro-viz's ``get_latest_version`` without the request: no newer version known."""
    return None


def _no_update_check(module: ModuleType) -> None:
    module.get_latest_version = _latest_version_unknown


class _PatchKedroViz(importlib.abc.MetaPathFinder):
    """Import ``kedro_viz.integrations.pypi`` as usual, then replace its PyPI lookup.

    kedro-viz has no setting for it; its CLI and its ``/api/version`` endpoint both call it.
    """

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != _KEDRO_VIZ_PYPI:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            _no_update_check(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec
