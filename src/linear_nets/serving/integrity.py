"""A registered model's files, verified before anything of them runs.

MLflow runs a models-from-code model's code file when it loads the model, so the manifest in
the model folder (checked by the model's ``load_context``) can only refuse a changed file after
that file ran. Publishing therefore also records the sha256 of every file of the logged model
on the registered version (the tag :data:`FILES_TAG`, in the tracking store, outside the model
folder); the project's loaders (:func:`load_verified`: the project's server, the
``boston_inference`` pipeline) download the version's files, compare each with that record,
and only then let ``mlflow.pyfunc.load_model`` load the verified local copy.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from linear_nets.serving.pyfunc import IntegrityError, sha256

logger = logging.getLogger(__name__)

FILES_TAG = "linear_nets.model_files"
"""Model version tag: ``{"sha256": {path in the model folder: digest}}`` of every file."""
COMPILED = "__pycache__"
"""Compiled caches: never recorded, removed from a verified copy (Python recompiles them from
the verified sources; a cache file could otherwise run unverified code)."""
REGISTRY_URI = re.compile(r"models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))/?")


def file_digests(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root``, compiled caches left out."""
    return {
        path.relative_to(root).as_posix(): sha256(path)
        for path in sorted(root.rglob("*"))
        if path.is_file() and COMPILED not in path.relative_to(root).parts
    }


def record_files(client: Any, name: str, version: str) -> dict[str, str]:
    """Tag model version ``name``/``version`` with the sha256 of each of its files (as
    downloaded from the artifact store) and return them; publishing calls it right after
    registering."""
    import tempfile

    import mlflow.artifacts

    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version}", dst_path=tmp
        )
        digests = file_digests(Path(local))
    client.set_model_version_tag(name, version, FILES_TAG, json.dumps({"sha256": digests}))
    return digests


def verify_files(root: Path, recorded: dict[str, str], what: str) -> None:
    """Refuse a downloaded model folder unless its files are exactly ``recorded``.

    Args:
        root: the model folder (a copy this process may change: its compiled caches go).
        recorded: ``{relative path: sha256}`` written when the model was published.
        what: the model, as named in the error (``name version N``).

    Raises:
        IntegrityError: naming the first file that changed, is missing or was added.
    """
    import shutil

    for cache in sorted(root.rglob(COMPILED), reverse=True):
        shutil.rmtree(cache, ignore_errors=True)
    found = file_digests(root)
    for name, digest in sorted(recorded.items()):
        if name not in found:
            raise IntegrityError(f"model file {name} of {what} is missing; refusing to load it")
        if found[name] != digest:
            raise IntegrityError(
                f"model file {name} of {what} changed since the model was published (its "
                f"sha256 differs from the one recorded on the version); refusing to load it"
            )
    added = sorted(set(found) - set(recorded))
    if added:
        raise IntegrityError(
            f"model file {added[0]} of {what} was added after the model was published; "
            "refusing to load it"
        )


def registry_version(client: Any, model_uri: str) -> tuple[str, str] | None:
    """``(name, version)`` of ``models:/name@alias`` or ``models:/name/N``; ``None`` for any
    other URI (a folder, ``runs:/``, a logged model's ``models:/m-…``)."""
    match = REGISTRY_URI.fullmatch(model_uri)
    if match is None:
        return None
    name, alias, version = match.group("name", "alias", "version")
    if alias is not None:
        version = client.get_model_version_by_alias(name, alias).version
    return name, str(version)


def load_verified(model_uri: str) -> Any:
    """``mlflow.pyfunc.load_model`` of a registered model whose files were verified first.

    For ``models:/name@alias`` and ``models:/name/N``: the alias is resolved once, the version's
    files are downloaded to a folder of this process, compared with the digests recorded on
    the version (:data:`FILES_TAG`), and only then loaded. A version registered before digests
    were recorded, or another kind of URI, is loaded as MLflow loads it (with a warning: its
    manifest is checked only after its code ran).

    Raises:
        IntegrityError: a file changed, is missing or was added since publication.
    """
    import mlflow
    import mlflow.pyfunc

    client = mlflow.MlflowClient()
    found = registry_version(client, model_uri)
    if found is None:
        logger.warning(
            "%s is not a registered version: its files are checked by its manifest only, "
            "after its code ran",
            model_uri,
        )
        return mlflow.pyfunc.load_model(model_uri)
    name, version = found
    what = f"{name} version {version}"
    recorded = client.get_model_version(name, version).tags.get(FILES_TAG)
    local = Path(_download(f"models:/{name}/{version}"))
    if recorded is None:
        logger.warning(
            "%s has no recorded file digests (published before they were recorded): its files "
            "are checked by its manifest only, after its code ran",
            what,
        )
    else:
        verify_files(local, json.loads(recorded)["sha256"], what)
    return mlflow.pyfunc.load_model(str(local))


def _download(uri: str) -> str:
    """The model's files in a folder of this process, removed when it exits (the loaded model
    keeps importing from its ``code`` folder)."""
    import atexit
    import shutil
    import tempfile

    import mlflow.artifacts

    folder = tempfile.mkdtemp(prefix="linear-nets-model-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=folder)
