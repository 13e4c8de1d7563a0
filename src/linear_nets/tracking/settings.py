"""What ``conf/<env>/mlflow.yml`` says about where and how a run is recorded.

The file keeps kedro-mlflow's documented layout (``kedro mlflow ui`` reads it too); the
tracking hook reads the few keys it acts on through the config loader, as any project setting.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any

DEFAULT_URI = "sqlite:///mlflow.db"
DEFAULT_PREFIX = "linear_nets"
CONFIG_PATTERNS = ["mlflow*", "mlflow*/**", "**/mlflow*"]


@dataclass(frozen=True)
class TrackingSettings:
    """Where runs go, which pipelines are not tracked, and the experiment prefix.

    Attributes:
        uri: the tracking URI (``sqlite:///mlflow.db``, ``http://host:port``).
        registry_uri: the model registry's URI, ``None`` for the tracking URI.
        experiment_prefix: runs of pipeline ``p`` go to experiment ``<prefix>.<p>``.
        untracked: pipelines that open no MLflow run (predictions only).
        credentials: ``server.credentials`` entry of ``credentials.yml``: environment
            variables (``MLFLOW_TRACKING_USERNAME``, ...) for the client, as kedro-mlflow
            documents it.
    """

    uri: str = DEFAULT_URI
    registry_uri: str | None = None
    experiment_prefix: str = DEFAULT_PREFIX
    untracked: frozenset[str] = frozenset()
    credentials: tuple[tuple[str, str], ...] = ()
    conf: dict[str, Any] = field(default_factory=dict, compare=False)

    def tracks(self, pipeline_names: list[str]) -> bool:
        """Whether a run of these pipelines is recorded (any one not listed as untracked)."""
        return not set(pipeline_names) <= self.untracked

    def experiment(self, pipeline_names: list[str]) -> str:
        return f"{self.experiment_prefix}.{'+'.join(pipeline_names)}"

    def export_credentials(self) -> None:
        """Put the credentials in the environment, where MLflow's client reads them; a
        variable the user set already wins."""
        for name, value in self.credentials:
            os.environ.setdefault(name, value)


def load(config_loader: Any) -> TrackingSettings:
    """The settings of the loader's environment; defaults where ``mlflow.yml`` is missing."""
    from kedro.config import MissingConfigException

    config_loader.config_patterns.setdefault("mlflow", CONFIG_PATTERNS)
    try:
        conf = dict(config_loader["mlflow"])
    except MissingConfigException:
        conf = {}
    server = dict(conf.get("server") or {})
    tracking = dict(conf.get("tracking") or {})
    experiment = dict(tracking.get("experiment") or {})
    disabled = dict(tracking.get("disable_tracking") or {})
    credentials: dict[str, Any] = {}
    if key := server.get("credentials"):
        # absent (a colleague who exports MLFLOW_TRACKING_USERNAME/PASSWORD instead): the
        # environment's variables are all the client needs
        with contextlib.suppress(MissingConfigException):
            credentials = dict(config_loader["credentials"].get(key) or {})
    return TrackingSettings(
        uri=str(server.get("mlflow_tracking_uri") or DEFAULT_URI),
        registry_uri=server.get("mlflow_registry_uri") or None,
        experiment_prefix=str(experiment.get("name") or DEFAULT_PREFIX),
        untracked=frozenset(disabled.get("pipelines") or ()),
        credentials=tuple((str(k), str(v)) for k, v in credentials.items()),
        conf=conf,
    )


def kedro_mlflow_config(tracking: TrackingSettings, uri: str) -> Any:
    """kedro-mlflow's own configuration model of ``mlflow.yml``, pointing at ``uri``: its CLI
    (``kedro mlflow ui``) reads it from ``context.mlflow``, where kedro-mlflow's hook, disabled
    in this project, would have put it."""
    from kedro_mlflow.config.kedro_mlflow_config import KedroMlflowConfig

    config = KedroMlflowConfig.model_validate(tracking.conf)
    config.server.mlflow_tracking_uri = uri
    return config
