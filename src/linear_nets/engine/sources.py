"""Where the fit loop's minibatches come from: tensors in memory, or partitions on disk.

Both kinds are a :class:`Source`: ``len()`` batches per epoch, iterating yields the next
epoch's ``(X, y)`` batches on the training device, ``to(device)`` says which device that is.

- :class:`TensorSource` holds the data on the device: one ``randperm`` per epoch, the
  shuffled rows gathered ``GATHER_BYTES`` (8 MB) at a time into one buffer, then contiguous
  slices (views) of it. No per-row ``Dataset.__getitem__``, no host-to-device copy per batch
  (what ``DataLoader(TensorDataset)`` does), and no second copy of the whole data. A batch is
  valid until the next chunk is gathered: use it (as the fit loop does) or clone it before
  drawing later ones.
- :class:`PartitionSource` streams partitions (e.g. Parquet files through kedro-datasets'
  ``PartitionedDataset``) that need not fit in memory: the partitions in a seeded random
  order each epoch, their rows shuffled within a buffer of ``shuffle_buffer`` rows, each batch
  copied to the device. The decoded Arrow columns go straight into the buffer; with more than
  one core the decoding, the copying and shuffling, and the steps run in three threads. A
  share of the partitions per rank (:meth:`PartitionSource.shard`) feeds data-parallel
  training.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import math
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import torch

Batch = tuple[torch.Tensor, torch.Tensor]
PartitionLoader = Callable[[], Any]
"""Loads one partition as a table (a pandas DataFrame, or anything with ``to_pandas()``)."""


class Source(Protocol):
    """What the fit loop reads: batches per epoch and, per iteration, one epoch of batches.

    A source may also say where its data hold a value that is not finite
    (``find_non_finite() -> str | None``, as both sources here do): the fit loop asks it after
    an epoch whose loss is not finite, to tell bad data from a learning rate that is too high.
    """

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Batch]: ...

    def to(self, device: torch.device) -> Source: ...


GATHER_BYTES = 8 << 20
"""How many bytes of shuffled rows :class:`TensorSource` gathers at a time."""


class TensorSource:
    """Iterate over ``(X, y)`` in shuffled minibatches; full batch when ``batch_size`` is None.

    The permutation comes from a CPU generator seeded once, so the batch order is the same
    on every device.
    """

    def __init__(
        self, X: torch.Tensor, y: torch.Tensor, batch_size: int | None = None, *, seed: int = 0
    ) -> None:
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
        if len(X) == 0:
            raise ValueError("cannot train on an empty data set")
        self.X, self.y = X, y
        self.n = len(X)
        self.batch_size = self.n if batch_size is None else min(batch_size, self.n)
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def to(self, device: torch.device) -> TensorSource:
        """Move the data to ``device`` once; the shuffle continues where it was."""
        self.X, self.y = self.X.to(device), self.y.to(device)
        return self

    def find_non_finite(self) -> str | None:
        """Where the first NaN or infinite value of the data is ("row 3, the target: nan"),
        or None. A pass over the data, made only when a loss is not finite."""
        columns = list(self.X.reshape(self.n, -1).T.cpu().numpy())
        if self.y.is_floating_point():  # class labels are integers: always finite
            columns += list(self.y.reshape(self.n, -1).T.cpu().numpy())
        where = first_non_finite(columns)
        if where is None:
            return None
        row, column = where
        label = f"feature {column}" if column < self.X[0].numel() else "the target"
        return f"row {row}, {label}: {columns[column][row]}"

    def __iter__(self) -> Iterator[Batch]:
        if self.batch_size == self.n:
            yield self.X, self.y
            return
        # One gather per chunk of whole batches (about GATHER_BYTES), then views of it: the same
        # rows in the same order as a gather per batch, with few indexing calls for small
        # batches, and no epoch-sized copy (a fresh 150 MB each Fashion-MNIST epoch, 1.7x slower).
        # The chunk is gathered into one buffer allocated per epoch (``index_select(out=)``):
        # a fresh 8 MB tensor per chunk costs a third more than the gather itself (page faults).
        order = torch.randperm(self.n, generator=self.generator).to(self.X.device)
        row_bytes = max(self.X[0].numel() * self.X.element_size(), 1)
        chunk = min(max(GATHER_BYTES // (row_bytes * self.batch_size), 1) * self.batch_size, self.n)
        X_buffer = self.X.new_empty((chunk, *self.X.shape[1:]))
        y_buffer = self.y.new_empty((chunk, *self.y.shape[1:]))
        for first in range(0, self.n, chunk):
            rows = order[first : first + chunk]
            X = torch.index_select(self.X, 0, rows, out=X_buffer[: len(rows)])
            y = torch.index_select(self.y, 0, rows, out=y_buffer[: len(rows)])
            for start in range(0, len(rows), self.batch_size):
                yield X[start : start + self.batch_size], y[start : start + self.batch_size]


ARROW_BLOCK_ROWS = 65_536
"""Rows decoded and copied into the tensors at a time: a record batch (4.5 MB at 17 float32
columns) stays in the CPU's cache between Parquet's decoder and the copy. Whole columns at once
ran at a third of the speed; 32 768 rows, at 0.76-0.81 of the plain read against 0.85-0.86
(one core, ``benchmarks/scale.py --rates``)."""


def table_to_tensors(
    table: Any,
    target: str,
    *,
    where: str = "",
    features: list[str] | None = None,
    column_major: bool = False,
    blocks: _Recycled | None = None,
) -> Batch:
    """``(X, y)`` as float32 tensors from a table: ``target`` is y, every other column a feature.

    ``table`` is a ``pyarrow.parquet.ParquetFile`` (what
    :class:`~linear_nets.datasets.arrow_parquet.ArrowParquetDataset` loads: its record batches
    are decoded straight into the tensors, without pandas or a whole decoded table), a pyarrow
    Table, or a pandas DataFrame. Nulls become NaN.

    X is row-major by default. With ``column_major`` it is the transposed view of a contiguous
    (features, rows) tensor: each column is one contiguous copy of the decoded Arrow column
    (a ``memcpy``, at the rate of the plain read; the row-major copy scatters every value and
    ran at about half of it). ``X.T`` is then contiguous; indexing, slicing and matrix products
    take X as it is (BLAS reads the transposed layout directly). X and y are then views of one
    ``(features + 1, rows)`` block, taken from ``blocks`` when given. ``features`` (the names
    another table had) fixes the columns of X, by name, in that order.

    Raises:
        ValueError: if ``target`` is missing, the table has no feature column, a column is not
            numbers, or its feature columns are not ``features``.
    """
    features, rows = table_columns(table, target, where=where, features=features)
    if column_major:  # one (features + 1, rows) block: X its first rows transposed, y its last
        shape = (len(features) + 1, rows)
        block = np.empty(shape, dtype=np.float32) if blocks is None else blocks.take(shape)
        X, y = block[:-1].T, block[-1]
    else:
        X = np.empty((rows, len(features)), dtype=np.float32)
        y = np.empty(rows, dtype=np.float32)
    start = 0
    for columns, target_column in _column_chunks(table, features, target):
        stop = start + len(target_column)
        if stop > rows:
            raise ValueError(f"read more rows than the {rows} the file's metadata promised")
        for index, column in enumerate(columns):
            X[start:stop, index] = column
        y[start:stop] = target_column
        start = stop
    if start != rows:
        raise ValueError(f"read {start} rows where the file's metadata promised {rows}")
    return torch.from_numpy(X), torch.from_numpy(y)


def table_columns(
    table: Any, target: str, *, where: str = "", features: list[str] | None = None
) -> tuple[list[str], int]:
    """The feature columns of a table (every column but ``target``) and its number of rows,
    read from a ParquetFile's metadata without decoding anything. Given ``features`` (those of
    the first partition by id: :func:`feature_names`), the table must have the same ones, in
    any order, and they come back in that order: columns are matched by name, never by place.

    Raises:
        ValueError: if ``target`` is missing, the table has no feature column, a column is not
            numbers, or the feature columns are not ``features``.
    """
    if hasattr(table, "iter_batches"):  # a ParquetFile: read lazily
        names, rows = list(table.schema_arrow.names), table.metadata.num_rows
    elif hasattr(table, "column_names"):  # a pyarrow Table
        names, rows = list(table.column_names), table.num_rows
    else:
        names, rows = list(table.columns), len(table)
    expected = features
    place = f" in partition {where!r}" if where else ""
    if target not in names:
        raise ValueError(f"no target column {target!r}{place}: columns {names}")
    found = [column for column in names if column != target]
    if not found:
        raise ValueError(f"no feature columns{place} besides the target {target!r}")
    for name, kind in _non_numeric(table):
        raise ValueError(
            f"column {name!r}{place} holds {kind}, not numbers: every column is a feature or "
            f"the target {target!r}, read as float (integers and booleans are numbers too)"
        )
    if expected is None or sorted(found) == sorted(expected):
        return found if expected is None else expected, rows
    missing = [column for column in expected if column not in found]
    new = [column for column in found if column not in expected]
    differs = (
        f"{len(found)} feature columns where the first partition by id has {len(expected)}"
        if len(found) != len(expected)
        else "other feature columns than the first partition by id"
    )
    named = [f"missing {missing}" if missing else "", f"new {new}" if new else ""]
    raise ValueError(f"partition {where!r} has {differs}: {'; '.join(filter(None, named))}")


def _non_numeric(table: Any) -> list[tuple[str, str]]:
    """``(column, its type)`` for each column of a ParquetFile, a pyarrow Table or a DataFrame
    that holds neither integers, floats nor booleans (strings, dates, decimals, nested)."""
    if hasattr(table, "iter_batches") or hasattr(table, "column_names"):
        import pyarrow as pa

        schema = table.schema_arrow if hasattr(table, "iter_batches") else table.schema
        numeric = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean)
        return [
            (field.name, str(field.type))
            for field in schema
            if not any(is_kind(field.type) for is_kind in numeric)
        ]
    return [
        (str(name), str(dtype))
        for name, dtype in table.dtypes.items()
        if getattr(dtype, "kind", "O") not in "biuf"
    ]


def _column_chunks(
    table: Any, features: list[str], target: str
) -> Iterator[tuple[list[np.ndarray], np.ndarray]]:
    """A table's feature columns and target column as numpy arrays, :data:`ARROW_BLOCK_ROWS`
    rows at a time for a ParquetFile or a pyarrow Table (each column a view of the decoded
    Arrow column where it can be, which keeps that memory alive), whole columns for a
    DataFrame.

    The one way a table's values leave Arrow in a stream: :func:`table_to_tensors` copies the
    chunks into X, :class:`PartitionSource` straight into its shuffle buffer.
    """
    if hasattr(table, "iter_batches"):
        batches = table.iter_batches(batch_size=ARROW_BLOCK_ROWS, columns=[*features, target])
    elif hasattr(table, "column_names"):
        batches = table.select([*features, target]).to_batches(max_chunksize=ARROW_BLOCK_ROWS)
    else:  # ``frame[features].to_numpy()`` would copy twice more (the selection, the transpose)
        yield [table[name].to_numpy() for name in features], table[target].to_numpy()
        return
    for batch in batches:
        columns = [column.to_numpy(zero_copy_only=False) for column in batch.columns]
        yield columns[:-1], columns[-1]


def first_non_finite(columns: list[np.ndarray]) -> tuple[int, int] | None:
    """``(row, column index)`` of the first row of ``columns`` (numpy arrays of one length)
    that holds a NaN or an infinite value (a missing value decodes as NaN), the leftmost such
    column of that row; None when every value is finite."""
    first: tuple[int, int] | None = None
    for index, column in enumerate(columns):
        finite = np.isfinite(column)
        if not finite.all():
            row = int(np.argmin(finite))
            if first is None or row < first[0]:
                first = (row, index)
    return first


def _release_arrow_memory(table: Any) -> None:
    """Give back to the OS what Arrow's allocator kept from reading ``table`` as a whole.

    mimalloc, pyarrow's default pool, holds freed pages for reuse: after each whole Parquet read
    about three times the partition stays resident, which made the peak of a stream grow with
    the partitions read. Record batches of a lazy file (a ParquetFile) leave little behind, and
    the release costs a quarter of a batch-by-batch read, so for those it does nothing; nor
    when pyarrow was never imported.
    """
    if hasattr(table, "iter_batches"):
        return
    arrow = sys.modules.get("pyarrow")
    if arrow is not None:
        arrow.default_memory_pool().release_unused()


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. under ``taskset``)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@contextlib.contextmanager
def streaming_threads() -> Iterator[int]:
    """Share the cores between the partition reader and torch while a stream runs.

    The next partition is read in one background thread while torch works on the current one
    with the other cores: ``usable_cores() - 1`` intra-op threads, at least 1, and never more
    than torch was given before (a rank of a data-parallel job already has its share). With
    both at full width on two cores they fight (the issue's profile: the streamed normal
    equations took 2.7x as long with torch at 2 threads as at 1): torch's OpenMP threads spin
    while they wait. Arrow's pool decodes the columns with one thread per usable core (its
    default counts the machine's cores, not this process's affinity; a rank of a job given
    fewer torch threads gets one more than those): its threads sleep when idle, so on two cores
    the decoding takes the core that the arithmetic leaves free (the streamed QR and the SGD
    epoch ran 1.2-1.75x as fast as with Arrow held to one thread; benchmarks/README.md).
    Restored afterwards. torch keeps the count per thread (a new thread starts from the last
    one set), so the thread that does the arithmetic enters this itself.

    Yields:
        The number of torch threads chosen.
    """
    import pyarrow as pa

    torch_before, arrow_before = torch.get_num_threads(), pa.cpu_count()
    chosen = max(1, min(torch_before, usable_cores() - 1))
    torch.set_num_threads(chosen)
    pa.set_cpu_count(min(usable_cores(), torch_before + 1))  # a rank's share, one more
    try:
        yield chosen
    finally:
        torch.set_num_threads(torch_before)
        pa.set_cpu_count(arrow_before)


def read_partitions(
    partitions: Mapping[str, PartitionLoader],
    target: str,
    order: list[str] | None = None,
    *,
    features: list[str] | None = None,
) -> Iterator[tuple[str, torch.Tensor, torch.Tensor]]:
    """Load the partitions one at a time (in ``order``, or sorted by id) as ``(id, X, y)``,
    X's columns those of ``features`` by name (by default :func:`feature_names`).

    X is a float32 ``(rows, features)`` tensor, column-major (``X.T`` is contiguous: see
    :func:`table_to_tensors`), and y a float32 ``(rows,)`` one, both the caller's to keep:
    the two are views of one ``(features + 1, rows)`` block, and a block is reused for a later
    partition only once the caller holds no view of it (:class:`_Recycled`).

    With more than one core, the next :data:`READ_AHEAD` partitions are read (decoded and
    copied into their blocks) in as many background threads while the caller works on the
    current one, so the caller's partition and at most ``READ_AHEAD`` more are held (one more
    while the caller's loop hands its last one over); the threads are shared out as
    :func:`streaming_threads` says for as long as the iteration runs. On a single core the
    partitions are read in the caller's thread.
    """
    names = sorted(partitions) if order is None else order
    # the caller's partition, the one it still holds while the next is handed over, those read
    blocks = _Recycled(keep=READ_AHEAD + 2)
    if not names:
        return
    columns = feature_names(partitions, target) if features is None else features

    def load(name: str) -> tuple[str, torch.Tensor, torch.Tensor]:
        table = partitions[name]()
        X, y = table_to_tensors(
            table, target, where=name, features=columns, column_major=True, blocks=blocks
        )
        _release_arrow_memory(table)
        return name, X, y

    with streaming_threads():
        if usable_cores() == 1:  # nothing to overlap with: a thread would only add switches
            for name in names:
                yield load(name)
            return
        with ThreadPoolExecutor(READ_AHEAD, thread_name_prefix="partition-reader") as readers:
            pending = collections.deque(readers.submit(load, name) for name in names[:READ_AHEAD])
            upcoming = iter(names[READ_AHEAD:])
            try:
                while pending:
                    current = pending.popleft().result()
                    following = next(upcoming, None)
                    if following is not None:
                        pending.append(readers.submit(load, following))
                    yield current
            finally:  # a caller that stops early leaves no read behind
                for future in pending:
                    future.cancel()


READ_AHEAD = 2
"""Partitions :func:`read_partitions` reads at once, in as many threads, ahead of the caller:
on two cores one partition's copy runs beside the next one's decoding (one thread doing both
in turn left the reader at 0.70-0.77 of the plain read)."""


def column_chunks(
    partitions: Mapping[str, PartitionLoader],
    target: str,
    order: list[str] | None = None,
    *,
    features: list[str] | None = None,
) -> Iterator[tuple[str, list[np.ndarray], np.ndarray]]:
    """The partitions' columns as Arrow decodes them (in ``order``, or sorted by id),
    :data:`ARROW_BLOCK_ROWS` rows at a time: ``(partition id, feature columns, target column)``,
    the feature columns by name in the order of ``features`` (by default
    :func:`feature_names`'s; a partition with other feature columns is refused by name),
    read-only numpy views of the decoded columns in their own dtype, for a consumer that copies
    them once to where it needs them (the streamed QR into its float64 block, the SGD stream
    into its shuffle buffer); :func:`read_partitions` gives float32 tensors instead.

    With more than one core the chunks are decoded in a background thread, up to
    :data:`DECODED_AHEAD` ahead of the caller (the caller shares the cores out with
    :func:`streaming_threads`); closing this stops that thread.
    """
    names = sorted(partitions) if order is None else order
    if features is None and names:
        features = feature_names(partitions, target)
    chunks = _decoded_chunks(partitions, target, names, features or [])
    yield from chunks if usable_cores() == 1 else _in_background(chunks, ahead=DECODED_AHEAD)


def feature_names(partitions: Mapping[str, PartitionLoader], target: str) -> list[str]:
    """The feature columns of the partitions, in the order every stream reads them: those of
    the first partition by id, whatever share, order or epoch reads them (a rank, a shuffled
    epoch, the exact solve and the model all see the same columns in the same places)."""
    first = min(partitions)
    return table_columns(partitions[first](), target, where=first)[0]


def _decoded_chunks(
    partitions: Mapping[str, PartitionLoader], target: str, order: list[str], features: list[str]
) -> Iterator[tuple[str, list[np.ndarray], np.ndarray]]:
    """``(partition id, feature columns, target column)`` for each decoded chunk of the
    partitions in ``order`` (see :func:`_column_chunks`), the feature columns ``features``."""
    for name in order:
        table = partitions[name]()
        table_columns(table, target, where=name, features=features)
        for columns, target_column in _column_chunks(table, features, target):
            yield name, columns, target_column
        _release_arrow_memory(table)


_DONE = object()

DECODED_AHEAD = 4
"""Decoded chunks (of :data:`ARROW_BLOCK_ROWS` rows) that the decoding thread of
:func:`column_chunks` may hold ready for its consumer: about 9 MB at 17 float32 columns."""


def _in_background(items: Iterator[Any], ahead: int = 1) -> Iterator[Any]:
    """Iterate ``items`` in a background thread, at most ``ahead`` items ahead of the caller;
    its error is raised here. A caller that stops early stops the thread (and closes
    ``items``)."""
    ready: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def put(entry: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                ready.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_DONE, None))
        except BaseException as exc:  # handed to the consumer below
            put((_DONE, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        while True:
            item, error = ready.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        thread.join()


class _Recycled:
    """float32 arrays, each handed out again (for the same shape) once nothing uses it.

    A tensor made by ``torch.from_numpy`` keeps its array alive, and so does every view of that
    tensor: an array whose only reference is this pool's is free, whoever held it. Reusing it
    spares the page faults of fresh memory (a 17 MB array costs about 4 000 of them, a third of
    the copy into it); a caller that keeps what it was given is never overwritten. At most
    ``keep`` arrays are kept for reuse. Safe to share between threads.
    """

    def __init__(self, keep: int = 4) -> None:
        self.keep = keep
        self.arrays: list[np.ndarray] = [np.empty(0, dtype=np.float32)]
        # What ``sys.getrefcount`` says of an array held by the list alone, measured as take()
        # measures it (the interpreter's own references differ between Python versions).
        self._alone = sys.getrefcount(self.arrays[0])
        self.arrays.clear()
        self._lock = threading.Lock()

    def take(self, shape: tuple[int, ...]) -> np.ndarray:
        with self._lock:
            free = [i for i in range(len(self.arrays)) if self._is_free(i)]
            for i in free:
                if self.arrays[i].shape == shape:
                    return self.arrays[i]
            array = np.empty(shape, dtype=np.float32)
            if len(self.arrays) < self.keep:
                self.arrays.append(array)
            elif free:  # a free array of another shape makes room
                self.arrays[free[0]] = array
            return array

    def _is_free(self, index: int) -> bool:
        return sys.getrefcount(self.arrays[index]) == self._alone


@dataclass
class PartitionSource:
    """Stream minibatches from partitions that need not fit in memory.

    Args:
        partitions: partition id -> loader, as ``PartitionedDataset.load()`` returns them.
        rows: rows per partition id (from the streamed pass that solves the least squares),
            which gives the number of batches per epoch before reading anything.
        target: the column to predict; every other column is a feature.
        batch_size: rows per batch; None reads the whole share as one batch.
        seed: seed of the partition order and the row shuffle (combined with the epoch).
        shuffle_buffer: rows shuffled together; the memory held is the buffer and up to
            four shuffled blocks of this many rows (recycled), plus a few decoded record
            batches, whatever the partitions' size.

    Batches are the transposed views of column-major blocks (``X.T`` is contiguous), as
    :func:`read_partitions` gives X; on a GPU each block is pinned row-major first.
    """

    partitions: Mapping[str, PartitionLoader]
    rows: Mapping[str, int]
    target: str = "y"
    batch_size: int | None = None
    seed: int = 0
    shuffle_buffer: int = 250_000
    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    epoch: int = 0

    def __post_init__(self) -> None:
        missing = sorted(set(self.partitions) - set(self.rows))
        if missing:
            raise ValueError(f"no row count for partition(s) {missing[:5]}")
        if not self.partitions or sum(self.rows[name] for name in self.partitions) == 0:
            raise ValueError("cannot train on an empty data set: no rows in any partition")

    def _share(self, rank: int) -> list[str]:
        return sorted(self.partitions)[rank :: self.world_size]

    @functools.cached_property
    def features(self) -> list[str]:
        """The feature columns, in the order every epoch and rank reads them
        (:func:`feature_names`)."""
        return feature_names(self.partitions, self.target)

    @property
    def share(self) -> list[str]:
        """This rank's partition ids: every ``world_size``-th (sorted by id) from ``rank``."""
        return self._share(self.rank)

    def _share_rows(self, rank: int) -> int:
        return sum(self.rows[name] for name in self._share(rank))

    def _local_batch(self) -> int | None:
        if self.batch_size is None:
            return None
        return math.ceil(self.batch_size / self.world_size)

    def shard(self, rank: int, world_size: int) -> PartitionSource:
        """This rank's share: every ``world_size``-th partition (sorted by id) from ``rank``,
        with a batch of ``batch_size / world_size`` rows so that the global batch stays the
        same."""
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside a world of {world_size}")
        if len(self.partitions) < world_size:
            raise ValueError(
                f"{len(self.partitions)} partition(s) cannot give each of {world_size} "
                "processes a share: write more, smaller partitions"
            )
        return replace(self, rank=rank, world_size=world_size)

    def __len__(self) -> int:
        """Batches per epoch: the most any rank takes, so every rank steps the same schedule."""
        counts = []
        for rank in range(self.world_size):
            rows, batch = self._share_rows(rank), self._local_batch()
            counts.append(1 if batch is None else math.ceil(rows / batch))
        return max(counts)

    def to(self, device: torch.device) -> PartitionSource:
        """Batches go to ``device`` as they are made."""
        self.device = torch.device(device)
        return self

    def find_non_finite(self) -> str | None:
        """Where the first NaN, infinite or missing (null) value of this rank's partitions is
        ("partition 'part-3', row 17, column 'x2': nan"), or None. A pass over the partitions,
        made only when a loss is not finite."""
        offsets: dict[str, int] = collections.Counter()
        chunks = column_chunks(self.partitions, self.target, self.share, features=self.features)
        with contextlib.closing(chunks):
            for name, columns, target_column in chunks:
                values = [*columns, target_column]
                where = first_non_finite(values)
                if where is None:
                    offsets[name] += len(target_column)
                    continue
                row, index = where
                column = [*self.features, self.target][index]
                return (
                    f"partition {name!r}, row {offsets[name] + row}, column {column!r}: "
                    f"{values[index][row]}"
                )
        return None

    def __iter__(self) -> Iterator[Batch]:
        self.epoch += 1
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        share = self._share(self.rank)
        order = [share[i] for i in torch.randperm(len(share), generator=generator).tolist()]
        batch = self._local_batch()
        if batch is None:
            yield from self._whole(order)
            return
        # The shuffled blocks are made in a background thread, one block ahead of the batches
        # taken from them here: on two cores the reading, the copying and the shuffling run
        # beside the SGD steps instead of between them.
        # (torch's thread count is per thread: the steps here take it from this thread's)
        with streaming_threads():
            blocks = self._shuffled_blocks(order, batch, generator)
            for X_all, y_all in blocks if usable_cores() == 1 else _in_background(blocks):
                yield from self._batches(X_all, y_all, batch)

    def _shuffled_blocks(
        self, order: list[str], batch: int, generator: torch.Generator
    ) -> Iterator[Batch]:
        """The rows of the partitions in ``order`` in shuffled blocks of whole batches (the last
        block takes the rest).

        Rows wait in one column-major buffer, allocated per epoch and refilled in place: the
        decoded Arrow columns are copied straight into it (one ``memcpy`` a column, no
        partition-sized tensor in between), and a block is the buffer's columns gathered in a
        seeded random order, handed out as the transposed view of a (features, rows) tensor
        (see :func:`table_to_tensors`). The memory held is the buffer, the shuffled blocks
        (whose views are the batches) and one decoded record batch, whatever ``n``.
        """
        capacity = min(max(self.shuffle_buffer, batch), self._share_rows(self.rank))
        waiting: np.ndarray | None = None  # (features + 1, capacity): y is the last row
        blocks: _Recycled | None = None
        held = 0
        chunks = column_chunks(self.partitions, self.target, order, features=self.features)
        try:
            for _name, columns, target_column in chunks:
                if waiting is None:  # (column_chunks refuses a partition with other columns)
                    waiting = np.empty((len(columns) + 1, capacity), dtype=np.float32)
                    blocks = _Recycled()
                start = 0
                while start < len(target_column):
                    take = min(capacity - held, len(target_column) - start)
                    for index, column in enumerate([*columns, target_column]):
                        waiting[index, held : held + take] = column[start : start + take]
                    held, start = held + take, start + take
                    if held == capacity:
                        shuffled = self._shuffled(waiting, held, blocks, generator)
                        full = held - held % batch
                        yield shuffled[:-1, :full].T, shuffled[-1, :full]
                        held -= full  # the rest starts the next buffer
                        waiting[:, :held] = shuffled[:, full:].numpy()
                        del shuffled
        finally:  # stops the decoding thread when the epoch ends early
            chunks.close()
        if held and waiting is not None and blocks is not None:
            shuffled = self._shuffled(waiting, held, blocks, generator)
            yield shuffled[:-1].T, shuffled[-1]

    def _whole(self, order: list[str]) -> Iterator[Batch]:
        reads = read_partitions(self.partitions, self.target, order, features=self.features)
        parts = [(X, y) for _name, X, y in reads]
        if parts:
            yield self._move(torch.cat([X for X, _ in parts]), torch.cat([y for _, y in parts]))

    @staticmethod
    def _shuffled(
        waiting: np.ndarray, held: int, blocks: _Recycled, generator: torch.Generator
    ) -> torch.Tensor:
        """The first ``held`` columns (rows of the data) waiting, in a seeded random order, as
        a ``(features + 1, held)`` tensor in a recycled block: one ``index_select``.

        The order is int32 (the same permutation as int64's): a fifth less time to draw and
        to gather by."""
        order = torch.randperm(
            held, generator=generator, dtype=torch.int32 if held < 2**31 else torch.int64
        )
        out = torch.from_numpy(blocks.take((len(waiting), held)))
        return torch.index_select(torch.from_numpy(waiting)[:, :held], 1, order, out=out)

    def _batches(self, X: torch.Tensor, y: torch.Tensor, batch: int) -> Iterator[Batch]:
        if self.device.type == "cuda":  # pinned once per block, row-major: the copies run async
            X = torch.empty(X.shape, dtype=X.dtype, pin_memory=True).copy_(X)
            y = y.pin_memory()
        for start in range(0, len(y), batch):
            yield self._move(X[start : start + batch], y[start : start + batch])

    def _move(self, X: torch.Tensor, y: torch.Tensor) -> Batch:
        if self.device.type == "cpu":
            return X, y
        return X.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
