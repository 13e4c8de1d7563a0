"""Which runs register a model version, and which version is ``@champion``.

A run registers its model only when the model converged (the *gate*): for the MSE loss, its
train MSE is within ``max_gap_to_ols`` of the closed-form least-squares optimum on the same rows;
for losses without a closed form (MAE, Huber), the train loss has stopped moving over the last
epochs and the train MSE is within a looser bound of the optimum's. A run the gate refuses still
finishes with its metrics and carries the reason as the run tag ``registry.not_registered``.

A newly registered version becomes ``@champion`` (MLflow's alias API) only when it beats the
current champion on the champion metric; during a sweep versions are registered but not
promoted, and :func:`promote_sweep` promotes at most the sweep's best at its end.

Nothing here imports MLflow or torch at module level.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

CHAMPION = "champion"

# run tags: what happened to the run's model
NOT_REGISTERED_TAG = "registry.not_registered"
VERSION_TAG = "registry.version"
CHAMPION_TAG = "registry.champion"
# model version tags: what the version is compared on
SWEEP_TAG = "sweep"
METRIC_TAG = "champion_metric"
VALUE_TAG = "champion_metric_value"
HIGHER_TAG = "champion_metric_higher_is_better"
GATE_TAG = "gate"
DIGEST_TAG = "model_digest"  # sha256 of weights, preprocessing and code (publish.model_digest)


class LossConvergence(BaseModel):
    """The train loss has stopped moving: its relative change across the last ``window`` share
    of the epochs is at most ``tolerance``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: float = Field(0.1, gt=0, le=1, description="share of the last epochs compared")
    tolerance: float = Field(
        1e-3, gt=0, description="largest relative change of the train loss across the window"
    )


class ConvergenceConfig(LossConvergence):
    """The convergence test for regression losses without a closed-form optimum."""

    max_gap_to_ols: float = Field(
        0.25, ge=0, description="train MSE at most this much above the least-squares optimum"
    )


class RegistryConfig(BaseModel):
    """When a run registers its model, and what makes a version ``@champion``.

    The default champion metric, ``cv_rmse``, is cross-validated on the training rows: the test
    rows are scored and reported but never choose, and it exists when ``split.test_size`` is 0.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_gap_to_ols: float = Field(
        0.01, ge=0, description="MSE runs: train MSE at most this much above the OLS optimum"
    )
    convergence: ConvergenceConfig = ConvergenceConfig()
    champion_metric: str = Field(
        "cv_rmse", min_length=1, description="cv_rmse: cross-validated on the training rows"
    )
    higher_is_better: bool = False


class ClassifierRegistryConfig(BaseModel):
    """When a classifier run registers its model, and what makes a version ``@champion``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    convergence: LossConvergence = LossConvergence(window=0.2, tolerance=0.02)
    min_accuracy: float = Field(0.8, ge=0, le=1, description="on the champion metric")
    champion_metric: str = Field("val_accuracy", min_length=1)
    higher_is_better: bool = True


@dataclass(frozen=True)
class Candidate:
    """A run's model as the registry sees it.

    Attributes:
        metric: name of the champion metric; ``value`` its value for this model.
        higher_is_better: direction of ``metric``.
        gate: one line on what the gate measured.
        refusal: why the gate refused the model, or None when it is to be registered.
    """

    metric: str
    value: float
    higher_is_better: bool
    gate: str
    refusal: str | None = None


def _champion_value(
    metrics: dict[str, float], config: RegistryConfig | ClassifierRegistryConfig, name: str
) -> float:
    if config.champion_metric not in metrics:
        raise ValueError(
            f"{name}.champion_metric={config.champion_metric!r} is not a metric of this run; "
            f"choose one of {sorted(metrics)}"
        )
    return float(metrics[config.champion_metric])


def relative_change(losses: Sequence[float], window: float) -> float:
    """Relative change of the loss across the last ``window`` share of the epochs (≥ 2);
    infinite for a single epoch, which cannot show convergence."""
    if len(losses) < 2:
        return math.inf
    span = min(len(losses), max(2, math.ceil(window * len(losses))))
    first, last = losses[-span], losses[-1]
    return abs(last - first) / max(abs(first), 1e-12)


def _not_converged(change: float, test: LossConvergence, name: str) -> str:
    window = f"{test.window:.0%}"
    if math.isinf(change):
        return f"not converged: a single epoch cannot show convergence ({name}.convergence)"
    return (
        f"not converged: the train loss moved {change:.3%} over the last {window} of epochs "
        f"(limit {test.tolerance:.3%}, {name}.convergence.tolerance)"
    )


