"""The places where a library offers no public way to do what the project needs.

Each is checked against the exact version pinned in ``pyproject.toml`` (upper bounds there);
``tests/test_compat.py`` fails loudly when that version changes, so an upgrade re-checks them.
Nothing else in ``src/`` touches another library's private names (``tests/test_public_api.py``
scans for them).
"""

from __future__ import annotations

from typing import Any

KEDRO_CHECKED = "1.7.0"


def pin_save_and_load_version(dataset: Any, version: str) -> bool:
    """Make a versioned dataset save ``version`` and load that same version back; return
    whether it was versioned (and not pinned to a load version by the user).

    Why: Kedro loads the *newest* version of a dataset a run wrote, which is the one a
    concurrent run may just have written (a known limitation: kedro-org/kedro#4327 and #4347
    allow one save version per catalog and no per-run load pinning; third-party reports such as
    everycure-org/matrix#138 hit the same). ``DataCatalog.get(name, version=...)`` returns a
    copy but re-adding it fails the catalog's single-save-version check whenever the run's
    version differs from the session id, which :mod:`linear_nets.tracking.save_versions` needs
    for runs started in the same millisecond. Checked against kedro 1.7.0.
    """
    from kedro.io.core import AbstractVersionedDataset, Version

    if not isinstance(dataset, AbstractVersionedDataset):
        return False
    current = dataset._version  # compat: kedro 1.7.0 keeps the Version here
    if current is None or current.load is not None:
        return False
    dataset._version = Version(version, version)
    return True
