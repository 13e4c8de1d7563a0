"""Tell MLflow what a successful run produced: once, after the pipeline, in one place.

Nodes and datasets only write plain files. When the pipeline has succeeded the tracking hook
calls :func:`publish`, which reads what the run wrote through the catalog and, in this order:

1. logs each model package (:class:`~linear_nets.datasets.PyfuncPackageDataset`) as a models-
   from-code pyfunc model and registers it through the client, when the gate let it through
   (otherwise tags the run with the reason);
2. logs the files whose catalog entry says ``metadata: {mlflow: artifact}`` (plots, the
   coefficient table);
3. logs the metrics (:class:`~linear_nets.datasets.MetricsDataset`) with ``log_batch``, last
   but one, so that a run whose publishing failed carries no metrics;
4. moves ``@champion`` (:func:`linear_nets.tracking.registry.promote_run_model`).

If any step fails, or the process is interrupted meanwhile, :meth:`Publication.rollback`
deletes the versions this run registered and puts the aliases back, then deletes the models it
logged (their files too: a copy the full disk stopped half-way included) and the files it logged
to the run; the hook then ends the run FAILED (KILLED on a signal), so a failed run never leaves
a FINISHED run, a registered version, a moved ``@champion`` or a half-copied model behind.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ARTIFACT = "artifact"
"""``metadata: {mlflow: artifact}`` in the catalog: log the saved file to the run."""
REQUIREMENTS = ("mlflow", "torch", "pandas", "numpy", "pydantic")
"""What a logged model imports, pinned from this environment."""
_BATCH = 1000  # MLflow accepts at most 1000 metrics per log_batch call


@dataclass
class Outputs:
    """What a pipeline run wrote that MLflow is told about, by catalog entry name."""

    metrics: list[str] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)


def find_outputs(pipeline: Any, catalog: Any) -> Outputs:
    """Sort the pipeline's outputs into metrics, artifacts and model packages."""
    from linear_nets.datasets.metrics import MetricsDataset
    from linear_nets.datasets.pyfunc_package import PyfuncPackageDataset

    found = Outputs()
    for name in sorted(pipeline.all_outputs()):
        dataset = catalog.get(name)
        if isinstance(dataset, MetricsDataset):
            found.metrics.append(name)
        elif isinstance(dataset, PyfuncPackageDataset):
            found.models.append(name)
        elif (getattr(dataset, "metadata", None) or {}).get("mlflow") == ARTIFACT:
            found.artifacts.append(name)
    return found


def saved_file(catalog: Any, name: str) -> Path:
    """The file this run saved for catalog entry ``name``: ``<filepath>/<version>/<name>``
    for a versioned entry, ``<filepath>`` otherwise."""
    from linear_nets.datasets.partial_saves import save_target

    target = save_target(catalog, name)
    if target is None:
        raise ValueError(f"catalog entry {name!r} has no local filepath")
    return target.path


