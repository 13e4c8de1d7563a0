"""The MLflow HTTP limits every kedro command sets (linear_nets.tracking.http_limits)."""

from __future__ import annotations

import pytest
from mlflow.environment_variables import (
    MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR,
    MLFLOW_HTTP_REQUEST_MAX_RETRIES,
    MLFLOW_HTTP_REQUEST_TIMEOUT,
)

from linear_nets.tracking.http_limits import HTTP_LIMITS, apply_http_limits


def test_mlflow_reads_the_limits_and_a_value_of_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch,
):
    for name in HTTP_LIMITS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "77")
    apply_http_limits()
    assert MLFLOW_HTTP_REQUEST_MAX_RETRIES.get() == 2
    assert MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR.get() == 2
    assert MLFLOW_HTTP_REQUEST_TIMEOUT.get() == 77


def test_a_dead_server_costs_a_request_seconds_not_minutes():
    retries = int(HTTP_LIMITS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"])
    factor = int(HTTP_LIMITS["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"])
    # urllib3 waits factor * 2 ** (n - 1) after the n-th consecutive failure, the first one not
    waits = [0] + [factor * 2 ** (n - 1) for n in range(2, retries + 1)]
    assert sum(waits) + retries <= 10  # plus up to a second of jitter per wait
    assert (retries + 1) * int(HTTP_LIMITS["MLFLOW_HTTP_REQUEST_TIMEOUT"]) <= 120
