"""Both sources cover every row exactly once per epoch, in a seeded random order."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from kedro_datasets.partitions import PartitionedDataset

from linear_nets.engine import PartitionSource, TensorSource


def _rows(n: int, d: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    X = torch.arange(n * d, dtype=torch.float32).reshape(n, d)
    return X, torch.arange(n, dtype=torch.float32)


@pytest.mark.parametrize(("n", "batch_size"), [(103, 10), (100, 10), (5, 1), (7, 50)])
def test_every_row_once_per_epoch(n: int, batch_size: int) -> None:
    X, y = _rows(n)
    batches = TensorSource(X, y, batch_size, seed=3)
    for _ in range(3):
        seen = []
        for X_batch, y_batch in batches:
            assert len(X_batch) <= batch_size
            torch.testing.assert_close(X_batch, X[y_batch.long()])  # rows stay paired
            seen.append(y_batch)
        assert len(seen) == len(batches) == -(-n // min(batch_size, n))
        assert sorted(torch.cat(seen).long().tolist()) == list(range(n))


@pytest.mark.parametrize("gather_bytes", [1, 240, 8 << 20])
def test_batches_are_the_seeded_permutation_in_batch_order(
    monkeypatch: pytest.MonkeyPatch, gather_bytes: int
) -> None:
    # a batch is 10 rows of 8 bytes; gathered one batch, three batches (the last chunk: one and
    # a part) or the whole epoch at a time: always one seeded permutation, batch after batch
    monkeypatch.setattr("linear_nets.engine.sources.GATHER_BYTES", gather_bytes)
    X, y = _rows(103)
    batches, generator = TensorSource(X, y, 10, seed=4), torch.Generator().manual_seed(4)
    for _ in range(2):  # epochs
        order = torch.randperm(103, generator=generator)
        expected = [order[start : start + 10] for start in range(0, 103, 10)]
        got = [y_batch.long() for _, y_batch in batches]
        assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))


def test_order_is_shuffled_and_changes_between_epochs() -> None:
    batches = TensorSource(*_rows(200), 20, seed=0)
    first = torch.cat([y for _, y in batches])
    second = torch.cat([y for _, y in batches])
    assert not torch.equal(first, torch.arange(200.0))
    assert not torch.equal(first, second)


def test_same_seed_gives_the_same_order() -> None:
    one = [y for _, y in TensorSource(*_rows(50), 8, seed=5)]
    two = [y for _, y in TensorSource(*_rows(50), 8, seed=5)]
    other = [y for _, y in TensorSource(*_rows(50), 8, seed=6)]
    assert all(torch.equal(a, b) for a, b in zip(one, two, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(one, other, strict=True))


def test_full_batch_when_batch_size_is_none() -> None:
    X, y = _rows(9)
    batches = list(TensorSource(X, y))
    assert len(batches) == 1
    assert batches[0][0] is X and batches[0][1] is y


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="X has 3 rows but y has 4"):
        TensorSource(torch.zeros(3, 2), torch.zeros(4))


def test_empty_data_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        TensorSource(torch.zeros(0, 2), torch.zeros(0))


# --- PartitionSource: Parquet partitions read through kedro-datasets' PartitionedDataset ---

SIZES = (30, 25, 40, 5, 33)  # uneven on purpose


def _write_partitions(folder: Path, sizes: tuple[int, ...] = SIZES) -> dict[str, int]:
    """Partitions whose rows are numbered 0..n-1 in y, with x1 = 2 y and x2 = -y."""
    dataset = PartitionedDataset(
        path=str(folder), dataset="pandas.ParquetDataset", filename_suffix=".parquet"
    )
    start, frames = 0, {}
    for i, size in enumerate(sizes):
        y = torch.arange(start, start + size, dtype=torch.float32)
        frames[f"part-{i:02d}"] = pd.DataFrame({"x1": 2 * y, "x2": -y, "y": y})
        start += size
    dataset.save(frames)
    return {name: len(frame) for name, frame in frames.items()}


def _load(folder: Path) -> dict:
    return PartitionedDataset(
        path=str(folder), dataset="pandas.ParquetDataset", filename_suffix=".parquet"
    ).load()


@pytest.fixture
def partitions(tmp_path: Path) -> tuple[dict, dict[str, int]]:
    rows = _write_partitions(tmp_path / "parts")
    return _load(tmp_path / "parts"), rows


def _epoch(source: PartitionSource) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(source)


@pytest.mark.parametrize(("batch_size", "buffer"), [(8, 20), (7, 1000), (50, 1), (None, 10)])
def test_partition_source_sees_every_row_once_per_epoch(partitions, batch_size, buffer) -> None:
    loaders, rows = partitions
    source = PartitionSource(loaders, rows, batch_size=batch_size, seed=1, shuffle_buffer=buffer)
    total = sum(SIZES)
    for _ in range(3):
        batches = _epoch(source)
        assert len(batches) == len(source)
        for X, y in batches:
            assert X.dtype == y.dtype == torch.float32
            torch.testing.assert_close(X, torch.stack([2 * y, -y], dim=1))  # rows stay paired
            assert batch_size is None or len(y) <= batch_size
        seen = torch.cat([y for _, y in batches]).long()
        assert sorted(seen.tolist()) == list(range(total))


def test_partition_order_and_rows_are_shuffled_by_seed_and_epoch(partitions) -> None:
    loaders, rows = partitions

    def orders(seed: int, epochs: int = 2) -> list[list[int]]:
        source = PartitionSource(loaders, rows, batch_size=10, seed=seed, shuffle_buffer=40)
        return [torch.cat([y for _, y in source]).long().tolist() for _ in range(epochs)]

    first, second = orders(3)
    assert first == orders(3)[0] and second == orders(3)[1]  # seeded
    assert first != second  # a new order each epoch
    assert first != orders(4)[0]
    assert first != sorted(first)


def test_shuffling_mixes_rows_of_different_partitions_within_the_buffer(partitions) -> None:
    loaders, rows = partitions
    source = PartitionSource(loaders, rows, batch_size=16, seed=0, shuffle_buffer=60)
    owner = {int(v): i for i, (lo, hi) in enumerate(_bounds()) for v in range(lo, hi)}
    mixed = [len({owner[int(v)] for v in y}) for _, y in source]
    assert max(mixed) > 1


def _bounds() -> list[tuple[int, int]]:
    edges = [0]
    for size in SIZES:
        edges.append(edges[-1] + size)
    return list(zip(edges[:-1], edges[1:], strict=True))


def test_shards_split_the_partitions_between_ranks(partitions) -> None:
    loaders, rows = partitions
    source = PartitionSource(loaders, rows, batch_size=10, seed=0, shuffle_buffer=20)
    shards = [source.shard(rank, 2) for rank in range(2)]
    seen = [torch.cat([y for _, y in shard]).long().tolist() for shard in shards]
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == list(range(sum(SIZES)))
    # the global batch of 10 is split in 5 per rank; both step the larger shard's count
    assert all(len(y) <= 5 for shard in shards for _, y in shard)
    assert len(shards[0]) == len(shards[1]) == max(-(-40 // 5), -(-(30 + 40 + 33) // 5))


def test_too_few_partitions_for_the_ranks_is_refused(partitions) -> None:
    loaders, rows = partitions
    with pytest.raises(ValueError, match="5 partition"):
        PartitionSource(loaders, rows).shard(0, 6)


def test_a_stream_reads_a_bounded_number_of_partitions_ahead(tmp_path: Path) -> None:
    import time

    from linear_nets.engine.sources import DECODED_AHEAD

    rows = _write_partitions(tmp_path / "parts", (4,) * 12)
    loaded: list[str] = []

    def loader(name: str, load):
        loaded.append(name)
        return load()

    loaders = {
        name: functools.partial(loader, name, load)
        for name, load in _load(tmp_path / "parts").items()
    }
    source = PartitionSource(loaders, rows, batch_size=4, seed=0, shuffle_buffer=1)
    assert source.features == ["x1", "x2"] and loaded == ["part-00"]  # opened for its names
    loaded.clear()
    batches = iter(source)
    next(batches)
    time.sleep(0.5)  # time for the threads to read as far ahead as they may
    # the block in use, the block waiting for the steps, the block being handed over, the
    # decoded chunks waiting to be copied and the one being decoded: here (4 rows a partition,
    # a batch a block) a partition each, whatever the number of partitions
    assert len(loaded) <= DECODED_AHEAD + 4 < len(rows)
    batches.close()


def test_a_partition_without_the_target_is_named(tmp_path: Path) -> None:
    rows = _write_partitions(tmp_path / "parts", (4, 4))
    pd.DataFrame({"x1": [1.0], "x2": [2.0]}).to_parquet(tmp_path / "parts" / "part-01.parquet")
    source = PartitionSource(_load(tmp_path / "parts"), rows, batch_size=2, seed=0)
    with pytest.raises(ValueError, match=r"no target column 'y' in partition 'part-01'"):
        for _ in source:
            pass


def test_a_column_that_is_not_numbers_is_named_with_its_partition(tmp_path: Path) -> None:
    from linear_nets.engine import factor_partitions
    from linear_nets.engine.sources import table_to_tensors

    rows = _write_partitions(tmp_path / "parts", (4, 4))
    frame = pd.DataFrame({"x1": [1.0, 2.0], "x2": ["a", "b"], "y": [1.0, 2.0]})
    frame.to_parquet(tmp_path / "parts" / "part-01.parquet")
    loaders = _load(tmp_path / "parts")
    expected = r"column 'x2' in partition 'part-01' holds str, not numbers"
    with pytest.raises(ValueError, match=expected):
        list(PartitionSource(loaders, rows, batch_size=2, seed=0))
    with pytest.raises(ValueError, match=expected):
        factor_partitions(loaders, "y")
    with pytest.raises(ValueError, match=r"column 'x2' holds str, not numbers"):
        table_to_tensors(frame, "y")
    import pyarrow.parquet as pq  # as the catalog's ArrowParquetDataset loads a partition

    arrow = {
        name: functools.partial(pq.ParquetFile, tmp_path / "parts" / f"{name}.parquet")
        for name in rows
    }
    with pytest.raises(ValueError, match=r"'x2' in partition 'part-01' holds large_string, not"):
        factor_partitions(arrow, "y")
    numbers = pd.DataFrame({"i": [1, 2], "b": [True, False], "f": [0.5, 1.5], "y": [1, 2]})
    X, _y = table_to_tensors(numbers, "y")  # integers and booleans are numbers
    assert X.tolist() == [[1.0, 1.0, 0.5], [2.0, 0.0, 1.5]]


def test_columns_are_matched_by_name_whatever_their_place_in_a_partition(tmp_path: Path) -> None:
    from linear_nets.engine import factor_partitions
    from linear_nets.engine.sources import read_partitions

    rows = _write_partitions(tmp_path / "a", (6, 9, 4))  # x1 = 2 y, x2 = -y
    _write_partitions(tmp_path / "b", (6, 9, 4))
    path = tmp_path / "b" / "part-01.parquet"
    pd.read_parquet(path)[["y", "x2", "x1"]].to_parquet(path)  # the same columns, reordered
    in_order, reordered = _load(tmp_path / "a"), _load(tmp_path / "b")

    for (_, X_a, y_a), (_, X_b, y_b) in zip(
        read_partitions(in_order, "y"), read_partitions(reordered, "y"), strict=True
    ):
        assert torch.equal(X_a, X_b) and torch.equal(y_a, y_b)
    for batch_a, batch_b in zip(
        PartitionSource(in_order, rows, batch_size=4, seed=3),
        PartitionSource(reordered, rows, batch_size=4, seed=3),
        strict=True,
    ):
        assert torch.equal(batch_a[0], batch_b[0]) and torch.equal(batch_a[1], batch_b[1])
        assert torch.equal(batch_b[0][:, 0], 2 * batch_b[1])
    import pyarrow.parquet as pq  # as the catalog's ArrowParquetDataset loads a partition

    lazy = {
        name: functools.partial(pq.ParquetFile, tmp_path / "b" / f"{name}.parquet") for name in rows
    }
    R_a, R_b, R_lazy = (factor_partitions(parts, "y")[0].R for parts in (in_order, reordered, lazy))
    torch.testing.assert_close(R_a, R_b, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(R_a, R_lazy, rtol=1e-12, atol=1e-12)
    # whichever partition an epoch or a rank reads first: the rank of two whose share is
    # part-01 alone reads its columns in part-00's order too
    source = PartitionSource(reordered, rows, batch_size=4, seed=0)
    for share in (source, source.shard(1, 2)):
        for _epoch in range(4):
            for X, y in share:
                assert torch.equal(X[:, 0], 2 * y) and torch.equal(X[:, 1], -y)

    pd.read_parquet(path).rename(columns={"x2": "z"}).to_parquet(path)  # one renamed
    renamed = _load(tmp_path / "b")
    expected = r"^partition 'part-01' has other feature columns than the first partition by id: "
    expected += r"missing \['x2'\]; new \['z'\]$"
    with pytest.raises(ValueError, match=expected):
        factor_partitions(renamed, "y")
    with pytest.raises(ValueError, match=expected):
        list(read_partitions(renamed, "y"))


def test_where_the_data_are_not_finite_is_found_in_each_source(tmp_path: Path) -> None:
    X, y = _rows(20, d=3)
    assert TensorSource(X, y).find_non_finite() is None
    X[11, 2], X[14, 0] = float("inf"), float("nan")
    assert TensorSource(X, y).find_non_finite() == "row 11, feature 2: inf"
    y[5] = float("nan")
    assert TensorSource(X, y).find_non_finite() == "row 5, the target: nan"
    labels = torch.zeros(20, dtype=torch.long)  # class labels: integers, always finite
    assert TensorSource(X, labels).find_non_finite() == "row 11, feature 2: inf"

    rows = _write_partitions(tmp_path / "parts", (6, 9, 4))
    source = PartitionSource(_load(tmp_path / "parts"), rows, batch_size=4)
    assert source.find_non_finite() is None
    frame = pd.DataFrame({"x1": [1.0, 2.0, None, 4.0], "x2": 1.0, "y": [1.0, 2.0, 3.0, 4.0]})
    frame.to_parquet(tmp_path / "parts" / "part-01.parquet")  # a missing value in row 2
    source = PartitionSource(_load(tmp_path / "parts"), {**rows, "part-01": 4}, batch_size=4)
    assert source.find_non_finite() == "partition 'part-01', row 2, column 'x1': nan"
    # a rank looks in its own share only
    assert source.shard(0, 2).find_non_finite() is None  # part-00 and part-02
    assert source.shard(1, 2).find_non_finite() is not None


def test_missing_row_counts_are_refused(partitions) -> None:
    loaders, rows = partitions
    with pytest.raises(ValueError, match="no row count for partition"):
        PartitionSource(loaders, {"part-00": 30})


# --- the Arrow path: pyarrow ParquetFile and Table, decoded without pandas ---


def _arrow_file(folder: Path, rows: int = 30) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    y = pa.array([float(i) for i in range(rows)], type=pa.float64())
    x1 = pa.array([2.0 * i for i in range(rows)], type=pa.float32())
    x2 = pa.array([None if i == 3 else -i for i in range(rows)], type=pa.int64())
    path = folder / "part.parquet"
    # the target between the features, row groups smaller than a record batch
    pq.write_table(pa.table({"x1": x1, "y": y, "x2": x2}), path, row_group_size=11)
    return path


@pytest.mark.parametrize("block_rows", [7, 16_384])
def test_a_parquet_file_and_a_table_give_the_rows_pandas_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_rows: int
) -> None:
    import pyarrow.parquet as pq

    from linear_nets.engine.sources import table_to_tensors

    monkeypatch.setattr("linear_nets.engine.sources.ARROW_BLOCK_ROWS", block_rows)
    path = _arrow_file(tmp_path)
    X_pandas, y_pandas = table_to_tensors(pd.read_parquet(path), "y")
    for table in (pq.ParquetFile(path), pq.read_table(path)):
        X, y = table_to_tensors(table, "y")
        assert X.dtype == y.dtype == torch.float32 and X.is_contiguous()
        torch.testing.assert_close(X, X_pandas, equal_nan=True)
        torch.testing.assert_close(y, y_pandas)
    assert torch.isnan(X[3, 1]) and X[4, 1] == -4  # a null becomes NaN
    y[0] = 1.0  # the caller's own, writable tensors
    for table in (pq.ParquetFile(path), pq.read_table(path), pd.read_parquet(path)):
        X, y = table_to_tensors(table, "y", column_major=True)  # what a stream reads
        assert X.shape == (30, 2) and X.T.is_contiguous() and X.stride() == (1, 30)
        torch.testing.assert_close(X, X_pandas, equal_nan=True)
        torch.testing.assert_close(y, y_pandas)


def test_a_stream_reads_column_major_partitions(partitions) -> None:
    from linear_nets.engine.sources import read_partitions

    loaders, rows = partitions
    for name, X, y in read_partitions(loaders, "y"):
        assert X.T.is_contiguous() and len(X) == len(y) == rows[name]
        assert torch.equal(X[:, 0], 2 * y) and torch.equal(X[:, 1], -y)


def test_arrow_parquet_dataset_round_trip(tmp_path: Path) -> None:
    from linear_nets.datasets.arrow_parquet import ArrowParquetDataset
    from linear_nets.engine.sources import table_to_tensors

    dataset = ArrowParquetDataset(filepath=str(tmp_path / "deep" / "part.parquet"))
    assert not dataset.exists()
    dataset.save(pd.DataFrame({"x1": [1.0, 2.0], "y": [3.0, 4.0]}, index=[7, 8]))
    loaded = dataset.load()
    assert loaded.schema_arrow.names == ["x1", "y"]  # no index column
    X, y = table_to_tensors(loaded, "y")
    assert X.tolist() == [[1.0], [2.0]] and y.tolist() == [3.0, 4.0]
    with pytest.raises(Exception, match="pyarrow Table or a pandas DataFrame"):
        dataset.save([1, 2])


def test_stopping_a_stream_early_stops_its_threads(partitions) -> None:
    import threading

    loaders, rows = partitions
    before = threading.active_count()
    threads = torch.get_num_threads()
    source = PartitionSource(loaders, rows, batch_size=4, seed=0, shuffle_buffer=8)
    batches = iter(source)
    next(batches)
    batches.close()
    assert threading.active_count() == before
    assert torch.get_num_threads() == threads  # the streaming thread count is undone


def test_read_partitions_reuses_a_block_only_once_the_caller_has_dropped_it(tmp_path) -> None:
    from linear_nets.engine.sources import READ_AHEAD, read_partitions

    rows = _write_partitions(tmp_path / "parts", (16,) * 12)
    loaders = _load(tmp_path / "parts")
    kept = list(read_partitions(loaders, "y"))  # the caller keeps every partition
    assert len({X.data_ptr() for _name, X, _y in kept}) == 12
    start = 0
    for name, X, y in kept:  # none was overwritten by a later one
        assert torch.equal(y, torch.arange(start, start + rows[name], dtype=torch.float32))
        assert torch.equal(X[:, 0], 2 * y) and torch.equal(X[:, 1], -y)
        start += rows[name]
    del kept
    addresses = [X.data_ptr() for _name, X, _y in read_partitions(loaders, "y")]
    assert len(set(addresses)) <= READ_AHEAD + 2  # dropped blocks came back (a fresh one at most)


def test_recycled_arrays_wait_for_every_view() -> None:
    from linear_nets.engine.sources import _Recycled

    pool = _Recycled(keep=2)
    first = pool.take((3, 4))
    view = torch.from_numpy(first)[:-1].T  # what a partition hands out
    del first
    assert pool.take((3, 4)) is not pool.arrays[0]  # the view still holds it
    del view
    assert pool.take((3, 4)) is pool.arrays[0]
    assert pool.take((2, 2)).shape == (2, 2)  # another shape: a fresh array


def test_a_partition_with_other_columns_is_refused_by_name(tmp_path: Path) -> None:
    rows = _write_partitions(tmp_path / "parts", (10, 10))
    dataset = PartitionedDataset(
        path=str(tmp_path / "parts"), dataset="pandas.ParquetDataset", filename_suffix=".parquet"
    )
    dataset.save({"part-01": pd.DataFrame({"x1": [1.0] * 10, "y": [0.0] * 10})})
    source = PartitionSource(_load(tmp_path / "parts"), rows, batch_size=4, shuffle_buffer=8)
    # (the partitions come in a seeded random order: either may be the odd one out)
    with pytest.raises(ValueError, match=r"partition 'part-0[01]' has [12] feature columns wh"):
        list(source)


def test_stopping_a_read_early_stops_its_threads(partitions) -> None:
    import threading

    from linear_nets.engine.sources import read_partitions

    loaders, _rows = partitions
    before = threading.active_count()
    reads = read_partitions(loaders, "y")
    next(reads)
    reads.close()
    assert threading.active_count() == before


@pytest.mark.parametrize("cores", [1, 2])
def test_column_chunks_are_the_decoded_columns_in_order(
    partitions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cores: int
) -> None:
    """Every row once, partition by partition in the order asked, each column in its own
    dtype, decoded in a thread only when there is a core for it; closing stops that thread."""
    import threading

    import pyarrow.parquet as pq

    from linear_nets.engine.sources import column_chunks

    monkeypatch.setattr("linear_nets.engine.sources.usable_cores", lambda: cores)
    monkeypatch.setattr("linear_nets.engine.sources.ARROW_BLOCK_ROWS", 16)
    _frames, rows = partitions
    files = sorted((tmp_path / "parts").glob("*.parquet"))
    loaders = {path.stem: functools.partial(pq.ParquetFile, path) for path in files}
    order = ["part-02", "part-00", "part-04"]
    chunks = list(column_chunks(loaders, "y", order))
    names = [name for name, _, _ in chunks]
    assert names == ["part-02"] * 3 + ["part-00"] * 2 + ["part-04"] * 3  # 40, 30, 33 rows
    y = np.concatenate([target for _, _, target in chunks])
    starts = {"part-00": 0, "part-02": 55, "part-04": 100}  # y numbers the rows (SIZES)
    expected = np.concatenate([np.arange(starts[n], starts[n] + rows[n]) for n in order])
    np.testing.assert_array_equal(y, expected)
    for _, (x1, x2), target in chunks:
        np.testing.assert_array_equal(x1, 2 * target)
        np.testing.assert_array_equal(x2, -target)
        assert x1.dtype == target.dtype == np.float32 and len(x1) <= 16
    before = threading.active_count()
    started = column_chunks(loaders, "y")
    next(started)
    assert threading.active_count() == before + (cores > 1)
    started.close()
    assert threading.active_count() == before


def _reference_epoch(frames: dict, batch: int, buffer: int, seed: int, epoch: int) -> list:
    """What PartitionSource promises, written plainly: the partitions in a seeded order, their
    rows through a buffer of ``buffer`` rows shuffled by ``randperm`` each time it fills, the
    rows short of a whole batch carried into the next buffer, the rest shuffled at the end."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    names = sorted(frames)
    order = [names[i] for i in torch.randperm(len(names), generator=generator).tolist()]
    total = sum(len(frames[name]) for name in names)
    capacity = min(max(buffer, batch), total)
    rows = [torch.tensor(frames[name].to_numpy(), dtype=torch.float32) for name in order]
    waiting, out = torch.zeros(0, rows[0].shape[1]), []
    for part in rows:
        for row in part:
            waiting = torch.cat([waiting, row[None]])
            if len(waiting) == capacity:
                shuffled = waiting[torch.randperm(capacity, generator=generator)]
                full = capacity - capacity % batch
                out += list(shuffled[:full].split(batch))
                waiting = shuffled[full:]
    if len(waiting):
        out += list(waiting[torch.randperm(len(waiting), generator=generator)].split(batch))
    return out


