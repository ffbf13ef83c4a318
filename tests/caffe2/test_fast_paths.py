"""Fast paths that must give exactly what the general code gives: packed argument encoding, array
decoding of fill values, power-of-two ``ResizeNearest`` and unpadded ``ConvTranspose``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from detectron2_export.caffe2.arguments import decode_argument, make_argument
from detectron2_export.caffe2.ops.resize import resize_nearest
from detectron2_export.caffe2.proto import caffe2_pb2
from tests.caffe2.helpers import run_single_op


@pytest.mark.parametrize("n", [0, 1, 7, 100_003])
def test_packed_floats_equal_extend(n):
    values = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    reference = caffe2_pb2.Argument(name="values")
    reference.floats.extend(values.tolist())
    arg = make_argument("values", values.reshape(-1, 1) if n % 2 else values)
    assert arg == reference
    assert arg.SerializeToString() == reference.SerializeToString()


def test_packed_floats_keep_special_values():
    values = np.array([np.nan, -0.0, np.inf, -np.inf, 1e-45], dtype=np.float32)
    decoded = np.asarray(make_argument("v", values).floats, dtype=np.float32)
    assert decoded.tobytes() == values.tobytes()


def test_int_array_argument_equals_list():
    values = np.array([[3, -1], [2**40, 0]], dtype=np.int64)
    assert make_argument("shape", values) == make_argument("shape", [3, -1, 2**40, 0])
    assert make_argument("shape", values[:1].astype(np.int32)) == make_argument("shape", [3, -1])


def test_decode_as_array_matches_list():
    floats = make_argument("v", np.array([1.5, -2.25, 3e-8], dtype=np.float32))
    ints = make_argument("v", [4, -5, 2**40])
    assert decode_argument(floats) == [1.5, -2.25, float(np.float32(3e-8))]
    arr = decode_argument(floats, as_array=True)
    assert arr.dtype == np.float32 and arr.tolist() == decode_argument(floats)
    arr = decode_argument(ints, as_array=True)
    assert arr.dtype == np.int64 and arr.tolist() == [4, -5, 2**40]


@pytest.mark.parametrize(
    "op_type, dtype, values",
    [
        ("GivenTensorFill", torch.float32, [0.1, -2.5, 3.0, 7e-9, 1e30, -0.0]),
        ("GivenTensorDoubleFill", torch.float64, [0.1, -2.5, 3.0, 7e-9, 1e30, -0.0]),
        ("GivenTensorIntFill", torch.int32, [1, -2, 3, 2**31 - 1, -(2**31), 0]),
        ("GivenTensorInt64Fill", torch.int64, [1, -2, 3, 2**40, -(2**40), 0]),
        ("GivenTensorBoolFill", torch.bool, [1, 0, 0, 1, 1, 0]),
    ],
)
def test_fill_values_decoded_as_arrays(op_type, dtype, values):
    (out,) = run_single_op(op_type, [], values=values, shape=[2, 3])
    # Reference: the float32 / int64 values a Caffe2 Argument holds, converted element by element.
    stored = [float(np.float32(v)) for v in values] if isinstance(values[0], float) else values
    assert out.dtype == dtype and out.shape == (2, 3)
    assert out.reshape(-1).tolist() == [dtype_cast(v, dtype) for v in stored]


def dtype_cast(v, dtype):
    return torch.tensor([v], dtype=torch.float64 if isinstance(v, float) else torch.int64).to(dtype).item()


def _reference_nearest(x: torch.Tensor, hs: float, ws: float) -> torch.Tensor:
    # Caffe2: out = int(in * scale), src = min(int(dst / scale), in - 1), float32 arithmetic.
    h, w = x.shape[2:]
    oh, ow = int(np.float32(h) * np.float32(hs)), int(np.float32(w) * np.float32(ws))
    rows = [min(int(np.float32(i) / np.float32(hs)), h - 1) for i in range(oh)]
    cols = [min(int(np.float32(j) / np.float32(ws)), w - 1) for j in range(ow)]
    return x[:, :, rows][:, :, :, cols]


@pytest.mark.parametrize("hs, ws", [(2.0, 2.0), (4.0, 1.0), (1.0, 8.0), (2.0, 3.0), (1.5, 2.0), (0.5, 0.5)])
def test_resize_nearest_matches_reference(hs, ws):
    x = torch.randn(2, 3, 13, 19)
    assert torch.equal(resize_nearest(x, "NCHW", ws, hs), _reference_nearest(x, hs, ws))


def test_resize_nearest_fpn_sizes_bitwise():
    x = torch.randn(1, 8, 25, 38)
    out = resize_nearest(x, "NCHW", 2.0, 2.0)
    assert out.shape == (1, 8, 50, 76) and torch.equal(out, x.repeat_interleave(2, 2).repeat_interleave(2, 3))


@pytest.mark.parametrize("nd, kernel, stride", [(2, 2, 2), (2, 3, 1), (2, 4, 2), (1, 3, 2), (3, 2, 2)])
def test_conv_transpose_unpadded_bitwise_equals_bias_added_after(nd, kernel, stride):
    torch.manual_seed(nd * 10 + kernel)
    x = torch.randn(2, 16, *([7] * nd))
    w = torch.randn(16, 8, *([kernel] * nd))
    b = torch.randn(8)
    (y,) = run_single_op("ConvTranspose", [x, w, b], kernel=kernel, stride=stride)
    fn = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[nd]
    reference = fn(x, w, None, stride) + b.reshape(1, -1, *([1] * nd))
    assert torch.equal(y, reference)
