"""What the terminal shows: third-party notices the user cannot act on are filtered by name,
and an error is shown as a short message (the traceback goes to ``info.log``).

Import-cheap on purpose (standard library only): ``linear_nets/__init__.py`` installs the
filters before any command imports MLflow, OmegaConf or the pipelines.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
import warnings
from collections.abc import Callable, Iterator

# (message regex, category, module regex) of each warning silenced, and why.
WARNING_FILTERS: tuple[tuple[str, type[Warning], str], ...] = (
    # Kedro 1.7 and kedro-mlflow 2.0.3 still call OmegaConf's deprecated
    # register_new_resolver(); nothing in this project can change that.
    (r"register_new_resolver\(\) is deprecated", UserWarning, r"(kedro|kedro_mlflow)\."),
)

# (logger, message regex) of each log record dropped, and why.
LOG_FILTERS: tuple[tuple[str, str], ...] = (
    # MLflow warns, with raw ANSI colour codes, at the definition of any PythonModel whose
    # `predict` has no type hints (kedro-mlflow's own, imported by every `kedro` command, even
    # `--help`). MLflow raises it under its own "once" filter, which overrides any warnings
    # filter, so it is dropped where Kedro's logging shows captured warnings.
    ("py.warnings", r"UserWarning: (\x1b\[[\d;]+m)?Add type hints to the `predict` method"),
    # uv environments have no pip; MLflow then writes an unpinned `pip` into the model's
    # conda.yaml, which is what it should do. The warning asks nothing of the user.
    ("mlflow.utils.environment", r"^Failed to resolve installed pip version"),
    # MLflow announces each check of a logged model's input example against its signature; a
    # failed check raises, so the announcement tells the user nothing.
    ("mlflow.pyfunc", r"^Validating input example against model signature$"),
    # kedro-mlflow announces, at every session, that it registers its `km.random_name` resolver.
    ("kedro_mlflow.framework.hooks.mlflow_hook", r"^Registering new custom resolver"),
)


# Lines that MLflow prints straight to stderr (``eprint``, which no log filter reaches) when it
# registers a model version; the run's summary says the same ("registered: version N"), so
# :func:`stderr_notes_to_debug_log` moves them to the debug log.
STDERR_NOTES: tuple[str, ...] = (
    r"^Successfully registered model '.*'\.$",
    r"^Registered model '.*' already exists\. Creating a new version of this model\.\.\.$",
    r"^Created version '.*' of model '.*'\.$",
)


class DropMessages(logging.Filter):
    """Drop the records whose message matches ``pattern``."""

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        return self.pattern.search(record.getMessage()) is None


def install_filters() -> None:
    """Install the warning and log filters above (idempotent)."""
    for message, category, module in WARNING_FILTERS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    for name, pattern in LOG_FILTERS:
        logger = logging.getLogger(name)
        if not any(
            isinstance(found, DropMessages) and found.pattern.pattern == pattern
            for found in logger.filters
        ):
            logger.addFilter(DropMessages(pattern))


@contextlib.contextmanager
def stderr_notes_to_debug_log() -> Iterator[None]:
    """Inside: the :data:`STDERR_NOTES` printed to stderr go to the debug log; every other line
    is written to stderr as it was when the block ends, also when the block raises."""
    notes = re.compile("|".join(STDERR_NOTES))
    terminal = sys.stderr
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            yield
    finally:
        for line in captured.getvalue().splitlines(keepends=True):
            if notes.match(line.strip()):
                logging.getLogger(__name__).debug("%s", line.strip())
            else:
                terminal.write(line)


_PYDANTIC_ERROR = re.compile(
    r"^(?P<field>\S.*)\n\s+(?P<message>.+?)(?: \[type=[^,\]]+(?:, input_value=(?P<value>.*?))?"
    r"(?:, input_type=[^\]]+)?\])?$",
    re.MULTILINE,
)
_PARAMETER = re.compile(r"^- Parameter '(?P<key>[^']+)': (?P<rest>.*)$", re.MULTILINE)


_EXTRA_FIELD = "Extra inputs are not permitted"  # pydantic's extra_forbidden: a key typo


def _parameter_lines(text: str, nearest: Callable[[str], str | None] | None) -> list[str]:
    """``Parameter validation failed:`` text from Kedro → one line per invalid field."""
    lines: list[str] = []
    starts = list(_PARAMETER.finditer(text))
    for number, start in enumerate(starts):
        end = starts[number + 1].start() if number + 1 < len(starts) else len(text)
        key, block = start["key"], text[start.end() : end]
        fields = []
        for found in _PYDANTIC_ERROR.finditer(block.strip("\n")):
            if found["field"].startswith("For further information"):
                continue
            path, message = f"{key}.{found['field'].strip()}", found["message"].strip()
            line = f"{path}: {message}" + (f" (got {found['value']})" if found["value"] else "")
            if message == _EXTRA_FIELD and nearest is not None and (hint := nearest(path)):
                line += f"; did you mean '{hint}'?"
            fields.append(line)
        lines.extend(fields or [f"{key}: {start['rest'].strip()}"])
    return lines


def short_message(error: BaseException, nearest: Callable[[str], str | None] | None = None) -> str:
    """The part of ``error`` a user needs: its first line, or one line per invalid parameter
    for Kedro's parameter validation, where ``nearest`` (a known key for a dotted path) turns
    an unknown field into a suggestion; never empty (the error's type name at least)."""
    text = str(error).strip()
    if text.startswith("Parameter validation failed:"):
        lines = _parameter_lines(text, nearest)
        if len(lines) == 1:
            return f"invalid parameter {lines[0]}"
        if lines:
            return "invalid parameters:\n  " + "\n  ".join(lines)
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first or type(error).__name__
