"""Typed parameters of the boston pipeline (``conf/base/parameters_boston.yml``)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from linear_nets.engine.config import StrictModel

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


class SourceConfig(StrictModel):
    """Where the StatLib file comes from and the sha256 it must have (null: no pin)."""

    url: str = Field(pattern=r"^(https?|file)://")
    sha256: str | None
    timeout_s: float = Field(gt=0)

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256.match(value):
            raise ValueError(f"{value!r} is not a sha256 hex digest (64 hex characters)")
        return value.lower() if value else value


class SplitConfig(StrictModel):
    """Share of rows held out for testing and the seed of the shuffle."""

    test_size: float = Field(gt=0, lt=1)
    seed: int = Field(ge=0)
