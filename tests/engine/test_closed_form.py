"""The exact least-squares solution by QR, in memory and streamed, against certified answers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from linear_nets.engine import (
    NonFiniteValueError,
    RankDeficientError,
    StreamedQR,
    factor_partitions,
    least_squares,
    streamed_least_squares,
)
from linear_nets.engine.inference import ols_inference
from tests.engine.certified import (
    LONGLEY_CERTIFIED,
    LONGLEY_FEATURES,
    LONGLEY_R2,
    LONGLEY_RSD,
    LONGLEY_TARGET,
    exact_polynomial_problem,
    longley,
    significant_digits,
)


def test_noiseless_data_gives_back_the_exact_parameters() -> None:
    X = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    w_true = torch.tensor([1.5, -2.0, 0.25])
    w, b = least_squares(X, X @ w_true - 0.7)
    assert w.dtype == b.dtype == torch.float64
    torch.testing.assert_close(w, w_true.double(), rtol=0, atol=1e-5)
    assert abs(float(b) + 0.7) < 1e-5


def test_solution_has_zero_mean_residual_orthogonal_to_the_features() -> None:
    generator = torch.Generator().manual_seed(1)
    X = torch.randn(40, 2, generator=generator)
    y = torch.randn(40, generator=generator)
    w, b = least_squares(X, y)
    residual = y.double() - (X.double() @ w + b)
    assert abs(float(residual.mean())) < 1e-10
    torch.testing.assert_close(X.double().T @ residual, torch.zeros(2, dtype=torch.float64))


def _noisy(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=generator) * torch.linspace(0.5, 3, d)
    y = X @ torch.randn(d, generator=generator) + 1.5 + 0.3 * torch.randn(n, generator=generator)
    return X, y


def test_streamed_qr_matches_lstsq_on_the_same_rows() -> None:
    X, y = _noisy(1000, 5, seed=2)
    chunks = [(X[i : i + 97], y[i : i + 97]) for i in range(0, len(y), 97)]  # uneven chunks
    qr = streamed_least_squares(chunks)
    w, b = qr.solve()
    design = torch.cat([X.double(), torch.ones(len(X), 1, dtype=torch.float64)], dim=1)
    expected = torch.linalg.lstsq(design, y.double().unsqueeze(1)).solution.squeeze(1)
    torch.testing.assert_close(w, expected[:-1], rtol=1e-12, atol=1e-12)
    assert float(b) == pytest.approx(float(expected[-1]), rel=1e-12)
    assert qr.rows == 1000 and qr.R.shape == (7, 7)  # memory: (d+2)², whatever the rows


def test_chunks_smaller_than_the_columns_still_stack() -> None:
    X, y = _noisy(60, 4, seed=6)
    qr = streamed_least_squares([(X[i : i + 2], y[i : i + 2]) for i in range(0, 60, 2)])
    torch.testing.assert_close(qr.solve()[0], least_squares(X, y)[0], rtol=1e-12, atol=1e-12)


def test_mse_rss_and_tss_come_from_r_alone() -> None:
    X, y = _noisy(500, 3, seed=3)
    qr = streamed_least_squares([(X, y)])
    w_opt, b_opt = qr.solve()
    for w, b in [(w_opt, b_opt), (torch.tensor([0.5, -1.0, 2.0]), 0.25)]:
        residual = X.double() @ w.double() + float(b) - y.double()
        assert qr.mse(w, b) == pytest.approx(float((residual**2).mean()), rel=1e-9)
    assert qr.rss == pytest.approx(qr.mse(w_opt, b_opt) * 500, rel=1e-12)
    assert qr.tss == pytest.approx(float(((y.double() - y.double().mean()) ** 2).sum()), rel=1e-12)


def test_the_factor_survives_a_json_round_trip() -> None:
    X, y = _noisy(300, 4, seed=4)
    qr = streamed_least_squares([(X[:100], y[:100]), (X[100:], y[100:])])
    again = StreamedQR.from_dict(json.loads(json.dumps(qr.to_dict())))
    torch.testing.assert_close(again.solve()[0], qr.solve()[0], rtol=0, atol=0)
    assert again.rows == 300 and again.rss == qr.rss


def test_columns_give_the_factor_that_rows_give() -> None:
    X, y = _noisy(1000, 3, seed=8)
    rows, columns = StreamedQR(3), StreamedQR(3)
    rows.add(X, y)
    columns.add_columns([X[:, i].numpy() for i in range(3)], y.numpy())
    assert torch.equal(columns.R, rows.R) and columns.rows == 1000


def test_float64_columns_keep_every_digit_and_integers_are_numbers() -> None:
    X, y = _noisy(500, 2, seed=9)
    X64 = X.double() + 1e-9 * torch.arange(500, dtype=torch.float64).unsqueeze(1)  # not float32
    exact, from_columns, rounded = StreamedQR(2), StreamedQR(2), StreamedQR(2)
    exact.add(X64, y.double())
    from_columns.add_columns([X64[:, 0].numpy(), X64[:, 1].numpy()], y.double().numpy())
    rounded.add(X64.float(), y)
    assert torch.equal(from_columns.R, exact.R)
    assert not torch.equal(rounded.R, exact.R)
    counts = np.arange(40, dtype=np.int64)
    integers, floats = StreamedQR(1), StreamedQR(1)
    integers.add_columns([counts], counts * 3 + 1)
    floats.add_columns([counts.astype(np.float64)], counts * 3.0 + 1)
    assert torch.equal(integers.R, floats.R)


def test_misshapen_columns_are_refused() -> None:
    qr = StreamedQR(2)
    with pytest.raises(ValueError, match="expected 2 feature columns, got 1"):
        qr.add_columns([np.ones(3)], np.ones(3))
    with pytest.raises(ValueError, match=r"feature columns of \[2, 3\] rows beside a target of 3"):
        qr.add_columns([np.ones(3), np.ones(2)], np.ones(3))
    assert qr.rows == 0


def _parquet_partitions(folder, sizes, d: int = 2, seed: int = 0) -> tuple[dict, torch.Tensor]:
    """Parquet partitions of ``sizes`` rows (x1 … x_d, y) and all their rows as one tensor."""
    import pandas as pd
    from kedro_datasets.partitions import PartitionedDataset

    generator = torch.Generator().manual_seed(seed)
    frames, tables = {}, []
    for i, size in enumerate(sizes):
        table = torch.randn(size, d + 1, generator=generator)
        frames[f"part-{i:02d}"] = pd.DataFrame(
            table.numpy(), columns=[*(f"x{j}" for j in range(1, d + 1)), "y"]
        )
        tables.append(table)
    dataset = PartitionedDataset(
        path=str(folder), dataset="pandas.ParquetDataset", filename_suffix=".parquet"
    )
    dataset.save(frames)
    return dataset.load(), torch.cat(tables)


def test_factoring_partitions_is_factoring_their_rows(tmp_path) -> None:
    partitions, table = _parquet_partitions(tmp_path, (300, 0, 125, 77))
    qr, rows = factor_partitions(partitions, "y")
    assert rows == {"part-00": 300, "part-01": 0, "part-02": 125, "part-03": 77}
    w, b = least_squares(table[:, :-1], table[:, -1])
    torch.testing.assert_close(qr.solve()[0], w, rtol=1e-12, atol=1e-12)
    assert float(qr.solve()[1]) == pytest.approx(float(b), rel=1e-12, abs=1e-12)
    some, counted = factor_partitions(partitions, "y", ["part-03", "part-00"])
    assert counted == {"part-03": 77, "part-00": 300} and some.rows == 377


def test_a_partition_with_other_columns_is_named_and_no_thread_is_left(tmp_path) -> None:
    import threading

    two, _ = _parquet_partitions(tmp_path / "two", (50,) * 12)  # more than are decoded ahead
    three, _ = _parquet_partitions(tmp_path / "three", (40,), d=3)
    mixed = {**two, "part-00a": three["part-00"]}  # the second one read
    before, threads = threading.active_count(), torch.get_num_threads()
    odd = r"'part-00a' has 3 feature columns where the first partition by id has 2: new \['x3'\]"
    with pytest.raises(ValueError, match=odd):
        factor_partitions(mixed, "y")
    with pytest.raises(ValueError, match="'part-00' has 2 feature columns where the model takes 3"):
        factor_partitions(two, "y", n_features=3)
    assert threading.active_count() == before and torch.get_num_threads() == threads
    with pytest.raises(ValueError, match="no rows"):
        factor_partitions({}, "y")


def test_a_value_that_is_not_finite_is_named_by_row_and_column(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.setattr("linear_nets.engine.closed_form._CHUNK_ROWS", 64)
    X, y = _noisy(300, 3, seed=1)
    X[200, 1], X[230, 0] = float("nan"), float("inf")
    qr = StreamedQR(3)
    with pytest.raises(NonFiniteValueError, match=r"^row 200, column feature 1: nan is not"):
        qr.add(X, y)
    assert qr.rows == 192 and torch.isfinite(qr.R).all()  # the chunks before it, unharmed
    X[200, 1] = 0.0
    with pytest.raises(NonFiniteValueError, match=r"^row 230, column feature 0: inf"):
        StreamedQR(3).add_columns([X[:, j].numpy() for j in range(3)], y.numpy())
    X[230, 0], y[7] = 0.0, float("-inf")
    with pytest.raises(NonFiniteValueError, match=r"^row 7, column the target: -inf"):
        StreamedQR(3).add(X, y)

    partitions, _table = _parquet_partitions(tmp_path, (100, 150))
    missing = pa.table(
        {"x1": pa.array([1.0] * 129 + [None] + [2.0] * 20), "x2": [0.5] * 150, "y": [3.0] * 150}
    )
    pq.write_table(missing, tmp_path / "part-01.parquet")  # a null in row 129, chunk 3
    with pytest.raises(
        NonFiniteValueError,
        match=r"^partition 'part-01', row 129, column 'x1': nan is not finite \(a missing value",
    ):
        factor_partitions(partitions, "y")


def test_merging_two_shares_is_factoring_all_rows() -> None:
    X, y = _noisy(400, 3, seed=7)
    first, second = streamed_least_squares([(X[:150], y[:150])]), StreamedQR(3)
    second.add(X[150:], y[150:])
    first.merge(second)
    torch.testing.assert_close(first.solve()[0], least_squares(X, y)[0], rtol=1e-12, atol=1e-12)
    assert first.rows == 400


def test_a_collinear_table_is_named_column_by_column() -> None:
    X, y = _noisy(200, 3, seed=5)
    X = X.double()
    X = torch.cat([X, (2 * X[:, :1] - X[:, 1:2] + 1)], dim=1)  # x4 = 2 x1 - x2 + 1
    qr = streamed_least_squares([(X, y)])
    conditioning = qr.conditioning()
    assert conditioning.rank == 4 and conditioning.columns == 5 and not conditioning.full_rank
    with pytest.raises(RankDeficientError) as caught:
        qr.check_full_rank(["rooms", "area", "age", "score"])
    message = str(caught.value)
    assert "span only 4 of 5 dimensions" in message
    assert "intercept, rooms, area, score are collinear" in message
    assert "age" not in message.split("collinear", maxsplit=1)[0]
    w, b = qr.solve()  # the minimum-norm solution fits as well as the three features
    qr_without = streamed_least_squares([(X[:, :3], y)])
    assert qr.mse(w, b) == pytest.approx(qr_without.rss / 200, rel=1e-9)
    assert qr.rss == pytest.approx(qr_without.rss, rel=1e-9)


def test_no_rows_is_refused() -> None:
    with pytest.raises(ValueError, match="no rows"):
        streamed_least_squares([])


@pytest.mark.parametrize(("n", "degree"), [(30, 3), (30, 4), (40, 5)])
def test_polynomial_designs_match_exact_arithmetic_to_7_digits(n: int, degree: int) -> None:
    """Condition numbers 5e4, 2e6 and 3e8 before standardization."""
    X, y, coef, se, rss = exact_polynomial_problem(n, degree)
    design = np.column_stack([np.ones(n), X])
    assert np.linalg.cond(design) > {3: 4e4, 4: 1e6, 5: 1e8}[degree]
    qr = streamed_least_squares([(torch.from_numpy(X), torch.from_numpy(y))])
    assert significant_digits(qr.theta().numpy(), coef) >= 7
    assert qr.rss == pytest.approx(rss, rel=1e-7)
    names = [f"x^{k}" for k in range(1, degree + 1)]
    table = ols_inference(X, y, names).table
    assert significant_digits(table["ols"].to_numpy(), [*coef[1:], coef[0]]) >= 7
    assert significant_digits(table["std_error"].to_numpy(), [*se[1:], se[0]]) >= 7


def test_longley_matches_nist_certified_values_to_7_digits() -> None:
    table = longley()
    inference = ols_inference(
        table[LONGLEY_FEATURES].to_numpy(), table[LONGLEY_TARGET].to_numpy(), LONGLEY_FEATURES
    )
    names = [*LONGLEY_FEATURES, "intercept"]
    estimates = [LONGLEY_CERTIFIED[name][0] for name in names]
    errors = [LONGLEY_CERTIFIED[name][1] for name in names]
    assert significant_digits(inference.table.loc[names, "ols"], estimates) >= 7
    assert significant_digits(inference.table.loc[names, "std_error"], errors) >= 7
    assert significant_digits(inference.residual_std_error, LONGLEY_RSD) >= 7
    assert significant_digits(inference.r2, LONGLEY_R2) >= 7


def test_inference_agrees_with_statsmodels() -> None:
    import statsmodels.api as sm

    X, y = _noisy(80, 4, seed=8)
    X64, y64 = X.double().numpy(), y.double().numpy()
    X64[:, 3] = X64[:, 0] * 3 + 1e-4 * X64[:, 3]  # nearly collinear, still full rank
    ours = ols_inference(X64, y64, ["a", "b", "c", "d"])
    theirs = sm.OLS(y64, sm.add_constant(X64)).fit()
    order = [1, 2, 3, 4, 0]
    for column, reference in [
        ("ols", theirs.params),
        ("std_error", theirs.bse),
        ("t_value", theirs.tvalues),
        ("p_value", theirs.pvalues),
    ]:
        np.testing.assert_allclose(ours.table[column], reference[order], rtol=1e-7)
    assert ours.r2 == pytest.approx(theirs.rsquared, rel=1e-10)


def test_standard_errors_from_a_streamed_factor_equal_the_in_memory_ones() -> None:
    from linear_nets.engine.inference import inference_from_qr

    X, y = _noisy(600, 3, seed=9)
    X64, y64 = X.double(), y.double()
    chunks = [(X64[i : i + 128], y64[i : i + 128]) for i in range(0, 600, 128)]
    streamed = streamed_least_squares(chunks)
    names = ["a", "b", "c"]
    ours = inference_from_qr(streamed, names).table
    whole = ols_inference(X64.numpy(), y64.numpy(), names).table
    np.testing.assert_allclose(ours.to_numpy(), whole.to_numpy(), rtol=1e-11)


# --- CholeskyQR2 on well-conditioned blocks, Householder on the rest ---


def _sign_fixed(R: torch.Tensor) -> torch.Tensor:
    return R * torch.sign(R.diagonal()).unsqueeze(1)


def test_cholesky_qr2_gives_householders_r_on_a_well_conditioned_block() -> None:
    from linear_nets.engine.closed_form import cholesky_qr2

    generator = torch.Generator().manual_seed(10)
    A = torch.randn(5000, 6, generator=generator, dtype=torch.float64) * torch.tensor(
        [1.0, 1e3, 1e-3, 5.0, 1e6, 2.0], dtype=torch.float64
    )  # scales far apart: the check is on the scaled columns
    A[:, 0] = 1.0
    R = cholesky_qr2(A.T.contiguous())
    expected = torch.linalg.qr(A, mode="r").R
    assert R is not None
    torch.testing.assert_close(_sign_fixed(R), _sign_fixed(expected), rtol=1e-13, atol=0)
    # the running R of earlier rows as the first factor gives the same R
    again = cholesky_qr2(A[2500:].T.contiguous(), preconditioner=R)
    stacked = torch.linalg.qr(torch.cat([torch.linalg.qr(A[:2500], mode="r").R, again])).R
    torch.testing.assert_close(_sign_fixed(stacked), _sign_fixed(expected), rtol=1e-12, atol=0)


def test_cholesky_qr2_declines_what_it_cannot_factor_exactly() -> None:
    from linear_nets.engine.closed_form import cholesky_qr2

    # [1 X y] of a polynomial fit: y nearly in the span of 1, x … x⁵ (scaled condition 2.9e8)
    X, y, _coef, _se, _rss = exact_polynomial_problem(40, 5)
    polynomial = torch.from_numpy(np.column_stack([np.ones(40), X, y]))
    collinear = torch.randn(100, 3, dtype=torch.float64)
    collinear[:, 2] = collinear[:, 0] - 2 * collinear[:, 1]
    with_nan = torch.randn(100, 3, dtype=torch.float64)
    with_nan[7, 1] = float("nan")
    short = torch.randn(2, 3, dtype=torch.float64)
    for A in (polynomial, collinear, with_nan, short):
        assert cholesky_qr2(A.T.contiguous()) is None
    # a first factor from other rows that leaves these ill-conditioned is declined too
    earlier = torch.randn(200, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    later = earlier.clone()
    later[:, 2] = earlier[:, 0] + 1e-4 * earlier[:, 2]  # x3 follows x1 from here on
    first_factor = torch.linalg.qr(earlier).R
    assert cholesky_qr2(later.T.contiguous(), preconditioner=first_factor) is None
    assert cholesky_qr2(earlier.T.contiguous(), preconditioner=first_factor) is not None


def test_a_stream_of_many_chunks_is_exact_on_both_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    from linear_nets.engine import closed_form

    monkeypatch.setattr(closed_form, "_CHUNK_ROWS", 64)
    routes = {"cholesky": 0, "householder": 0}
    cholesky, householder = closed_form.cholesky_qr2, closed_form.r_factor

    def counted_cholesky(At, preconditioner=None, **options):
        R = cholesky(At, preconditioner, **options)
        routes["cholesky"] += R is not None
        return R

    def counted_householder(A):
        routes["householder"] += 1
        return householder(A)

    monkeypatch.setattr(closed_form, "cholesky_qr2", counted_cholesky)
    monkeypatch.setattr(closed_form, "r_factor", counted_householder)
    X, y = _noisy(3000, 5, seed=11)
    X = X.double()
    X[1024:1088, 2] = 7.0 + 1e-9 * X[1024:1088, 2]  # one chunk where x3 is constant
    qr = streamed_least_squares([(X[:1500], y[:1500]), (X[1500:], y[1500:])])
    design = torch.cat([torch.ones(len(X), 1, dtype=torch.float64), X], dim=1)
    expected = torch.linalg.lstsq(design, y.double().unsqueeze(1)).solution.squeeze(1)
    torch.testing.assert_close(qr.theta(), expected, rtol=1e-12, atol=1e-12)
    assert routes == {"householder": 1, "cholesky": 2 * -(-1500 // 64) - 1}


def test_an_ill_conditioned_stream_keeps_seven_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    from linear_nets.engine import closed_form

    monkeypatch.setattr(closed_form, "_CHUNK_ROWS", 8)
    X, y, coef, _se, rss = exact_polynomial_problem(40, 5)
    chunks = [(torch.from_numpy(X[i : i + 8]), torch.from_numpy(y[i : i + 8])) for i in (0, 8)]
    chunks.append((torch.from_numpy(X[16:]), torch.from_numpy(y[16:])))
    qr = streamed_least_squares(chunks)
    assert significant_digits(qr.theta().numpy(), coef) >= 7
    assert qr.rss == pytest.approx(rss, rel=1e-7)
