"""Fixtures for the boston tests (the helpers are in tests/support.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support import linear_rows


@pytest.fixture
def small_rows() -> np.ndarray:
    return linear_rows(60)
