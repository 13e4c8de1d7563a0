"""Where datasets import :func:`log_when_done` from; it lives in :mod:`linear_nets.tracking`."""

from linear_nets.tracking.deferred import log_when_done

__all__ = ["log_when_done"]
