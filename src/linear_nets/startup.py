"""Start-up without full garbage collections.

Importing Kedro, MLflow and torch builds about half a million Python objects that live as long
as the process. CPython's collector takes each wave of them for new long-lived objects and
scans the whole, growing heap again: eight full collections in a boston run, about a second,
that free nothing. :func:`defer_full_collections` (``settings.py``, before any command imports
those libraries) holds them off during start-up. :func:`end_startup` moves what start-up built
into the permanent generation, which later collections never scan, and gives Python its own
thresholds back. Start-up ends once the pipelines are registered (``register_pipelines``: every
command that loads them, ``kedro run``, ``kedro viz``, ``kedro registry list``) or the catalog
is created (:class:`StartupHook`: sessions that never load the pipelines, such as a notebook's),
whichever comes first. The young generations collect throughout, and a process that does
neither (``kedro --help``) still collects fully once every thousand middle collections.

Frozen objects are left to the operating system at exit, like any object CPython still holds
then, instead of being collected one by one: a boston run's interpreter shutdown takes
0.6-0.7 s instead of 2.3 s. Only ``__del__`` methods of objects in reference cycles built
during start-up are skipped, which Python never promises to run at exit; atexit handlers,
``weakref.finalize`` and context managers run as before. One visible trace: an extension built with nanobind (triton, which
``torch._dynamo`` imports) reports its frozen objects as leaked if it was imported before
start-up ended; the project imports it only after, if at all.
"""

from __future__ import annotations

import gc

from kedro.framework.hooks import hook_impl

DEFERRED = 1_000  # middle collections per full one during start-up (Python: 10; a run: ~120)
_saved: list[tuple[int, int, int]] = []  # Python's thresholds while start-up lasts


def defer_full_collections() -> None:
    """No full collection until :func:`end_startup`; the young generations still collect."""
    if not _saved:
        _saved.append(gc.get_threshold())
        young, middle, _ = _saved[0]
        gc.set_threshold(young, middle, DEFERRED)


def in_startup() -> bool:
    """Whether full collections are still held off."""
    return bool(_saved)


def end_startup() -> None:
    """Freeze what start-up built and restore the thresholds (once; later calls do nothing)."""
    if _saved:
        gc.freeze()
        gc.set_threshold(*_saved.pop())


class StartupHook:
    """Ends the start-up once the catalog is created, if the pipelines did not end it first."""

    @hook_impl
    def after_catalog_created(self) -> None:
        end_startup()
