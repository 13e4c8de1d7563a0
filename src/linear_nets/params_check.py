"""Parameter keys that match nothing are errors, not silently ignored overrides.

Kedro merges ``--params`` and ``conf/<env>/parameters*.yml`` over ``conf/base`` without
complaint, so ``--params boston.trian.lr=5`` would add an unused ``boston.trian`` block and train
with the defaults. The known keys are those of ``conf/base/parameters*.yml`` and every field of
the typed (pydantic) models the pipeline's nodes take; any other key stops the run before its
first node, naming the key and the nearest known one. ``kedro sweep`` checks its grid the same
way before the first configuration runs.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Callable, Iterable, Mapping
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from kedro.framework.hooks import hook_impl

# The runtime parameter `kedro sweep` passes to each run ({id, label}); never a typo.
RESERVED = frozenset({"sweep"})
# Top-level keys ending like this are sweep grids: `kedro sweep` checks their entries.
GRID_SUFFIX = "_sweep"


class UnknownParameterError(ValueError):
    """A parameter key that no pipeline parameter or typed model field matches."""


class KnownKeys:
    """Dotted parameter paths a run may set.

    ``branches`` are paths with known children (a YAML mapping, a pydantic model); ``leaves``
    are values that may take any shape, so anything below them is accepted too.
    """

    def __init__(self) -> None:
        self.branches: set[str] = set()
        self.leaves: set[str] = set()

    def add_mapping(self, prefix: str, value: Any) -> None:
        """Every path of a (YAML) mapping; a non-empty mapping is a branch, the rest leaves."""
        if isinstance(value, Mapping) and value:
            self.branches.add(prefix)
            for key, item in value.items():
                self.add_mapping(_join(prefix, str(key)), item)
        elif prefix:
            self.leaves.add(prefix)

    def add_model(self, prefix: str, model: type) -> None:
        """Every field of a pydantic model class, recursing into nested models."""
        self.branches.add(prefix)
        for name, field in model.model_fields.items():
            path = _join(prefix, name)
            nested = [arg for arg in _union_args(field.annotation) if _is_model(arg)]
            if nested:
                for sub in nested:
                    self.add_model(path, sub)
            else:
                self.leaves.add(path)

    def __contains__(self, path: str) -> bool:
        if path in self.branches or path in self.leaves:
            return True
        parts = path.split(".")
        return any(".".join(parts[:end]) in self.leaves for end in range(1, len(parts)))

    def nearest(self, path: str) -> str | None:
        """The known path closest to ``path`` (difflib), or None when nothing is close."""
        candidates = sorted(self.leaves | (self.branches - {""}))
        matches = difflib.get_close_matches(path, candidates, n=1, cutoff=0.6)
        return matches[0] if matches else None


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}, "c.d": 2}`` → ``{"a.b": 1, "c.d": 2}``: the leaves of nested mappings."""
    if not isinstance(value, Mapping) or not value:
        return {prefix: value} if prefix else {}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        flat.update(flatten(item, _join(prefix, str(key))))
    return flat


def base_parameters(conf_source: Path, base_env: str, patterns: Iterable[str]) -> dict[str, Any]:
    """The parameters of the base environment, merged (keys only matter here)."""
    import yaml

    merged: dict[str, Any] = {}
    folder = conf_source / base_env
    files = sorted(
        path
        for path in folder.rglob("*.y*ml")
        if any(fnmatch(path.relative_to(folder).as_posix(), f"{p}.y*ml") for p in patterns)
    )
    for path in files:
        content = yaml.safe_load(path.read_text()) or {}
        if isinstance(content, Mapping):
            _deep_merge(merged, content)
    return merged


def known_keys(base: Mapping[str, Any], typed: Mapping[str, type]) -> KnownKeys:
    """Known paths: the base parameters plus the fields of each ``params:<key>`` model."""
    known = KnownKeys()
    known.add_mapping("", base)
    for key, annotation in typed.items():
        for model in (arg for arg in _union_args(annotation) if _is_model(arg)):
            known.add_model(key, model)
    return known


def typed_parameters(pipeline: Any) -> dict[str, type]:
    """``{"boston.train": TrainConfig, ...}``: the typed ``params:`` inputs of a pipeline."""
    from kedro.validation.type_extractor import TypeExtractor

    return TypeExtractor({"pipeline": pipeline}).extract_types_from_pipelines()


def invalid_fields(
    parameters: Mapping[str, Any],
    typed: Mapping[str, Any],
    nearest: Callable[[str], str | None] | None = None,
) -> list[str]:
    """One line per field of a typed parameter that fails its model, from pydantic's
    structured ``errors()``: ``boston.train.lr: Input should be greater than 0 (got -1)``;
    an unknown field also names the nearest known key."""
    from pydantic import TypeAdapter, ValidationError

    lines = []
    for key, annotation in typed.items():
        value: Any = parameters
        for part in key.split("."):
            if not isinstance(value, Mapping) or part not in value:
                break
            value = value[part]
        else:
            try:
                TypeAdapter(annotation).validate_python(value)
            except ValidationError as error:
                lines += [_field_line(key, item, nearest) for item in error.errors()]
    return lines


