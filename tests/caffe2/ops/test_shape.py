import pytest
import torch

from detectron2_export.errors import OperatorArgumentError, OperatorInputError
from tests.caffe2.helpers import run_single_op

X = torch.arange(24).reshape(2, 3, 4)


def test_reshape_arg_zero_and_minus_one():
    y, old = run_single_op("Reshape", [X], shape=[0, -1])
    assert y.shape == (2, 12) and torch.equal(y.reshape(-1), X.reshape(-1))
    assert old.dtype == torch.int64 and old.tolist() == [2, 3, 4]
    (z, _) = run_single_op("Reshape", [X, torch.tensor([4, 0, 2])])  # shape as input; 0 copies dim 1
    assert z.shape == (4, 3, 2)


def test_reshape_errors():
    with pytest.raises(OperatorInputError, match=r"Reshape: shape=\[5, 5\] has 25 elements, input shape \[2, 3, 4\] has 24"):
        run_single_op("Reshape", [X], shape=[5, 5])
    with pytest.raises(OperatorArgumentError, match=r"Reshape: shape=\[-1, -1\], expected at most one -1"):
        run_single_op("Reshape", [X], shape=[-1, -1])
    with pytest.raises(OperatorArgumentError, match=r"expected exactly one of the shape argument and the new_shape input"):
        run_single_op("Reshape", [X])
    with pytest.raises(OperatorInputError, match=r"Reshape: cannot infer -1 in shape=\[5, -1\]"):
        run_single_op("Reshape", [X], shape=[5, -1])


def test_flatten():
    assert run_single_op("Flatten", [X])[0].shape == (2, 12)
    assert run_single_op("Flatten", [X], axis=2)[0].shape == (6, 4)
    assert run_single_op("Flatten", [X], axis=0)[0].shape == (1, 24)


def test_concat_and_split_info():
    a, b = torch.zeros(2, 1, 4), torch.ones(2, 2, 4)
    y, info = run_single_op("Concat", [a, b])
    assert y.shape == (2, 3, 4) and y[:, 1:].eq(1).all() and info.dtype == torch.int32 and info.tolist() == [1, 2]
    y2, info2 = run_single_op("Concat", [a, a], axis=-1)
    assert y2.shape == (2, 1, 8) and info2.tolist() == [4, 4]
    y3, info3 = run_single_op("Concat", [a, a, a], axis=1, add_axis=1)
    assert y3.shape == (2, 3, 1, 4) and info3.tolist() == [1, 1, 1]
    y4, _ = run_single_op("Concat", [torch.zeros(1, 2, 2, 3), torch.zeros(1, 2, 2, 1)], order="NHWC")
    assert y4.shape == (1, 2, 2, 4)
    with pytest.raises(OperatorInputError, match=r"op #0 'Concat'.*RuntimeError: Sizes of tensors must match"):
        run_single_op("Concat", [a, torch.zeros(3, 1, 4)])


def test_split():
    parts = run_single_op("Split", [X], num_outputs=2, axis=2, split=[1, 3])
    assert [p.shape for p in parts] == [(2, 3, 1), (2, 3, 3)] and torch.equal(parts[1], X[:, :, 1:])
    parts = run_single_op("Split", [X, torch.tensor([1, 1])], num_outputs=2, axis=0)
    assert torch.equal(parts[0], X[:1])
    with pytest.raises(OperatorInputError, match=r"Split: split=\[1, 1\] sums to 2, expected X.shape\[1\]=3"):
        run_single_op("Split", [X], num_outputs=2, split=[1, 1])


def test_transpose_squeeze_expand_dims():
    assert run_single_op("Transpose", [X])[0].shape == (4, 3, 2)
    (t,) = run_single_op("Transpose", [X], axes=[1, 0, 2])
    assert torch.equal(t, X.permute(1, 0, 2))
    with pytest.raises(OperatorArgumentError, match=r"Transpose: axes=\[0, 0, 1\], expected a permutation"):
        run_single_op("Transpose", [X], axes=[0, 0, 1])
    (e,) = run_single_op("ExpandDims", [X], dims=[0, 4])
    assert e.shape == (1, 2, 3, 4, 1)
    (s,) = run_single_op("Squeeze", [e], dims=[4, 0])
    assert s.shape == (2, 3, 4)
    with pytest.raises(OperatorInputError, match=r"Squeeze: dims=\[1\], X shape=\(2, 3, 4\): dim 1 is not of size 1"):
        run_single_op("Squeeze", [X], dims=[1])
    with pytest.raises(OperatorInputError, match=r"ExpandDims: dims=\[5\], X shape=\(2, 3, 4\): cannot insert at 5"):
        run_single_op("ExpandDims", [X], dims=[5])


def test_shape():
    (s,) = run_single_op("Shape", [X])
    assert s.dtype == torch.int64 and s.tolist() == [2, 3, 4]
    assert run_single_op("Shape", [X], axes=[2, 0])[0].tolist() == [4, 2]