def regression_gate(
    metrics: dict[str, float],
    train_loss: Sequence[float],
    loss: str,
    config: RegistryConfig,
    name: str,
    *,
    optimizer: str | None = None,
) -> Candidate:
    """Decide whether a regression run's model is converged enough to register.

    Every run is held against the exact least-squares optimum on its training rows. An exact
    solve (``optimizer`` ``lstsq``) has no epochs: its one train loss is not a convergence
    curve, and the gap to the optimum is all the gate measures.

    Args:
        metrics: the run's metrics, with ``train_mse`` and ``ols_train_mse``.
        train_loss: the per-epoch training loss (one value for an exact solve).
        loss: the training loss (``mse``, ``mae``, ``huber``).
        config: the gate's thresholds and the champion metric.
        name: the parameter block of ``config`` (e.g. ``boston.registry``), for messages.
        optimizer: the run's ``train.optimizer``, named in the gate's line.

    Returns:
        The candidate, with the reason for refusing it when it fails the gate.
    """
    no_test_rows = not any(key.startswith("test_") for key in metrics)
    if config.champion_metric.startswith("test_") and no_test_rows:
        raise ValueError(
            f"{name}.champion_metric={config.champion_metric!r} needs test rows, and this run "
            "has none (split.test_size is 0): use cv_rmse, cross-validated on the training rows"
        )
    value = _champion_value(metrics, config, name)
    numbers = [metrics["train_mse"], metrics["ols_train_mse"], value, *train_loss[-1:]]
    if not all(math.isfinite(float(number)) for number in numbers):
        return Candidate(
            config.champion_metric,
            value,
            config.higher_is_better,
            "non-finite metrics",
            "a metric or the final train loss is not finite",
        )
    optimum = metrics["ols_train_mse"]
    gap = metrics["train_mse"] / optimum - 1.0 if optimum > 0 else metrics["train_mse"] - optimum
    measured = (
        f"train MSE {metrics['train_mse']:.6g} is {gap:.3%} above the least-squares optimum "
        f"{metrics['ols_train_mse']:.6g}"
    )
    if optimizer == "lstsq":
        measured = f"exact least-squares solve (no epochs): {measured}"
    refusal = None
    if loss == "mse":
        if gap > config.max_gap_to_ols:
            refusal = (
                f"not converged: {measured} (limit {config.max_gap_to_ols:.3%}, "
                f"{name}.max_gap_to_ols)"
            )
    elif loss in ("mae", "huber"):
        test = config.convergence
        change = relative_change(train_loss, test.window)
        moved = f"the train loss moved {change:.3%} over the last {test.window:.0%} of epochs"
        if change > test.tolerance:
            refusal = (
                f"not converged: {moved} (limit {test.tolerance:.3%}, {name}.convergence.tolerance)"
            )
        elif gap > test.max_gap_to_ols:
            refusal = (
                f"not converged: {measured} (limit {test.max_gap_to_ols:.3%} for {loss}, "
                f"{name}.convergence.max_gap_to_ols)"
            )
        measured = f"{measured}; {moved}"
    else:
        refusal = f"no registration gate for the {loss!r} loss of a regression"
    return Candidate(config.champion_metric, value, config.higher_is_better, measured, refusal)


def classification_gate(
    history: dict[str, list[float]], config: ClassifierRegistryConfig, name: str
) -> Candidate:
    """Decide whether a classifier run's model is converged and accurate enough to register.

    Args:
        history: the per-epoch ``train_loss`` and the champion metric (its last epoch counts).
        config: the convergence test, the accuracy floor and the champion metric.
        name: the parameter block of ``config`` (e.g. ``fashion_mnist.registry``), for messages.

    Returns:
        The candidate, with the reason for refusing it when it fails the gate.
    """
    final = {key: values[-1] for key, values in history.items() if values}
    value = _champion_value(final, config, name)
    change = relative_change(history["train_loss"], config.convergence.window)
    window = f"{config.convergence.window:.0%}"
    measured = (
        f"{config.champion_metric} {value:.4f}; the train loss moved {change:.3%} over the "
        f"last {window} of epochs"
    )
    refusal = None
    if not (math.isfinite(value) and math.isfinite(final["train_loss"])):
        refusal = "a metric or the final train loss is not finite"
    elif change > config.convergence.tolerance:
        refusal = _not_converged(change, config.convergence, name)
    elif value < config.min_accuracy:
        refusal = (
            f"not accurate enough: {config.champion_metric} {value:.4f} is below "
            f"{config.min_accuracy} ({name}.min_accuracy)"
        )
    return Candidate(config.champion_metric, value, config.higher_is_better, measured, refusal)