@pytest.mark.parametrize(("batch_size", "buffer"), [(8, 20), (7, 1000), (4, 1), (10, 45)])
def test_a_stream_gives_exactly_the_documented_shuffle(tmp_path, batch_size, buffer) -> None:
    rows = _write_partitions(tmp_path / "parts")
    frames = {name: pd.read_parquet(tmp_path / "parts" / f"{name}.parquet") for name in rows}
    source = PartitionSource(
        _load(tmp_path / "parts"), rows, batch_size=batch_size, seed=5, shuffle_buffer=buffer
    )
    for epoch in (1, 2):
        expected = _reference_epoch(frames, batch_size, buffer, seed=5, epoch=epoch)
        batches = list(source)
        assert len(batches) == len(expected)
        for (X, y), reference in zip(batches, expected, strict=True):
            assert torch.equal(torch.cat([X, y[:, None]], dim=1), reference)


def test_a_partition_that_fails_to_load_stops_the_read_with_its_error(tmp_path: Path) -> None:
    import threading

    from linear_nets.engine.sources import read_partitions

    rows = _write_partitions(tmp_path / "parts", (8,) * 6)
    loaders = dict(_load(tmp_path / "parts"))

    def broken():
        raise OSError("part-03.parquet: disk gone")

    loaders["part-03"] = broken
    before = threading.active_count()
    seen = []
    with pytest.raises(OSError, match="part-03.parquet: disk gone"):
        for name, _X, _y in read_partitions(loaders, "y"):
            seen.append(name)
    assert seen == ["part-00", "part-01", "part-02"]  # in order, up to the broken one
    source = PartitionSource(loaders, rows, batch_size=4, seed=0, shuffle_buffer=8)
    with pytest.raises(OSError, match="disk gone"):
        list(source)
    assert threading.active_count() == before
