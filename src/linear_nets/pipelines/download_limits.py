"""The download limits every ``<pipeline>.source`` parameter block shares.

Not a pipeline (``find_pipelines`` looks only at the folders beside this file): the base of
the StatLib and the Fashion-MNIST source parameters.
"""

from __future__ import annotations

from pydantic import Field

from linear_nets.datasets.download import DownloadLimits
from linear_nets.engine.config import StrictModel


class DownloadLimitsConfig(StrictModel):
    """``timeout_s``, ``deadline_s`` and ``max_bytes`` of one file's download."""

    timeout_s: float = Field(30.0, gt=0, description="the longest wait for one read")
    deadline_s: float = Field(
        60.0,
        gt=0,
        description="the longest one file's download may take (a read in progress: + timeout_s)",
    )
    max_bytes: int = Field(10_000_000, gt=0, description="the largest file accepted")

    def limits(self, param: str) -> DownloadLimits:
        """The limits, for the dataset that downloads.

        Args:
            param: where these parameters live (e.g. ``boston.source``), named in errors.

        Returns:
            The limits as :func:`linear_nets.datasets.download.download` takes them.
        """
        return DownloadLimits(
            timeout_s=self.timeout_s,
            deadline_s=self.deadline_s,
            max_bytes=self.max_bytes,
            param=param,
        )
