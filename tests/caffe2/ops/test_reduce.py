import pytest
import torch

from tests.caffe2.helpers import run_single_op

X = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]])  # (2, 2, 2)


def test_reduce_mean_axes_keepdims():
    (y,) = run_single_op("ReduceMean", [X], axes=[2, 1])
    assert y.shape == (2, 1, 1) and y.reshape(-1).tolist() == [2.5, 6.5]
    (z,) = run_single_op("ReduceMean", [X], axes=[0], keepdims=0)
    assert z.tolist() == [[3.0, 4.0], [5.0, 6.0]]
    (a,) = run_single_op("ReduceMean", [X], keepdims=0)  # all axes by default
    assert a.item() == 4.5
    (n,) = run_single_op("ReduceMean", [X], axes=[-1])
    assert n.shape == (2, 2, 1)


@pytest.mark.parametrize("op_type, expected", [("ReduceSum", [10.0, 26.0]), ("ReduceMax", [4.0, 8.0]), ("ReduceMin", [1.0, 5.0])])
def test_other_reductions(op_type, expected):
    (y,) = run_single_op(op_type, [X], axes=[1, 2], keepdims=0)
    assert y.tolist() == expected
