"""The exact least-squares solution, by QR: in memory and streamed, without ever forming XᵀX.

:class:`StreamedQR` holds the triangular factor R of the QR factorisation of the augmented
design A = [1 X y] (intercept first, target last), in float64 on the device it was made on.
Each chunk of rows is factored, its R stacked under the running R and re-factored (a tall-skinny
QR, TSQR), so one pass over data of any size keeps only a (d+2)×(d+2) matrix, and R is all that
least squares needs. A chunk is factored by CholeskyQR2 (:func:`cholesky_qr2`: matrix products,
as accurate as Householder on a well-conditioned chunk, which it checks) and otherwise by
Householder reflections (:func:`r_factor`): an ill-conditioned or collinear table gets the
Householder QR it always got.

- R = [[R₁₁, z], [0, ρ]]: the coefficients solve R₁₁ θ = z, the residual sum of squares is ρ²;
- the singular values of R₁₁ are those of [1 X]: condition number, rank, and, when the rank
  falls short, the null space that says which columns are collinear;
- ‖A v‖ = ‖R v‖ for any v, so the MSE of any (w, b) comes from R alone;
- the total sum of squares about the mean is ‖R[1:, -1]‖² (the first column is the intercept).

Solving the normal equations XᵀX θ = Xᵀy instead squares the condition number (1e8 becomes
1e16, float64's end); QR keeps it, which is what certified accuracy on collinear tables needs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from linear_nets.engine.sources import (
    PartitionLoader,
    column_chunks,
    feature_names,
    first_non_finite,
    streaming_threads,
)

_CHUNK_ROWS = 1 << 16
"""Rows converted to float64 and factored at a time (9 MB at d = 16): few enough calls that their
overhead is small, small enough that the block stays in the CPU's cache between the passes."""
_BLOCK_ROWS = 512
"""Rows of each small QR in the tree of :func:`r_factor`: a block stays in the CPU's cache."""
INTERCEPT_NAME = "intercept"
CHOLESKY_QR_CONDITION_LIMIT = 1e4
"""The largest condition number (of the block with its columns scaled to unit norm) that
:func:`cholesky_qr2` accepts; beyond it the Householder QR of :func:`r_factor` takes over."""
PRECONDITIONED_LIMIT = 1e2
"""The largest condition number of A R₁⁻¹ accepted when R₁ is the running factor."""


@contextlib.contextmanager
def _one_intra_op_thread(device: torch.device) -> Iterator[None]:
    """One torch thread while the QR runs on the CPU, restored after.

    A batched QR factors its small blocks one after the other, so more intra-op threads only
    add overhead, and the next rows are decoded ahead in a thread of their own: with one torch
    thread the reading (:func:`factor_partitions`) keeps the other core. The streamed solve
    of 1e6 rows took 0.39 s instead of 0.65 s on 2 cores (benchmarks/README.md).
    """
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def r_factor(A: torch.Tensor) -> torch.Tensor:
    """R of the QR factorisation of a tall matrix ``A`` (m, k), by a tree of small QRs (TSQR).

    The rows are cut into blocks of :data:`_BLOCK_ROWS`, all blocks are factored at once (one
    batched ``torch.linalg.qr``), their R factors stacked and factored again, until few rows are
    left: the same R (up to the signs of its rows) as one Householder QR of ``A``, and as
    backward stable, but about four times faster on a tall-skinny matrix, whose one big QR is
    bound by memory traffic.
    """
    k = A.shape[1]
    block = max(_BLOCK_ROWS, 2 * k)
    while len(A) > 4 * block:
        whole = len(A) - len(A) % block
        R = torch.linalg.qr(A[:whole].reshape(-1, block, k), mode="r").R
        A = torch.cat([R.reshape(-1, k), A[whole:]])
    return torch.linalg.qr(A, mode="r").R


def _scaled_condition_ok(R: torch.Tensor, limit: float) -> bool:
    """Whether the triangular ``R`` with its columns scaled to about unit norm by powers of two
    (exactly) has a condition number of at most ``limit`` (from its singular values)."""
    norms = torch.linalg.vector_norm(R, dim=0)
    if not bool((norms > 0).all() & torch.isfinite(norms).all()):
        return False
    singular = torch.linalg.svdvals(R * torch.exp2(-torch.round(torch.log2(norms))))
    return bool(singular[-1] * limit >= singular[0])