class Publication:
    """What one run published, so that it can be undone."""

    def __init__(self, run_id: str) -> None:
        import mlflow

        self.run_id = run_id
        self.client = mlflow.MlflowClient()
        self.registered: list[tuple[str, str]] = []
        self.artifacts: list[str] = []  # the run's artifact paths this publication logged
        self._aliases: dict[str, dict[str, str]] = {}
        self._models_before: set[str] | None = None  # the run's logged models before ours

    def publish(self, pipeline: Any, catalog: Any) -> None:
        outputs = find_outputs(pipeline, catalog)
        packages = {name: catalog.load(name) for name in outputs.models}
        for name in outputs.models:
            self.log_model(catalog.get(name).registered_model_name, packages[name])
        for name in outputs.artifacts:
            artifact_path = (catalog.get(name).metadata or {}).get("mlflow_artifact_path")
            local = saved_file(catalog, name)
            self.artifacts.append(f"{artifact_path}/{local.name}" if artifact_path else local.name)
            self.client.log_artifact(self.run_id, str(local), artifact_path)
        self.log_metrics(outputs.metrics, catalog)
        from linear_nets.tracking import registry

        for model, model_version in self.registered:
            registry.promote_run_model(self.run_id, model, model_version)

    def log_metrics(self, names: list[str], catalog: Any) -> None:
        from mlflow.entities import Metric

        from linear_nets.datasets.metrics import metric_entries

        now = int(time.time() * 1000)
        metrics = []
        for name in names:
            for key, value, step in metric_entries(catalog.load(name), catalog.get(name).prefix):
                metrics.append(Metric(key, value if math.isfinite(value) else math.nan, now, step))
        for start in range(0, len(metrics), _BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[start : start + _BATCH])

    def log_model(self, registered_name: str, package: Any) -> None:
        """Log ``package`` to the run and register it as ``registered_name`` if its gate
        passed; tag the run with the refusal otherwise."""
        import mlflow

        from linear_nets.serving.pyfunc import model_arguments
        from linear_nets.tracking import registry

        candidate = package.candidate
        if candidate.refusal is not None:
            logger.warning("Model not registered: %s", candidate.refusal)
            registry.record_refusal(self.run_id, candidate)
            return
        digest = model_digest(package)
        same = registry.version_with_digest(self.client, registered_name, digest)
        if same is not None:
            refusal = (
                f"identical to {registered_name} version {same} (same weights, preprocessing "
                "and code): nothing new to register"
            )
            logger.warning("Model not registered: %s", refusal)
            registry.record_refusal(self.run_id, replace(candidate, refusal=refusal))
            return
        if self._models_before is None:  # a notebook's run may hold models of its own
            before = logged_models(self.client, self.run_id)
            self._models_before = {model.model_id for model in before}
        with tempfile.TemporaryDirectory() as tmp:
            # the code file, weights, config, sha256 manifest, signature and input example
            info = mlflow.pyfunc.log_model(
                name="model",
                pip_requirements=_requirements(),
                **model_arguments(package, Path(tmp)),
            )
        if registered_name not in self._aliases:
            self._aliases[registered_name] = _aliases(self.client, registered_name)
        version = self.client.create_model_version(
            registered_name, info.model_uri, run_id=self.run_id, model_id=info.model_id
        ).version
        self.registered.append((registered_name, str(version)))
        registry.tag_version(registered_name, str(version), self.run_id, candidate, digest)
        from linear_nets.serving.integrity import record_files  # checked before loading

        record_files(self.client, registered_name, str(version))
        logger.debug("Registered %s version %s", registered_name, version)  # the summary says it

    def rollback(self) -> list[str]:
        """Delete the versions this run registered and give the aliases that pointed at them
        back to the versions they named before; delete the models and files this publication
        logged, complete or not. Returns ``name/version`` of each version deleted."""
        from linear_nets.tracking import registry

        # deleting a version drops the aliases that pointed at it; only those are put back,
        # so a promotion another run made meanwhile stands
        deleted = registry.delete_run_versions(self.client, self.run_id, restore=self._aliases)
        try:  # then the files, which frees the space a full disk took
            self._delete_logged_files()
        finally:
            tags = self.client.get_run(self.run_id).data.tags
            for tag in (registry.VERSION_TAG, registry.CHAMPION_TAG):  # they no longer hold
                if tag in tags:
                    self.client.delete_tag(self.run_id, tag)
        if deleted:
            logger.warning("Deleted the model versions of run %s: %s", self.run_id, deleted)
        self.registered.clear()
        return deleted

    def _delete_logged_files(self) -> None:
        """Delete the models this publication logged, with their files (also what a copy
        stopped by a full disk wrote), and the files it logged to the run."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        if self._models_before is not None:  # a model was (being) logged
            delete_logged_models(self.client, self.run_id, keep=self._models_before)
        if self.artifacts:
            repository = get_artifact_repository(self.client.get_run(self.run_id).info.artifact_uri)
            for path in self.artifacts:
                repository.delete_artifacts(path)
        self._models_before = None
        self.artifacts.clear()


def logged_models(client: Any, run_id: str) -> list[Any]:
    """The models logged from run ``run_id`` (MLflow's ``LoggedModel``, any status)."""
    experiment_id = client.get_run(run_id).info.experiment_id
    found, token = [], None
    while True:
        page = client.search_logged_models(
            [experiment_id], f"source_run_id = '{run_id}'", page_token=token
        )
        found += list(page)
        token = page.token
        if not token:
            return found


def delete_logged_models(client: Any, run_id: str, keep: Collection[str] = ()) -> list[str]:
    """Delete the models logged from run ``run_id`` (but those in ``keep``) with their files,
    complete or not (a copy a full disk or a signal stopped). Returns the ids deleted."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    deleted = []
    for model in logged_models(client, run_id):
        if model.model_id in keep:
            continue
        try:
            get_artifact_repository(model.artifact_location).delete_artifacts()
        finally:
            client.delete_logged_model(model.model_id)
        deleted.append(model.model_id)
    return deleted


def model_digest(package: Any) -> str:
    """sha256 of what a model computes: its weights, preprocessing, code and columns. Two
    trainings on the same data with the same parameters give the same digest."""
    import hashlib

    digest = hashlib.sha256()
    digest.update(package.model_code_path.read_bytes())
    digest.update(json.dumps(package.config, sort_keys=True).encode())
    digest.update(json.dumps([str(c) for c in package.input_example.columns]).encode())
    for name in sorted(package.weights):
        tensor = package.weights[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def _aliases(client: Any, name: str) -> dict[str, str]:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name)
        return {}
    except MlflowException:  # it exists: remember its aliases
        return dict(client.get_registered_model(name).aliases)


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{package}=={version(package)}" for package in REQUIREMENTS]