def _client(tracking_uri: str | None = None) -> Any:
    import mlflow

    return mlflow.MlflowClient(tracking_uri=tracking_uri)


def record_refusal(run_id: str, candidate: Candidate) -> None:
    """Tag the run with why its model was not registered."""
    _client().set_tag(run_id, NOT_REGISTERED_TAG, candidate.refusal)


def tag_version(
    name: str, version: str, run_id: str, candidate: Candidate, digest: str | None = None
) -> None:
    """Record on a new version what it is compared on (and what it computes: ``digest``),
    and on its run which version it is."""
    client = _client()
    sweep = client.get_run(run_id).data.tags.get(SWEEP_TAG)
    tags = {
        DIGEST_TAG: digest or "",
        METRIC_TAG: candidate.metric,
        VALUE_TAG: repr(candidate.value),
        HIGHER_TAG: str(candidate.higher_is_better).lower(),
        GATE_TAG: candidate.gate,
    }
    if sweep:
        tags[SWEEP_TAG] = sweep
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    client.set_tag(run_id, VERSION_TAG, version)


def _metric_of(client: Any, version: Any, metric: str) -> float | None:
    """``metric`` of a registered version: its tag, else its run's metric, else None."""
    if version.tags.get(METRIC_TAG) == metric and VALUE_TAG in version.tags:
        return float(version.tags[VALUE_TAG])
    if version.run_id:
        value = client.get_run(version.run_id).data.metrics.get(metric)
        return None if value is None else float(value)
    return None


def _beats(value: float, other: float, higher_is_better: bool) -> bool:
    return value > other if higher_is_better else value < other


def promote_if_better(name: str, version: str, *, tracking_uri: str | None = None) -> str:
    """Move ``@champion`` to ``version`` when it beats the current champion on the champion
    metric recorded on ``version``.

    Returns:
        One line saying whether it became champion, and why.
    """
    from linear_nets.tracking.store import promotion_lock

    client = _client(tracking_uri)
    # read, compare and set as one step: two runs promoting at once must not both win
    with promotion_lock(client, name):
        return _promote_if_better(client, name, version)


def _promote_if_better(client: Any, name: str, version: str) -> str:
    from mlflow.exceptions import MlflowException

    new = client.get_model_version(name, version)
    metric = new.tags[METRIC_TAG]
    value = float(new.tags[VALUE_TAG])
    higher = new.tags.get(HIGHER_TAG) == "true"
    try:
        current = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        current = None
    if current is not None and current.version == new.version:
        return f"{name} version {version} is already @{CHAMPION}"
    if current is None:
        reason = "the first champion"
    else:
        held = _metric_of(client, current, metric)
        if held is not None and not _beats(value, held, higher):
            return (
                f"{name} version {version} did not become @{CHAMPION}: {metric} {value:.6g} "
                f"does not beat {held:.6g} of version {current.version}"
            )
        reason = (
            f"{metric} {value:.6g} beats {held:.6g} of version {current.version}"
            if held is not None
            else f"version {current.version} has no {metric}"
        )
    client.set_registered_model_alias(name, CHAMPION, version)
    return f"{name} version {version} is now @{CHAMPION}: {reason}"


def promote_run_model(run_id: str, name: str, version: str) -> None:
    """After a run registered ``version``: promote it unless the run is part of a sweep, and
    record the outcome on the run (tag ``registry.champion``)."""
    client = _client()
    sweep = client.get_run(run_id).data.tags.get(SWEEP_TAG)
    if sweep:
        outcome = (
            f"{name} version {version} not promoted: part of sweep {sweep}, whose best "
            "version is promoted when the sweep ends"
        )
    else:
        outcome = promote_if_better(name, version)
    client.set_tag(run_id, CHAMPION_TAG, outcome)


