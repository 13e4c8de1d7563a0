"""Bounded retries and timeouts for every request to a tracking server (``--env=team``).

MLflow's defaults (7 retries, backoff factor 2, 120 s timeout) keep a client retrying a dead
server for about four minutes per request: a ``kedro run`` whose server died retried for
twelve minutes and printed hundreds of lines. These defaults make a dead server (refused
connections, or 5xx answers while its PostgreSQL is down) fail a request in about 5 s and the
run within a minute, while still riding out a blip of a few seconds; a server that accepts
connections and never answers fails a request in about 95 s. They are MLflow's public
settings, so a value set in the environment wins. No effect on the local SQLite store.
"""

from __future__ import annotations

import os

HTTP_LIMITS = {
    # 3 attempts in all: a refused connection or a 5xx is tried again twice, then the run fails
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    # waits of 0 s then 4 s between the attempts (urllib3: factor * 2 ** (failures - 1), the
    # first wait skipped), plus up to a second of jitter each: ~5 s per request to a dead server
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "2",
    # seconds without an answer before an attempt counts as failed: a live server answers in
    # milliseconds, but one busy worker on a loaded machine was seen to take more than 10 s (and
    # MLflow retries even a POST, so a too-short timeout turns a slow create into "already
    # exists"). A server that accepts and never answers (stopped, partitioned) costs 3 x 30 s.
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def apply_http_limits() -> None:
    """Set the MLflow HTTP limits above, unless the environment already sets them."""
    for name, value in HTTP_LIMITS.items():
        os.environ.setdefault(name, value)
