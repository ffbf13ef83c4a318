import math

import pytest
import torch

from detectron2_export.errors import OperatorArgumentError, OperatorInputError
from tests.caffe2.helpers import run_single_op

A = torch.arange(24.0).reshape(2, 3, 4)


@pytest.mark.parametrize("op_type, expected", [("Add", [5.0, 1.0]), ("Sub", [-1.0, 5.0]), ("Mul", [6.0, -6.0]), ("Div", [2.0 / 3.0, -1.5])])
def test_arithmetic_hand_computed(op_type, expected):
    (y,) = run_single_op(op_type, [torch.tensor([2.0, 3.0]), torch.tensor([3.0, -2.0])])
    torch.testing.assert_close(y, torch.tensor(expected))


def test_integer_div_truncates_like_cpp():
    (y,) = run_single_op("Div", [torch.tensor([7, -7]), torch.tensor([2, 2])])
    assert y.tolist() == [3, -3]


def test_numpy_broadcast_when_broadcast_0():
    (y,) = run_single_op("Add", [torch.ones(2, 1), torch.tensor([1.0, 2.0, 3.0])])
    assert y.tolist() == [[2.0, 3.0, 4.0]] * 2


def test_legacy_broadcast_suffix_and_axis():
    b = torch.tensor([100.0, 200.0, 300.0, 400.0])
    (y,) = run_single_op("Add", [A, b], broadcast=1)  # suffix match on the last dim
    assert y[1, 2].tolist() == [120.0, 221.0, 322.0, 423.0]
    c = torch.tensor([10.0, 20.0, 30.0])
    (z,) = run_single_op("Mul", [A, c], broadcast=1, axis=1)  # B matches dim 1
    assert z[0, :, 0].tolist() == [0.0, 80.0, 240.0]
    (w,) = run_single_op("Sub", [A, c.reshape(1, 3, 1)], broadcast=1, axis=0)  # leading/trailing 1s ignored
    assert w[1, 1, 3].item() == 19.0 - 20.0
    (s,) = run_single_op("Add", [A, torch.tensor(1.0)], broadcast=1)  # a scalar
    assert s[0, 0, 0].item() == 1.0


def test_legacy_broadcast_errors():
    with pytest.raises(OperatorInputError, match=r"Add: B shape=\(3,\) does not match A shape=\(2, 3, 4\) at axis 2 \(broadcast=1\)"):
        run_single_op("Add", [A, torch.zeros(3)], broadcast=1)
    with pytest.raises(OperatorInputError, match=r"Add: axis=2, expected in \[0, 1\]"):
        run_single_op("Add", [A, torch.zeros(3, 4)], broadcast=1, axis=2)
    with pytest.raises(OperatorInputError, match=r"has more dims than A"):
        run_single_op("Add", [torch.zeros(3), A], broadcast=1)


def test_comparisons_and_logic():
    a, b = torch.tensor([1, 2, 3]), torch.tensor([2, 2, 2])
    assert run_single_op("EQ", [a, b])[0].tolist() == [False, True, False]
    assert run_single_op("LT", [a, b])[0].tolist() == [True, False, False]
    assert run_single_op("GT", [a, b])[0].tolist() == [False, False, True]
    assert run_single_op("GE", [a, b])[0].tolist() == [False, True, True]
    assert run_single_op("LE", [a, b])[0].tolist() == [True, True, False]
    assert run_single_op("NE", [a, b])[0].tolist() == [True, False, True]
    assert run_single_op("EQ", [A, torch.tensor([4.0, 5.0, 6.0, 7.0])], broadcast=1)[0][0, 1].tolist() == [True] * 4
    t, f = torch.tensor([True, True, False]), torch.tensor([True, False, False])
    assert run_single_op("And", [t, f])[0].tolist() == [True, False, False]
    assert run_single_op("Or", [t, f])[0].tolist() == [True, True, False]
    assert run_single_op("Xor", [t, f])[0].tolist() == [False, True, False]
    assert run_single_op("Not", [f])[0].tolist() == [False, True, True]