def _field_line(key: str, item: Any, nearest: Callable[[str], str | None] | None) -> str:
    path = ".".join([key, *(str(part) for part in item["loc"])])
    line = f"{path}: {item['msg']}"
    value = item.get("input")
    if item["type"] != "missing" and not isinstance(value, Mapping):
        line += f" (got {value!r})"
    if item["type"] == "extra_forbidden" and nearest is not None and (hint := nearest(path)):
        line += f"; did you mean '{hint}'?"
    return line


def unknown_keys(paths: Iterable[str], known: KnownKeys) -> list[str]:
    """The paths that match nothing known, in order; reserved and grid keys are skipped."""
    return [
        path
        for path in paths
        if path.split(".", 1)[0] not in RESERVED
        and not path.split(".", 1)[0].endswith(GRID_SUFFIX)
        and path not in known
    ]


def describe_unknown(paths: Iterable[str], known: KnownKeys, source: str) -> str:
    """One line per unknown key: where it came from and the nearest known key."""
    lines = []
    for path in paths:
        nearest = known.nearest(path)
        hint = f"did you mean '{nearest}'?" if nearest else "no parameter has a similar name"
        lines.append(f"unknown parameter '{path}' ({source}): {hint}")
    return "\n".join(lines)


def check_run_parameters(
    parameters: Mapping[str, Any],
    runtime: Mapping[str, Any],
    known: KnownKeys,
    env: str,
) -> None:
    """Raise ``UnknownParameterError`` naming every unknown key of a run's merged parameters.

    Args:
        parameters: the run's merged parameters (base, the run environment, ``--params``).
        runtime: the ``--params`` of the run, to say where a key came from.
        known: the keys the run's pipelines know.
        env: the run environment, named in the message for keys from its files.
    """
    runtime_paths = set(flatten(runtime))
    problems = []
    for path in unknown_keys(flatten(parameters), known):
        source = "--params" if path in runtime_paths else f"conf/{env}/parameters*.yml"
        problems.append(describe_unknown([path], known, source))
    if problems:
        raise UnknownParameterError("\n".join(problems))


class ParameterKeysHook:
    """Stop a run whose ``--params`` or local parameters name a key no pipeline knows."""

    def __init__(self) -> None:
        self._context: Any = None

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self._context = context

    @hook_impl(tryfirst=True)  # before kedro-mlflow opens an MLflow run for a doomed run
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any) -> None:
        if self._context is None:
            return
        loader = self._context.config_loader
        base = base_parameters(
            Path(loader.conf_source), loader.base_env, loader.config_patterns["parameters"]
        )
        known = known_keys(base, typed_parameters(pipeline))
        check_run_parameters(
            loader["parameters"],
            run_params.get("runtime_params") or {},
            known,
            str(run_params.get("env") or loader.default_run_env),
        )

    @hook_impl(trylast=True, specname="before_pipeline_run")  # once kedro-mlflow's run is open
    def tag_sweep_reproduction(self, run_params: dict[str, Any]) -> None:
        """Tag a sweep's run with the ``kedro run`` command that reproduces it."""
        runtime = dict(run_params.get("runtime_params") or {})
        if "sweep" not in runtime:
            return
        import mlflow

        if mlflow.active_run() is None:
            return
        runtime.pop("sweep")
        command = run_command(
            run_params.get("pipeline_names") or ["__default__"],
            str(run_params.get("env") or ""),
            flatten(runtime),
        )
        mlflow.set_tag("reproduce", command)


def render_value(value: Any) -> str:
    """A value as ``--params`` parses it back (YAML via OmegaConf): strings quoted."""
    import json

    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value if isinstance(value, str) else value, separators=(",", ":"))


def params_option(flat: Mapping[str, Any]) -> str:
    """``{"a.b": 1, "c": "x"}`` → ``a.b=1,c="x"``, the value of ``kedro run --params``.

    Kedro splits ``--params`` on commas, so a value whose rendering holds one cannot be passed.
    """
    items = []
    for key, value in flat.items():
        rendered = render_value(value)
        if "," in rendered:
            raise UnknownParameterError(
                f"parameter '{key}' = {value!r} cannot be passed with kedro run --params "
                "(its value holds a comma)"
            )
        items.append(f"{key}={rendered}")
    return ",".join(items)


def run_command(pipelines: list[str], env: str, flat: Mapping[str, Any]) -> str:
    """The shell command ``kedro run`` that runs ``pipelines`` with these parameters."""
    import shlex

    command = ["kedro", "run", f"--pipeline={','.join(pipelines)}"]
    if env:
        command.append(f"--env={env}")
    if flat:
        command += ["--params", params_option(flat)]
    return shlex.join(command)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _union_args(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) is Union or isinstance(annotation, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def _is_model(annotation: Any) -> bool:
    from pydantic import BaseModel

    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _deep_merge(target: dict[str, Any], update: Mapping[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = dict(value) if isinstance(value, Mapping) else value