def cholesky_qr2(
    At: torch.Tensor,
    preconditioner: torch.Tensor | None = None,
    *,
    workspace: torch.Tensor | None = None,
) -> torch.Tensor | None:
    """R of the tall matrix A = ``At``ᵀ (``At`` is (k, m): A's columns, each contiguous) by
    CholeskyQR2, or None when A is not well conditioned enough for it.

    R₁ = chol(AᵀA), Q₁ = A R₁⁻¹, R₂ = chol(Q₁ᵀQ₁), R = R₂ R₁ (Fukaya, Nakatsukasa, Yanagisawa,
    Yamamoto, 2014): matrix products over the block (BLAS 3, in cache) instead of the
    Householder reflections' vector operations. Its backward error and the orthogonality of
    its Q are those of a Householder QR when κ(A) ≲ u^(-1/2) ≈ 1e8; this takes it only where
    the condition number of A with its columns scaled by powers of two (exact; what Cholesky's
    and the products' rounding depends on) is at most :data:`CHOLESKY_QR_CONDITION_LIMIT`, far
    inside that, and checks it on R₁ (an accurate estimate there: the Gram's rounding moves its
    smallest eigenvalue by κ² u ≤ 1e-8 of itself; a worse conditioned A shows a κ(R₁) near
    u^(-1/2) or a failed Cholesky).

    ``preconditioner``: an upper-triangular R₁ to use instead of chol(AᵀA) (the R of the rows
    factored so far, when it passed the same check): one product fewer. It is accepted when
    Q₁ = A R₁⁻¹ is well conditioned (κ(R₂) ≤ :data:`PRECONDITIONED_LIMIT`), which rows drawn
    like the earlier ones give; otherwise None.

    A rank-deficient, non-finite or badly conditioned block gives None: the caller factors it
    by Householder. ``workspace``: at least ``At.numel()`` float64 elements to hold Q₁ (a fresh
    block per call costs page faults).
    """
    k = At.shape[0]
    if At.shape[1] < k:
        return None
    if preconditioner is None:
        G = At @ At.T
        if not bool(torch.isfinite(G).all()):
            return None
        R1, info = torch.linalg.cholesky_ex(G, upper=True)
        if int(info) != 0 or not _scaled_condition_ok(R1, CHOLESKY_QR_CONDITION_LIMIT):
            return None
    else:
        R1 = preconditioner
    eye = torch.eye(k, dtype=At.dtype, device=At.device)
    inverse_t = torch.linalg.solve_triangular(R1, eye, upper=True).T
    if workspace is None:
        Qt = inverse_t @ At  # (A R₁⁻¹)ᵀ
    else:
        Qt = torch.mm(inverse_t, At, out=workspace[: At.numel()].view(At.shape))
    R2, info = torch.linalg.cholesky_ex(Qt @ Qt.T, upper=True)
    if int(info) != 0:
        return None
    if preconditioner is not None and not _scaled_condition_ok(R2, PRECONDITIONED_LIMIT):
        return None
    return R2 @ R1


class RankDeficientError(ValueError):
    """The columns of the design are linearly dependent: the coefficients are not unique.

    ``conditioning`` tells which; :meth:`named` words it with the feature names.
    """

    def __init__(self, conditioning: Conditioning, names: Sequence[str] | None = None) -> None:
        super().__init__(conditioning.describe(names))
        self.conditioning = conditioning

    def named(self, names: Sequence[str], prefix: str = "") -> RankDeficientError:
        """The same error, naming the columns ``names`` (and starting with ``prefix``)."""
        error = RankDeficientError(self.conditioning, names)
        error.args = (prefix + str(error),)
        return error


