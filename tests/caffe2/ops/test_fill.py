import numpy as np
import pytest
import torch

from detectron2_export.errors import OperatorArgumentError, OperatorInputError
from tests.caffe2.helpers import run_single_op


@pytest.mark.parametrize(
    "op_type, values, dtype",
    [
        ("GivenTensorFill", [0.5, 1.5, 2.5, 3.5, 4.5, 5.5], torch.float32),
        ("GivenTensorDoubleFill", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], torch.float64),
        ("GivenTensorIntFill", [1, -2, 3, -4, 5, -6], torch.int32),
        ("GivenTensorInt64Fill", [2**40, -1, 0, 1, 2, 3], torch.int64),
        ("GivenTensorBoolFill", [True, False, False, True, True, False], torch.bool),
    ],
)
def test_given_tensor_fills(op_type, values, dtype):
    (y,) = run_single_op(op_type, [], values=values, shape=[2, 3])
    assert y.dtype == dtype and y.shape == (2, 3)
    # Argument.floats is float32 on the wire, so even GivenTensorDoubleFill values are float32-rounded.
    expected = torch.tensor(values, dtype=torch.float32 if dtype.is_floating_point else torch.int64).to(dtype)
    assert torch.equal(y.reshape(-1), expected)
    assert y[1, 0].item() == pytest.approx(values[3])  # row-major


def test_given_tensor_fill_from_float32_array_and_scalar():
    w = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    (y,) = run_single_op("GivenTensorFill", [], values=w, shape=w.shape)
    np.testing.assert_array_equal(y.numpy(), w)  # float32 -> floats -> float32 is exact
    (s,) = run_single_op("GivenTensorFill", [], values=[4.0], shape=[])
    assert s.shape == () and s.item() == 4.0


def test_fill_shape_from_input():
    (y,) = run_single_op("GivenTensorIntFill", [torch.zeros(2, 1)], values=[1, 2, 3, 4], extra_shape=[2])
    assert y.tolist() == [[[1, 2]], [[3, 4]]]  # input dims (2, 1) + extra_shape (2)
    (z,) = run_single_op("GivenTensorFill", [torch.tensor([3], dtype=torch.int64)], values=[1.0, 2.0, 3.0], input_as_shape=1)
    assert z.tolist() == [1.0, 2.0, 3.0]


def test_fill_count_mismatch():
    with pytest.raises(OperatorArgumentError, match=r"GivenTensorFill: values has 5 elements, expected 6 \(shape \[2, 3\]\)"):
        run_single_op("GivenTensorFill", [], values=[1.0] * 5, shape=[2, 3])
    with pytest.raises(OperatorArgumentError, match=r"GivenTensorFill: values="):
        run_single_op("GivenTensorFill", [], values=["a"], shape=[1])
    with pytest.raises(OperatorArgumentError, match=r"missing required argument 'values'"):
        run_single_op("GivenTensorFill", [], shape=[1])


def test_given_tensor_string_fill():
    raw = bytes([0, 7, 255, 128])
    (y,) = run_single_op("GivenTensorStringFill", [], values=[raw], shape=[1])
    assert y.dtype == torch.uint8 and y.tolist() == [0, 7, 255, 128]  # detectron2's uint8 parameter form
    (strings,) = run_single_op("GivenTensorStringFill", [], values=["ab", b"\xff"], shape=[2])
    assert isinstance(strings, np.ndarray) and strings.tolist() == [b"ab", b"\xff"]


def test_constant_fill_shape_value_dtype():
    (y,) = run_single_op("ConstantFill", [], shape=[2, 2], value=1.5)
    assert y.dtype == torch.float32 and y.tolist() == [[1.5, 1.5], [1.5, 1.5]]
    (i,) = run_single_op("ConstantFill", [], shape=[3], value=7)  # int value, no dtype -> INT64 (Caffe2)
    assert i.dtype == torch.int64 and i.tolist() == [7, 7, 7]
    (d,) = run_single_op("ConstantFill", [], shape=[1], value=2, dtype=2)
    assert d.dtype == torch.int32 and d.tolist() == [2]
    (b,) = run_single_op("ConstantFill", [], shape=[2], value=1, dtype=5)
    assert b.dtype == torch.bool and b.tolist() == [True, True]
    (z,) = run_single_op("ConstantFill", [], shape=[2])
    assert z.dtype == torch.float32 and z.tolist() == [0.0, 0.0]


def test_constant_fill_from_input():
    (y,) = run_single_op("ConstantFill", [torch.tensor([2, 3])], value=1.0, input_as_shape=1, extra_shape=[1])
    assert y.shape == (2, 3, 1)
    (z,) = run_single_op("ConstantFill", [torch.zeros(4, 1)], value=-1.0)
    assert z.tolist() == [[-1.0]] * 4
    with pytest.raises(OperatorArgumentError, match=r"ConstantFill: shape=\[2\] given with a shape input"):
        run_single_op("ConstantFill", [torch.zeros(1)], shape=[2])
    with pytest.raises(OperatorInputError, match=r"ConstantFill: shape input dtype=torch.float32"):
        run_single_op("ConstantFill", [torch.zeros(2)], input_as_shape=1)
    with pytest.raises(OperatorArgumentError, match=r"ConstantFill: dtype=4, expected a Caffe2 DataType"):
        run_single_op("ConstantFill", [], shape=[1], dtype=4)  # STRING is not fillable
