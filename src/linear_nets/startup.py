"""Start-up without garbage collections that free nothing.

Importing Kedro, MLflow and torch builds some 900 000 Python objects that live as long as the
process. CPython's collector runs every 700 new objects, and scans the whole, growing heap each
time the long-lived ones grow by a quarter: in a boston run, 1 260 young, 114 middle and eight
full collections, 1.4 s of a 7.8 s run measured here, finding nothing to free.
:func:`defer_collections` (``settings.py``, before any command imports those libraries) makes
the collector run once per million new objects during start-up. :func:`end_startup` moves what
start-up built into the permanent generation, which later collections never scan, and gives
Python its own thresholds back. Start-up ends once the pipelines are registered
(``register_pipelines``: every command that loads them, ``kedro run``, ``kedro viz``,
``kedro registry list``) or the catalog is created (:class:`StartupHook`: sessions that never
load the pipelines, such as a notebook's), whichever comes first. A process that does neither
(``kedro --help``) still collects, once per million new objects.

Frozen objects are left to the operating system at exit, like any object CPython still holds
then, instead of being collected one by one: a boston run's interpreter shutdown takes
0.6-0.7 s instead of 2.3 s. Only ``__del__`` methods of objects in reference cycles built
during start-up are skipped, which Python never promises to run at exit; atexit handlers,
``weakref.finalize`` and context managers run as before. One visible trace: an extension built
with nanobind (triton, which ``torch._dynamo`` imports) reports its frozen objects as leaked if
it was imported before start-up ended; the project imports it only after, if at all.
"""

from __future__ import annotations

import gc

from kedro.framework.hooks import hook_impl

STARTUP_THRESHOLD = 1_000_000
"""New objects per collection of the youngest generation during start-up (Python's: 700)."""
_saved: list[tuple[int, int, int]] = []  # Python's thresholds while start-up lasts


def defer_collections() -> None:
    """Collect once per :data:`STARTUP_THRESHOLD` new objects until :func:`end_startup`."""
    if not _saved:
        _saved.append(gc.get_threshold())
        gc.set_threshold(STARTUP_THRESHOLD)  # the older generations keep Python's ratios


def in_startup() -> bool:
    """Whether collections are still deferred."""
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
