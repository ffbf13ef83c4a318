import pytest
import torch

from detectron2_export.errors import OperatorInputError
from tests.caffe2.helpers import run_single_op

G = torch.Generator().manual_seed(0)


def test_fc_hand_computed():
    x = torch.tensor([[1.0, 2.0]])
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # (N=3, K=2)
    b = torch.tensor([0.5, 0.0, -1.0])
    assert run_single_op("FC", [x, w, b])[0].tolist() == [[1.5, 2.0, 2.0]]
    assert run_single_op("FCTransposed", [x, w.t().contiguous(), b])[0].tolist() == [[1.5, 2.0, 2.0]]


def test_fc_flattens_at_axis():
    x = torch.randn(2, 3, 4, 5, generator=G)
    w, b = torch.randn(7, 60, generator=G), torch.randn(7, generator=G)
    (y,) = run_single_op("FC", [x, w, b])  # X as (2, 60), the C4/box-head case
    torch.testing.assert_close(y, x.reshape(2, 60) @ w.t() + b)
    w2 = torch.randn(7, 20, generator=G)
    (z,) = run_single_op("FC", [x, w2, b], axis=2)  # X as (6, 20), output (2, 3, 7)
    torch.testing.assert_close(z, (x.reshape(6, 20) @ w2.t() + b).reshape(2, 3, 7))
    w4 = w.reshape(7, 3, 4, 5)
    (u,) = run_single_op("FC", [x, w4, b], axis_w=1)  # W viewed as (7, 60)
    torch.testing.assert_close(u, y)


def test_fc_wrong_shapes():
    with pytest.raises(OperatorInputError, match=r"FC: X shape=\(2, 5\) gives K=5 at axis 1, W shape=\(3, 4\) expects K=4"):
        run_single_op("FC", [torch.zeros(2, 5), torch.zeros(3, 4), torch.zeros(3)])
    with pytest.raises(OperatorInputError, match=r"FC: b shape=\(2,\), expected \(3,\)"):
        run_single_op("FC", [torch.zeros(2, 4), torch.zeros(3, 4), torch.zeros(2)])
    with pytest.raises(OperatorInputError, match=r"FC: axis=3, expected in \[-3, 2\] for a 2-D input"):
        run_single_op("FC", [torch.zeros(2, 4), torch.zeros(3, 4), torch.zeros(3)], axis=3)


def test_matmul():
    a, b = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[5.0], [6.0]])
    assert run_single_op("MatMul", [a, b])[0].tolist() == [[17.0], [39.0]]
    assert run_single_op("MatMul", [a, a], trans_a=1)[0].tolist() == [[10.0, 14.0], [14.0, 20.0]]
    assert run_single_op("MatMul", [a, b.t().contiguous()], trans_b=1)[0].tolist() == [[17.0], [39.0]]
    x = torch.randn(2, 3, 4, generator=G)
    torch.testing.assert_close(run_single_op("MatMul", [x, torch.eye(4)], axis_a=2)[0], x.reshape(6, 4))
    with pytest.raises(OperatorInputError, match=r"MatMul: A shape=\(2, 2\), B shape=\(3, 1\): inner dims 2 != 3"):
        run_single_op("MatMul", [a, torch.zeros(3, 1)])


def test_batch_matmul():
    a, b = torch.randn(3, 2, 4, generator=G), torch.randn(3, 4, 5, generator=G)
    torch.testing.assert_close(run_single_op("BatchMatMul", [a, b])[0], torch.bmm(a, b))
    torch.testing.assert_close(run_single_op("BatchMatMul", [a.transpose(1, 2), b], trans_a=1)[0], torch.bmm(a, b))
    v = torch.randn(4, generator=G)
    torch.testing.assert_close(run_single_op("BatchMatMul", [a, v], broadcast=1)[0], a @ v)
    with pytest.raises(OperatorInputError, match=r"BatchMatMul: A shape=\(3, 2, 4\), B shape=\(4,\), expected equal batch dims"):
        run_single_op("BatchMatMul", [a, v])
