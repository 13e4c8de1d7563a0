"""One matplotlib figure, written as an image file: PNG, SVG or PDF, by the file's extension.

kedro-datasets has ``matplotlib.MatplotlibDataset``, but its module imports
``matplotlib.pyplot``, and kedro-viz builds every dataset of the catalog: ``kedro viz`` imported
matplotlib (half a second here) for figures it never draws. This dataset imports nothing of
matplotlib: a node hands it a :class:`matplotlib.figure.Figure` (the pipelines never use
pyplot), and ``Figure.savefig`` loads the backend that writes the file.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, NewType, NoReturn

import fsspec
from kedro.io.core import (
    AbstractVersionedDataset,
    DatasetError,
    Version,
    get_filepath_str,
    get_protocol_and_path,
)

from linear_nets.datasets.atomic import atomic_write

# kedro-viz picks a dataset's preview renderer by the *name* of `preview`'s return annotation
# (its documented contract for custom datasets); kedro-datasets keeps its own NewType in a
# private module, so the name is declared here.
ImagePreview = NewType("ImagePreview", str)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class FigureDataset(AbstractVersionedDataset["Figure", NoReturn]):
    """Save one figure to ``filepath`` (local, or any fsspec protocol such as ``s3://``).

    Example catalog entry::

        synthetic_fit_plot:
          type: linear_nets.datasets.FigureDataset
          filepath: data/08_reporting/synthetic_fit.png
          save_args:
            dpi: 120
    """

    def __init__(
        self,
        *,
        filepath: str,
        save_args: dict[str, Any] | None = None,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """
        Args:
            filepath: where to write; the extension picks the format unless ``save_args`` has one.
            save_args: passed to ``Figure.savefig`` (``dpi``, ``transparent``, ...).
            version: Kedro's load and save version (``versioned: true`` in the catalog).
            credentials: the filesystem's credentials (fsspec), e.g. for ``s3://``.
            fs_args: further arguments of the fsspec filesystem.
            metadata: free-form, e.g. kedro-viz's layer.
        """
        protocol, path = get_protocol_and_path(filepath, version)
        self._protocol = protocol
        fs_args = {"auto_mkdir": True, **(fs_args or {})} if protocol == "file" else fs_args
        self._fs = fsspec.filesystem(protocol, **(credentials or {}), **(fs_args or {}))
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )
        image_format = PurePosixPath(path).suffix.lstrip(".").lower() or "png"
        self._save_args = {"format": image_format, **(save_args or {})}
        self.metadata = metadata

    def load(self) -> NoReturn:
        raise DatasetError(f"{self._filepath} is written by the pipeline, never read back")

    def save(self, data: Figure) -> None:
        buffer = io.BytesIO()
        data.savefig(buffer, **self._save_args)
        path = get_filepath_str(self._get_save_path(), self._protocol)
        if self._protocol == "file":  # whole or not at all: no 0-byte image on a full disk
            with atomic_write(Path(path)) as file:
                file.write(buffer.getvalue())
        else:
            with self._fs.open(path, "wb") as file:
                file.write(buffer.getvalue())
        self._fs.invalidate_cache(get_filepath_str(self._filepath, self._protocol))

    def _exists(self) -> bool:
        try:
            path = get_filepath_str(self._get_load_path(), self._protocol)
        except DatasetError:  # versioned, and no version saved yet
            return False
        return self._fs.exists(path)

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": self._filepath,
            "protocol": self._protocol,
            "save_args": self._save_args,
            "version": self._version,
        }

    def preview(self) -> ImagePreview:
        """The latest saved image, base64-encoded, for kedro-viz's side panel."""
        with self._fs.open(get_filepath_str(self._get_load_path(), self._protocol), "rb") as file:
            return ImagePreview(base64.b64encode(file.read()).decode("ascii"))