def promote_sweep(sweep_id: str, *, tracking_uri: str | None = None) -> list[str]:
    """Promote at most the best version each registered model got from sweep ``sweep_id``,
    and only if it beats the current champion.

    Returns:
        Human-readable lines, one per registered model the sweep touched (or one saying that
        no run of the sweep registered a model).
    """
    client = _client(tracking_uri)
    versions = client.search_model_versions(f"tags.{SWEEP_TAG} = '{sweep_id}'")
    if not versions:
        return [f"sweep {sweep_id}: no run registered a model version (none passed the gate)"]
    by_model: dict[str, list[Any]] = {}
    for version in versions:
        by_model.setdefault(version.name, []).append(version)
    lines = []
    for name, candidates in sorted(by_model.items()):
        sign = -1.0 if candidates[0].tags.get(HIGHER_TAG) == "true" else 1.0
        best = min(candidates, key=lambda v: (sign * float(v.tags[VALUE_TAG]), int(v.version)))
        lines.append(
            f"sweep {sweep_id}: best of {len(candidates)} registered is version {best.version} "
            f"({best.tags[METRIC_TAG]} {float(best.tags[VALUE_TAG]):.6g}); "
            + promote_if_better(name, best.version, tracking_uri=tracking_uri)
        )
    return lines


def restore_missing_aliases(client: Any, name: str, before: dict[str, str]) -> None:
    """Point each alias of ``before`` (``{alias: version}``) that registered model ``name`` no
    longer has back at its version, where that version still exists; aliases that exist now
    (another run may have moved them) are left as they are."""
    from mlflow.exceptions import MlflowException

    try:
        now = dict(client.get_registered_model(name).aliases)
    except MlflowException:
        return
    for alias, version in before.items():
        if alias not in now:
            with contextlib.suppress(MlflowException):  # that version was deleted meanwhile
                client.set_registered_model_alias(name, alias, version)


def delete_run_versions(
    client: Any, run_id: str, restore: dict[str, dict[str, str]] | None = None
) -> list[str]:
    """Delete every model version registered by run ``run_id`` and give back the aliases of
    ``restore`` (``{model: {alias: version}}``, as they were before the run) that went with
    them, each model under its promotion lock: a promotion never sees the alias missing
    half-way. Returns ``name/version`` of each deleted version."""
    from linear_nets.tracking.store import promotion_lock

    restore = restore or {}
    by_model: dict[str, list[str]] = {}
    for version in client.search_model_versions(f"run_id = '{run_id}'"):
        by_model.setdefault(version.name, []).append(str(version.version))
    deleted = []
    for name in sorted(set(by_model) | set(restore)):
        with promotion_lock(client, name):
            for version in by_model.get(name, []):
                client.delete_model_version(name, version)
                deleted.append(f"{name}/{version}")
            if name in restore:
                restore_missing_aliases(client, name, restore[name])
    return deleted


def forget_dead_run(client: Any, run_id: str) -> list[str]:
    """A run that died (KILLED by a later run or ``kedro runs clean``): delete the versions it
    registered and, where ``@champion`` pointed at one of them, give the alias to the best
    remaining version of a FINISHED run (or remove it). Returns one line per repair."""
    from mlflow.exceptions import MlflowException

    from linear_nets.tracking.store import promotion_lock

    lines = []
    for version in client.search_model_versions(f"run_id = '{run_id}'"):
        name = version.name
        with promotion_lock(client, name):  # a promotion meanwhile must not be undone
            try:
                champion = client.get_model_version_by_alias(name, CHAMPION)
            except MlflowException:
                champion = None
            client.delete_model_version(name, version.version)
            lines.append(f"deleted {name} version {version.version} (its run {run_id} died)")
            if champion is not None and champion.version == version.version:
                lines.append(_elect_champion(client, name))
    return lines


def _elect_champion(client: Any, name: str) -> str:
    """Give ``@champion`` of ``name`` to its best version whose run FINISHED."""
    best = None
    for version in client.search_model_versions(f"name = '{name}'"):
        if METRIC_TAG not in version.tags or not version.run_id:
            continue
        if client.get_run(version.run_id).info.status != "FINISHED":
            continue
        sign = -1.0 if version.tags.get(HIGHER_TAG) == "true" else 1.0
        key = (sign * float(version.tags[VALUE_TAG]), int(version.version))
        if best is None or key < best[0]:
            best = (key, version)
    if best is None:
        return f"{name}: no version of a finished run is left to be @{CHAMPION}"
    client.set_registered_model_alias(name, CHAMPION, best[1].version)
    return f"{name} version {best[1].version} is @{CHAMPION} again"


def version_with_digest(client: Any, name: str, digest: str) -> str | None:
    """The registered version of ``name`` whose model digest is ``digest``, if any."""
    for version in client.search_model_versions(f"name = '{name}'"):
        if version.tags.get(DIGEST_TAG) == digest:
            return str(version.version)
    return None
