"""Tables as frames and tensors without a second copy of the numbers."""

from __future__ import annotations

import numpy as np
import torch

from linear_nets.frames import as_tensor, float_frame


def test_a_float_frame_is_one_block_whose_values_are_a_view():
    columns = [np.arange(4.0), np.arange(4) * 2, np.ones(4, dtype=np.float32)]
    frame = float_frame(["a", "b", "c"], 4, lambda position: columns[position])
    assert list(frame.dtypes) == [np.float64] * 3
    values = frame.to_numpy()
    assert values.base is not None and values.flags.f_contiguous
    np.testing.assert_array_equal(values[:, 1], [0, 2, 4, 6])


def test_as_tensor_shares_float64_and_copies_other_dtypes_row_major():
    frame = float_frame(["a", "b"], 3, lambda position: np.arange(3.0) + position)
    values = frame.to_numpy()  # read-only: pandas' copy-on-write
    shared = as_tensor(values, torch.float64)
    assert shared.data_ptr() == values.__array_interface__["data"][0]
    single = as_tensor(values, torch.float32)
    assert single.dtype == torch.float32 and single.is_contiguous()
    torch.testing.assert_close(single, torch.tensor([[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]]))
