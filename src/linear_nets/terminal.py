"""What the terminal shows of an error: one short message (the traceback goes to ``info.log``).

Standard library only. :class:`DropMessages` drops the log records a user cannot act on (see
:mod:`linear_nets.process`).
"""

from __future__ import annotations

import logging
import re


class DropMessages(logging.Filter):
    """Drop the records whose message matches ``pattern``."""

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        return self.pattern.search(record.getMessage()) is None


def parameter_message(lines: list[str]) -> str:
    """One line per invalid parameter field (``boston.train.lr: Input should be ...``)."""
    if len(lines) == 1:
        return f"invalid parameter {lines[0]}"
    return "invalid parameters:\n  " + "\n  ".join(lines)


def short_message(error: BaseException) -> str:
    """The part of ``error`` a user needs: its first line, and the operating system's reason
    when a library wrapped one (Kedro's "Failed while saving data to dataset ..." does not say
    "No space left on device"); never empty (the error's type name at least)."""
    text = str(error).strip()
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    message = first or type(error).__name__
    reason = _os_reason(error)
    return f"{message}: {reason}" if reason and reason not in message else message


def _os_reason(error: BaseException) -> str | None:
    """``strerror`` of the innermost ``OSError`` among the causes of ``error``, if any."""
    seen: set[int] = set()
    current: BaseException | None = error
    reason = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            reason = current.strerror
        current = current.__cause__ or current.__context__
    return reason
