import pytest
import torch
import torch.nn.functional as F

from detectron2_export.errors import OperatorArgumentError, OperatorInputError
from tests.caffe2.helpers import run_single_op

X = torch.tensor([[[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]]])


def test_max_pool_hand_computed():
    (y,) = run_single_op("MaxPool", [X], kernels=[2, 2], strides=[1, 1])
    assert y.tolist() == [[[[5.0, 6.0], [8.0, 9.0]]]]
    (g,) = run_single_op("MaxPool", [X], global_pooling=1)
    assert g.tolist() == [[[[9.0]]]]


def test_max_pool_padding_never_wins():
    neg = -X
    (y,) = run_single_op("MaxPool", [neg], kernels=[2, 2], strides=[2, 2], pads=[1, 1, 0, 0])  # t=l=1
    assert y.tolist() == [[[[-1.0, -2.0], [-4.0, -5.0]]]]
    (z,) = run_single_op("MaxPool", [neg], kernels=[2, 2], strides=[2, 2], pads=[2, 2, 2, 2])  # pad > k/2
    assert z.shape == (1, 1, 3, 3)
    assert z[0, 0, 1, 1].item() == -1.0 and z[0, 0, 0, 0].item() == -float("inf")  # an all-pad window


def test_average_pool_excludes_padding_by_default():
    (y,) = run_single_op("AveragePool", [X], kernels=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1])
    # windows: {1}, {2,3}, {4,7}, {5,6,8,9}
    assert y.tolist() == [[[[1.0, 2.5], [5.5, 7.0]]]]
    (inc,) = run_single_op("AveragePool", [X], kernels=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)
    assert inc.tolist() == [[[[0.25, 1.25], [2.75, 7.0]]]]


def test_average_pool_asymmetric_pads():
    (y,) = run_single_op("AveragePool", [X], kernels=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1])  # b=r=1
    assert y.tolist() == [[[[3.0, 4.5], [7.5, 9.0]]]]
    (g,) = run_single_op("AveragePool", [X], global_pooling=1)
    assert g.tolist() == [[[[5.0]]]]


@pytest.mark.parametrize("op_type, fn", [("MaxPool", F.max_pool2d), ("AveragePool", F.avg_pool2d)])
def test_pools_match_torch(op_type, fn):
    x = torch.randn(2, 3, 9, 10, generator=torch.Generator().manual_seed(0))
    (y,) = run_single_op(op_type, [x], kernel=3, stride=2, pad=1)
    kw = {"count_include_pad": False} if op_type == "AveragePool" else {}
    torch.testing.assert_close(y, fn(x, 3, 2, 1, **kw))


def test_pool_errors():
    with pytest.raises(OperatorArgumentError, match=r"MaxPool: no kernel/kernels argument, expected one unless global_pooling=1"):
        run_single_op("MaxPool", [X])
    with pytest.raises(OperatorInputError, match=r"MaxPool: X shape=\(3, 3\), expected 3-D or 4-D or 5-D"):
        run_single_op("MaxPool", [X[0, 0]], kernel=2)
    with pytest.raises(OperatorInputError, match=r"is smaller than kernel \[5, 5\]"):
        run_single_op("AveragePool", [X], kernel=5)
