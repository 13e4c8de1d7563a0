"""One Parquet file opened lazily with pyarrow: the partitions of the streamed pipelines.

kedro-datasets' ``pandas.ParquetDataset`` hands back a pandas DataFrame, and turning each
decoded Arrow column into a pandas block, then into the tensors the engine trains on, was half
of a stream's time and most of its memory. This dataset's ``load`` returns a
``pyarrow.parquet.ParquetFile`` (only the footer is read, as kedro-datasets'
``polars.LazyPolarsDataset`` returns a LazyFrame): the engine decodes its record batches straight
into tensors, and ``.read()`` gives the whole Table. ``save`` writes a Table or a pandas
DataFrame (without its index) with ``pyarrow.parquet.write_table``.
"""

from __future__ import annotations

from copy import deepcopy
from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import AbstractDataset, DatasetError, get_filepath_str, get_protocol_and_path


class ArrowParquetDataset(AbstractDataset[Any, Any]):
    """A Parquet file on any fsspec file system, loaded as a ``pyarrow.parquet.ParquetFile``.

    Example::

        synthetic_large_data:
          type: linear_nets.datasets.partitioned_space.SpaceCheckedPartitionedDataset
          path: data/01_raw/synthetic_large
          dataset:
            type: linear_nets.datasets.arrow_parquet.ArrowParquetDataset
            save_args: {use_dictionary: false}

    Args:
        filepath: the file, with an optional protocol (``s3://``...).
        load_args: keyword arguments of ``pyarrow.parquet.ParquetFile``.
        save_args: keyword arguments of ``pyarrow.parquet.write_table``.
        credentials, fs_args: for the fsspec file system.
        metadata: ignored by Kedro; for plugins.
    """

    def __init__(
        self,
        *,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        protocol, path = get_protocol_and_path(str(filepath))
        self.protocol = protocol
        self.filepath = PurePosixPath(path)
        self.fs = fsspec.filesystem(protocol, **deepcopy(credentials or {}), **(fs_args or {}))
        self.load_args = dict(load_args or {})
        self.save_args = dict(save_args or {})
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self.filepath), "protocol": self.protocol}

    def _local(self) -> bool:
        return self.protocol == "file"

    def load(self) -> Any:
        import pyarrow.parquet as pq

        path = get_filepath_str(self.filepath, self.protocol)
        if self._local():  # Arrow's own file: no Python file object in between
            return pq.ParquetFile(path, **self.load_args)
        return pq.ParquetFile(self.fs.open(path, mode="rb"), **self.load_args)

    def save(self, data: Any) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not isinstance(data, pa.Table):
            if not hasattr(data, "columns"):
                raise DatasetError(
                    f"{self.filepath}: can save a pyarrow Table or a pandas DataFrame, "
                    f"not {type(data).__name__}"
                )
            data = pa.Table.from_pandas(data, preserve_index=False)
        path = get_filepath_str(self.filepath, self.protocol)
        if self._local():
            self.fs.mkdirs(str(self.filepath.parent), exist_ok=True)
            pq.write_table(data, path, **self.save_args)
            return
        with self.fs.open(path, mode="wb") as file:
            pq.write_table(data, file, **self.save_args)

    def _exists(self) -> bool:
        return self.fs.exists(get_filepath_str(self.filepath, self.protocol))