@pytest.mark.parametrize(
    "op_type, x, expected",
    [
        ("Relu", [-1.0, 0.0, 2.0], [0.0, 0.0, 2.0]),
        ("Sigmoid", [0.0, math.log(3.0)], [0.5, 0.75]),
        ("Tanh", [0.0, math.log(2.0)], [0.0, 0.6]),  # (4 - 1) / (4 + 1)
        ("Exp", [0.0, 1.0], [1.0, math.e]),
        ("Log", [1.0, math.e], [0.0, 1.0]),
        ("Sqrt", [4.0, 2.25], [2.0, 1.5]),
        ("Sqr", [-3.0, 0.5], [9.0, 0.25]),
        ("Negative", [1.0, -2.0], [-1.0, 2.0]),
        ("Abs", [-1.5, 2.0], [1.5, 2.0]),
        ("Reciprocal", [4.0, -0.5], [0.25, -2.0]),
        ("Floor", [1.5, -1.5], [1.0, -2.0]),
        ("Ceil", [1.5, -1.5], [2.0, -1.0]),
        ("Sign", [-3.0, 0.0, 2.0], [-1.0, 0.0, 1.0]),
    ],
)
def test_unary(op_type, x, expected):
    (y,) = run_single_op(op_type, [torch.tensor(x)])
    torch.testing.assert_close(y, torch.tensor(expected))


def test_sum():
    (y,) = run_single_op("Sum", [torch.tensor([1.0, 2.0]), torch.tensor([10.0, 20.0]), torch.tensor([100.0, 200.0])])
    assert y.tolist() == [111.0, 222.0]
    (one,) = run_single_op("Sum", [torch.tensor([5.0])])
    assert one.tolist() == [5.0]
    with pytest.raises(OperatorInputError, match=r"Sum: input 1 shape=\(3,\), expected \(2,\)"):
        run_single_op("Sum", [torch.zeros(2), torch.zeros(3)])


def test_max_min_leaky_relu():
    a, b = torch.tensor([1.0, 5.0, -2.0]), torch.tensor([3.0, 4.0, -1.0])
    assert run_single_op("Max", [a, b])[0].tolist() == [3.0, 5.0, -1.0]
    assert run_single_op("Min", [a, b, torch.zeros(3)])[0].tolist() == [0.0, 0.0, -2.0]
    assert run_single_op("LeakyRelu", [a], alpha=0.5)[0].tolist() == [1.0, 5.0, -1.0]
    assert run_single_op("LeakyRelu", [torch.tensor([-100.0])])[0].tolist() == [-1.0]


def test_pow():
    assert run_single_op("Pow", [torch.tensor([2.0, 3.0])], exponent=2.0)[0].tolist() == [4.0, 9.0]
    assert run_single_op("Pow", [torch.tensor([4.0])], exponent=-1)[0].tolist() == [0.25]  # ONNX Reciprocal
    assert run_single_op("Pow", [torch.tensor([2.0, 3.0]), torch.tensor([3.0, 0.5])])[0].tolist() == pytest.approx([8.0, math.sqrt(3.0)])
    assert run_single_op("Pow", [A, torch.tensor([0.0, 1.0, 1.0, 1.0])], broadcast=1)[0][0, 0].tolist() == [1.0, 1.0, 2.0, 3.0]
    with pytest.raises(OperatorInputError, match=r"Pow: neither exponent argument and exponent input given"):
        run_single_op("Pow", [torch.ones(1)])


def test_clip_scale():
    x = torch.tensor([-2.0, 0.5, 3.0])
    assert run_single_op("Clip", [x], min=-1.0, max=1.0)[0].tolist() == [-1.0, 0.5, 1.0]
    assert run_single_op("Clip", [x], max=0)[0].tolist() == [-2.0, 0.0, 0.0]
    assert run_single_op("Clip", [x])[0].tolist() == [-2.0, 0.5, 3.0]
    assert run_single_op("Scale", [x], scale=-2.0)[0].tolist() == [4.0, -1.0, -6.0]
    assert run_single_op("Scale", [x])[0].tolist() == x.tolist()


def test_softmax_axis_flattens_trailing_dims():
    x = torch.tensor([[[0.0, math.log(3.0)]], [[1.0, 1.0]]])  # (2, 1, 2)
    (y,) = run_single_op("Softmax", [x])  # axis 1: rows of 1*2 values
    torch.testing.assert_close(y, torch.tensor([[[0.25, 0.75]], [[0.5, 0.5]]]))
    (z,) = run_single_op("Softmax", [x], axis=0)  # one row of 4 values
    e = torch.tensor([1.0, 3.0, math.e, math.e])
    torch.testing.assert_close(z.reshape(-1), e / e.sum())
    (last,) = run_single_op("Softmax", [A], axis=-1)
    torch.testing.assert_close(last, torch.softmax(A, -1))


def test_dropout_is_identity_at_test_time():
    x = torch.randn(3, 4)
    y, mask = run_single_op("Dropout", [x], is_test=1, ratio=0.3)
    assert torch.equal(y, x) and mask.dtype == torch.bool and bool(mask.all())
    with pytest.raises(OperatorArgumentError, match=r"Dropout: is_test=False, expected 1 \(inference only\)"):
        run_single_op("Dropout", [x])