class NonFiniteValueError(ValueError):
    """The rows being factored hold a NaN or an infinite value (a missing value reads as NaN),
    where no least-squares fit is defined.

    ``row`` counts from the first row given; ``index`` is the column's (a feature's, or
    ``n_features`` for the target); ``column`` words it, and ``partition`` names the partition
    when the rows came from one.
    """

    def __init__(
        self, row: int, index: int, value: float, column: str, partition: str | None = None
    ) -> None:
        place = "" if partition is None else f"partition {partition!r}, "
        super().__init__(
            f"{place}row {row}, column {column}: {value} is not finite (a missing value reads "
            "as nan); a least-squares fit needs every value finite"
        )
        self.row, self.index, self.value, self.partition = row, index, value, partition


def _non_finite(block: torch.Tensor, first_row: int) -> ValueError:
    """The error for a chunk's block ``[1 X y]ᵀ`` whose R is not finite: the first row that holds
    a value that is not finite and its leftmost such column, or, when every value is finite,
    values so large that the factorisation overflows float64."""
    columns = list(block[1:].cpu().numpy())  # its first row is the intercept's ones
    where = first_non_finite(columns)
    if where is None:
        last = first_row + block.shape[1] - 1
        return ValueError(f"rows {first_row}-{last}: values so large that float64 overflows")
    row, index = where
    column = "the target" if index == len(columns) - 1 else f"feature {index}"
    return NonFiniteValueError(first_row + row, index, float(columns[index][row]), column)


@dataclass(frozen=True)
class Conditioning:
    """How well determined the least-squares coefficients are, from the singular values of
    the design [1 X]: the 2-norm condition number, the numerical rank, and one right singular
    vector per missing dimension (columns in the order intercept, x₁ … x_d)."""

    condition_number: float
    rank: int
    columns: int
    null_space: torch.Tensor

    @property
    def full_rank(self) -> bool:
        return self.rank == self.columns

    def relations(self, names: Sequence[str] | None = None) -> list[str]:
        """One line per missing dimension: which columns are collinear, and how.

        ``names`` are the d feature names (the intercept is named ``intercept``).
        """
        labels = [INTERCEPT_NAME, *(names or [f"x{i}" for i in range(1, self.columns)])]
        lines = []
        for vector in self.null_space.T:
            unit = (vector / vector.abs().max()).tolist()
            involved = [i for i, value in enumerate(unit) if abs(value) > 1e-6]
            if unit[involved[0]] < 0:  # read from a positive first term
                unit = [-value for value in unit]
            terms = " ".join(
                f"{'-' if unit[i] < 0 else '+'} {abs(unit[i]):.4g}·{labels[i]}" for i in involved
            )
            lines.append(
                f"{', '.join(labels[i] for i in involved)} are collinear: {terms[2:]} ≈ 0"
            )
        return lines

    def describe(self, names: Sequence[str] | None = None) -> str:
        """A plain sentence for an error message or a log."""
        return (
            f"the {self.columns - 1} features and the intercept span only {self.rank} of "
            f"{self.columns} dimensions (condition number {self.condition_number:.3g}): "
            + "; ".join(self.relations(names))
            + ". Their coefficients are not unique: drop one column of each relation"
        )