def test_slice_args_and_negative_end_rule():
    (y,) = run_single_op("Slice", [X], starts=[0, 1, 0], ends=[-1, -1, 2])  # -1 = to the end
    assert torch.equal(y, X[:, 1:, :2])
    (z,) = run_single_op("Slice", [X], starts=[1], ends=[2])  # trailing dims untouched
    assert torch.equal(z, X[1:2])
    (w,) = run_single_op("Slice", [X], starts=[0, 0, 1], ends=[-1, -1, -2])  # -2 = dim + 1 - 2 = 3
    assert torch.equal(w, X[:, :, 1:3])
    (v,) = run_single_op("Slice", [X, torch.tensor([0, -3, 0]), torch.tensor([1, -1, 100])])  # as inputs; end clamped
    assert torch.equal(v, X[:1, 1:, :])


def test_slice_errors():
    with pytest.raises(OperatorInputError, match=r"Slice: dim 1 of size 3: start=2, end=1 give \[2, 1\), expected 0 <= start <= end"):
        run_single_op("Slice", [X], starts=[0, 2], ends=[2, 1])
    with pytest.raises(OperatorInputError, match=r"Slice: starts=\[0\], ends=\[1, 2\], expected equal lengths"):
        run_single_op("Slice", [X], starts=[0], ends=[1, 2])
    with pytest.raises(OperatorArgumentError, match=r"Slice: starts and ends missing"):
        run_single_op("Slice", [X])


def test_gather_and_batch_gather():
    data = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    (y,) = run_single_op("Gather", [data, torch.tensor([[2, 0]])])
    assert y.tolist() == [[[5.0, 6.0], [1.0, 2.0]]]  # indices.shape + data.shape[1:]
    (c,) = run_single_op("Gather", [data, torch.tensor([1], dtype=torch.int32)], axis=1)
    assert c.tolist() == [[2.0], [4.0], [6.0]]
    (w,) = run_single_op("Gather", [data, torch.tensor([-1])], wrap_indices=1)
    assert w.tolist() == [[5.0, 6.0]]
    with pytest.raises(OperatorInputError, match=r"Gather: indices in \[-1, -1\], expected in \[0, 3\)"):
        run_single_op("Gather", [data, torch.tensor([-1])])
    (b,) = run_single_op("BatchGather", [data, torch.tensor([1, 1, 0])])
    assert b.tolist() == [[2.0, 2.0, 1.0], [4.0, 4.0, 3.0], [6.0, 6.0, 5.0]]
    with pytest.raises(OperatorInputError, match=r"BatchGather: indices dtype=torch.float32, expected int32 or int64"):
        run_single_op("BatchGather", [data, torch.tensor([0.0])])


def test_scatter_assign_does_not_modify_input():
    data = torch.zeros(4, 2)
    (y,) = run_single_op("ScatterAssign", [data, torch.tensor([3, 1]), torch.tensor([[1.0, 2.0], [3.0, 4.0]])])
    assert y.tolist() == [[0.0, 0.0], [3.0, 4.0], [0.0, 0.0], [1.0, 2.0]]
    assert data.eq(0).all()
    with pytest.raises(OperatorInputError, match=r"ScatterAssign: slices shape=\(1, 3\) dtype=torch.float32, expected \(1, 2\)"):
        run_single_op("ScatterAssign", [data, torch.tensor([0]), torch.zeros(1, 3)])


@pytest.mark.parametrize("to, dtype", [(1, torch.float32), (2, torch.int32), (5, torch.bool), (6, torch.uint8), (10, torch.int64), (13, torch.float64)])
def test_cast(to, dtype):
    (y,) = run_single_op("Cast", [torch.tensor([-1.7, 0.0, 2.5])], to=to)
    assert y.dtype == dtype
    if dtype in (torch.int32, torch.int64):
        assert y.tolist() == [-1, 0, 2]  # truncation toward zero


def test_numpy_tile_and_expand():
    (t,) = run_single_op("NumpyTile", [torch.tensor([[1, 2]]), torch.tensor([2, 2])])
    assert t.tolist() == [[1, 2, 1, 2], [1, 2, 1, 2]]
    with pytest.raises(OperatorInputError, match=r"NumpyTile: repeats=\[2\], expected 2 non-negative counts"):
        run_single_op("NumpyTile", [torch.tensor([[1, 2]]), torch.tensor([2])])
    (e,) = run_single_op("Expand", [torch.tensor([[1], [2]]), torch.tensor([2, 3])])
    assert e.tolist() == [[1, 1, 1], [2, 2, 2]]
    (e2,) = run_single_op("Expand", [torch.tensor([[1, 2, 3]]), torch.tensor([2, 1, 1])])  # 1s keep X's dims
    assert e2.shape == (2, 1, 3)