class StreamedQR:
    """R of [1 X y] (float64), updated chunk by chunk; see the module's docstring.

    Args:
        n_features: d, the feature columns of every chunk.
        device: where the factorisations run (MPS has no float64: the CPU stands in).
    """

    def __init__(self, n_features: int, device: torch.device | str = "cpu") -> None:
        device = torch.device(device)
        self.n_features = n_features
        self.device = torch.device("cpu") if device.type == "mps" else device
        self.R = torch.zeros(0, n_features + 2, dtype=torch.float64, device=self.device)
        self.rows = 0
        # Not part of the factorisation: the R that chunks are preconditioned by while it keeps
        # working (see _factor), and the buffers a chunk is factored in (_chunk_buffers).
        self._preconditioner: torch.Tensor | None = None
        self._buffers: tuple[np.ndarray, torch.Tensor] | None = None

    def add(self, X: torch.Tensor, y: torch.Tensor) -> None:
        """Add the rows ``(X, y)``; ``X`` is (n, d), ``y`` is (n,)."""
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(
                f"expected {self.n_features} feature columns, got shape {tuple(X.shape)}"
            )
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
        with _one_intra_op_thread(self.device):
            for start in range(0, len(y), _CHUNK_ROWS):
                X_chunk = X[start : start + _CHUNK_ROWS].detach()
                _, block, workspace = self._chunk_buffers(len(X_chunk))
                block[0] = 1.0
                block[1:-1].copy_(X_chunk.T)  # to float64 and the device in the same copy
                block[-1].copy_(y[start : start + len(X_chunk)].detach().reshape(-1))
                self._factor(block, workspace, first_row=start)

    def add_columns(self, columns: Sequence[np.ndarray], y: np.ndarray) -> None:
        """Add rows given as columns: ``columns`` the d feature columns and ``y`` the target,
        numpy arrays of one length and of any numeric dtype (the decoded Arrow columns that
        :func:`~linear_nets.engine.sources.column_chunks` yields). Each is converted to float64
        once, straight into the block that is factored (no float32 copy in between, and a
        float64 column keeps every digit)."""
        if len(columns) != self.n_features:
            raise ValueError(f"expected {self.n_features} feature columns, got {len(columns)}")
        rows = len(y)
        if any(len(column) != rows for column in columns):
            lengths = sorted({len(column) for column in columns})
            raise ValueError(f"feature columns of {lengths} rows beside a target of {rows}")
        with _one_intra_op_thread(self.device):
            for start in range(0, rows, _CHUNK_ROWS):
                stop = min(start + _CHUNK_ROWS, rows)
                host, block, workspace = self._chunk_buffers(stop - start)
                host[0] = 1.0
                for index, column in enumerate([*columns, y], start=1):
                    host[index] = column[start:stop]  # numpy converts any numeric dtype
                if block.device.type != "cpu":
                    block.copy_(torch.from_numpy(host))
                self._factor(block, workspace, first_row=start)

    def _chunk_buffers(self, rows: int) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
        """A chunk's (d+2, ``rows``) float64 block on the device, a host array to fill it from
        (on the CPU, the block's own memory) and CholeskyQR2's workspace, kept for the next
        chunks and grown to the largest one asked for; a fresh block per chunk costs page
        faults."""
        size = self.n_features + 2
        if self._buffers is None or self._buffers[1].shape[1] < size * rows:
            capacity = size * min(max(rows, 1), _CHUNK_ROWS)
            on_device = torch.empty(2, capacity, dtype=torch.float64, device=self.device)
            cpu = self.device.type == "cpu"
            host = on_device[0].numpy() if cpu else np.empty(capacity, dtype=np.float64)
            self._buffers = (host, on_device)
        host, on_device = self._buffers
        block = on_device[0, : size * rows].view(size, rows)
        return host[: size * rows].reshape(size, rows), block, on_device[1]

    def _factor(self, block: torch.Tensor, workspace: torch.Tensor, *, first_row: int) -> None:
        """Stack the R of one chunk's float64 block ``[1 X y]ᵀ`` under the running R.

        The chunk is factored by CholeskyQR2 where it is well conditioned, preconditioned by
        the R of the earlier rows while that keeps working, else by Householder; its R is
        stacked under the running R and re-factored. A NaN or an infinity in the chunk fails
        CholeskyQR2's checks and leaves Householder's R not finite: that is looked for there
        only, so a finite chunk pays nothing for it.

        Raises:
            NonFiniteValueError: naming the row (``first_row`` is the chunk's first) and the
                column, with the running R left as it was.
        """
        size, rows = block.shape
        if (
            self._preconditioner is None
            and len(self.R) == size
            and _scaled_condition_ok(self.R, CHOLESKY_QR_CONDITION_LIMIT)
        ):
            self._preconditioner = self.R
        R = None
        if self._preconditioner is not None:
            R = cholesky_qr2(block, self._preconditioner, workspace=workspace)
        if R is None:
            self._preconditioner = None  # these rows differ: a later chunk takes a newer R
            R = cholesky_qr2(block, workspace=workspace)
        if R is None:
            R = r_factor(block.T)
            if not bool(torch.isfinite(R).all()):
                raise _non_finite(block, first_row)
        self.R = torch.linalg.qr(torch.cat([self.R, R]), mode="r").R
        self.rows += rows

    def merge(self, other: StreamedQR) -> None:
        """Add the rows another factorisation holds (e.g. another process's share)."""
        self.R = torch.linalg.qr(torch.cat([self.R, other.R.to(self.device)]), mode="r").R
        self.rows += other.rows

    def _square(self) -> torch.Tensor:
        """R as a (d+2, d+2) matrix (fewer rows than columns leave zero rows)."""
        size = self.n_features + 2
        if len(self.R) >= size:
            return self.R[:size]
        padding = torch.zeros(size - len(self.R), size, dtype=torch.float64, device=self.device)
        return torch.cat([self.R, padding])

    def _check_rows(self) -> None:
        if self.rows == 0:
            raise ValueError("no rows: the least-squares problem is empty")

    def _relative_tolerance(self) -> float:
        """Singular values below this share of the largest count as zero: float64's rounding
        times max(p, √n), the growth of a Householder QR's error with the columns and rows
        (numpy's max(n, p) would call a well-posed 1e8-row problem with condition number 1e8
        rank-deficient)."""
        p = self.n_features + 1
        return max(p, self.rows**0.5) * torch.finfo(torch.float64).eps

    def conditioning(self) -> Conditioning:
        """Condition number, rank and null space of the design [1 X] (from R₁₁'s SVD)."""
        self._check_rows()
        p = self.n_features + 1
        _, s, vh = torch.linalg.svd(self._square()[:p, :p].cpu())
        tolerance = float(s[0]) * self._relative_tolerance()
        rank = int((s > tolerance).sum())
        condition = float(s[0] / s[-1]) if float(s[-1]) > 0 else float("inf")
        return Conditioning(condition, rank, p, vh[rank:].T.contiguous())

    def solve(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The least-squares weights ((d,) float64) and intercept (a float64 scalar tensor),
        on the CPU; the minimum-norm solution when the design is rank-deficient.

        Raises:
            ValueError: if no rows were added.
        """
        theta = self.theta()
        return theta[1:], theta[0]

    def theta(self) -> torch.Tensor:
        """[b, w₁ … w_d] in float64 on the CPU (see :meth:`solve`)."""
        self._check_rows()
        p = self.n_features + 1
        R = self._square().cpu()
        R11, z = R[:p, :p], R[:p, p : p + 1]
        if self.conditioning().full_rank:
            return torch.linalg.solve_triangular(R11, z, upper=True).squeeze(1)
        return (torch.linalg.pinv(R11, rtol=self._relative_tolerance()) @ z).squeeze(1)

    def inverse_r(self) -> torch.Tensor:
        """R₁₁⁻¹ (CPU, float64): (XᵀX)⁻¹ = R₁₁⁻¹ R₁₁⁻ᵀ, without forming XᵀX.

        Raises:
            RankDeficientError: when the design is rank-deficient.
        """
        self.check_full_rank()
        p = self.n_features + 1
        R11 = self._square()[:p, :p].cpu()
        eye = torch.eye(p, dtype=torch.float64)
        return torch.linalg.solve_triangular(R11, eye, upper=True)

    def check_full_rank(self, names: Sequence[str] | None = None) -> Conditioning:
        """The conditioning, or :class:`RankDeficientError` naming the collinear columns."""
        conditioning = self.conditioning()
        if not conditioning.full_rank:
            raise RankDeficientError(conditioning, names)
        return conditioning

    @property
    def rss(self) -> float:
        """The residual sum of squares at the optimum: ρ² (of a rank-deficient design, where
        an arbitrary reflection moves part of the residual into z, ‖R [b, w, −1]‖²)."""
        self._check_rows()
        if not self.conditioning().full_rank:
            w, b = self.solve()
            return self.mse(w, b) * self.rows
        size = self.n_features + 2
        return float(self._square()[size - 1, size - 1] ** 2)

    @property
    def tss(self) -> float:
        """The total sum of squares of y about its mean."""
        self._check_rows()
        return float((self._square()[1:, -1] ** 2).sum())

    def mse(self, w: torch.Tensor, b: torch.Tensor | float) -> float:
        """Mean squared error of y ≈ X w + b over the added rows, from R alone."""
        self._check_rows()
        v = torch.cat(
            [
                torch.tensor([float(b)], dtype=torch.float64),
                w.detach().to("cpu", torch.float64).flatten(),
                torch.tensor([-1.0], dtype=torch.float64),
            ]
        )
        return float(((self._square().cpu() @ v) ** 2).sum()) / self.rows

    def to_dict(self) -> dict[str, object]:
        """Plain lists and numbers, for a JSON dataset."""
        return {"n_features": self.n_features, "rows": self.rows, "R": self.R.cpu().tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> StreamedQR:
        """The inverse of :meth:`to_dict`."""
        qr = cls(int(data["n_features"]))
        qr.R = torch.tensor(data["R"], dtype=torch.float64).reshape(-1, qr.n_features + 2)
        qr.rows = int(data["rows"])
        return qr


def least_squares(X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve min ||X w + b - y||² exactly, by QR in float64 (on the CPU).

    Returns:
        The weights as a (d,) tensor and the intercept as a scalar tensor, both float64.
    """
    qr = StreamedQR(X.shape[1])
    qr.add(X, y)
    return qr.solve()


def factor_partitions(
    partitions: Mapping[str, PartitionLoader],
    target: str,
    order: list[str] | None = None,
    *,
    n_features: int | None = None,
    device: torch.device | str = "cpu",
) -> tuple[StreamedQR, dict[str, int]]:
    """Factor [1 X y] over every row of the partitions (in ``order``, or sorted by id) in one
    pass, each column copied once, from Arrow's decoded column into the float64 block that is
    factored (:func:`~linear_nets.engine.sources.column_chunks`, decoded ahead in a thread
    when there is a core for it; :meth:`StreamedQR.add_columns`).

    Args:
        partitions: partition id -> loader, as ``PartitionedDataset.load()`` returns them.
        target: the column to predict; every other column is a feature.
        order: the partitions to read, in this order; all of them, sorted by id, when None.
        n_features: the features expected (e.g. a model's); the first partition's when None.
        device: where the factorisation runs.

    Returns:
        The factorisation and the rows of each partition read (0 for an empty one).

    Raises:
        ValueError: naming the partition whose feature columns differ from the first
            partition's by id (columns are matched by name, in that partition's order) or
            number other than ``n_features``, or a column that is not numbers.
        NonFiniteValueError: naming the partition, row and column of a NaN, infinite or
            missing value.
    """
    names = sorted(partitions) if order is None else order
    rows = dict.fromkeys(names, 0)
    qr = None if n_features is None else StreamedQR(n_features, device)
    features = feature_names(partitions, target) if names else []
    chunks = column_chunks(partitions, target, names, features=features)
    with streaming_threads(), contextlib.closing(chunks):  # an error stops the decoding thread
        for name, columns, y in chunks:
            if qr is None:  # (column_chunks refuses a partition with other columns)
                qr = StreamedQR(len(columns), device)
            elif len(columns) != qr.n_features:
                raise ValueError(
                    f"partition {name!r} has {len(columns)} feature columns where the model "
                    f"takes {qr.n_features}"
                )
            try:
                qr.add_columns(columns, y)
            except NonFiniteValueError as error:
                column = repr([*features, target][error.index])
                row = rows[name] + error.row
                raise NonFiniteValueError(row, error.index, error.value, column, name) from None
            rows[name] += len(y)
    if qr is None:
        raise ValueError("no rows: the least-squares problem is empty")
    return qr, rows


def streamed_least_squares(
    chunks: Iterable[tuple[torch.Tensor, torch.Tensor]], device: torch.device | str = "cpu"
) -> StreamedQR:
    """Factor [1 X y] over ``(X, y)`` chunks in one pass (TSQR on ``device``).

    Raises:
        ValueError: if there are no rows, or the chunks disagree on the number of features.
    """
    qr: StreamedQR | None = None
    for X, y in chunks:
        if qr is None:
            qr = StreamedQR(X.shape[1], device)
        qr.add(X, y)
    if qr is None or qr.rows == 0:
        raise ValueError("no rows: the least-squares problem is empty")
    return qr
