import pytest
import torch
import torch.nn.functional as F

from detectron2_export.errors import OperatorArgumentError, OperatorInputError
from tests.caffe2.helpers import run_single_op

G = torch.Generator().manual_seed(0)


def test_spatial_bn_hand_computed():
    x = torch.tensor([[[[1.0, 3.0]], [[10.0, 20.0]]]])  # (1, 2, 1, 2)
    scale, bias = torch.tensor([2.0, 1.0]), torch.tensor([0.0, 1.0])
    mean, var = torch.tensor([1.0, 10.0]), torch.tensor([4.0, 100.0])
    (y,) = run_single_op("SpatialBN", [x, scale, bias, mean, var], is_test=1, epsilon=0.0)
    assert y.tolist() == [[[[0.0, 2.0]], [[1.0, 2.0]]]]  # 2 * (x - 1) / 2, (x - 10) / 10 + 1


def test_spatial_bn_matches_torch_with_epsilon():
    x = torch.randn(2, 3, 4, 5, generator=G)
    params = [torch.randn(3, generator=G), torch.randn(3, generator=G), torch.randn(3, generator=G), torch.rand(3, generator=G) + 0.1]
    (y,) = run_single_op("SpatialBN", [x, *params], is_test=1, epsilon=1e-3, momentum=0.9)
    expected = F.batch_norm(x, params[2], params[3], params[0], params[1], training=False, eps=1e-3)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)


def test_spatial_bn_errors():
    x = torch.zeros(1, 2, 2, 2)
    ones = torch.ones(2)
    with pytest.raises(OperatorArgumentError, match=r"SpatialBN: is_test=False, expected 1 \(inference only\)"):
        run_single_op("SpatialBN", [x, ones, ones, ones, ones])
    with pytest.raises(OperatorInputError, match=r"SpatialBN: var shape=\(3,\), expected \(2,\) for X shape=\(1, 2, 2, 2\)"):
        run_single_op("SpatialBN", [x, ones, ones, ones, torch.ones(3)], is_test=1)


def test_affine_channel():
    x = torch.tensor([[[[1.0]], [[2.0]]]])
    (y,) = run_single_op("AffineChannel", [x, torch.tensor([3.0, -1.0]), torch.tensor([0.5, 1.0])])
    assert y.tolist() == [[[[3.5]], [[-1.0]]]]
    x5 = torch.randn(2, 3, 4, generator=G)  # any rank >= 2, channels on dim 1
    s, b = torch.randn(3, generator=G), torch.randn(3, generator=G)
    torch.testing.assert_close(run_single_op("AffineChannel", [x5, s, b])[0], x5 * s[:, None] + b[:, None])


def test_group_norm_hand_computed_with_stats():
    x = torch.tensor([[[[0.0, 2.0]], [[4.0, 6.0]], [[1.0, 1.0]], [[1.0, 1.0]]]])  # (1, 4, 1, 2), 2 groups
    gamma, beta = torch.ones(4), torch.tensor([0.0, 0.0, 5.0, 5.0])
    y, mean, inv_std = run_single_op("GroupNorm", [x, gamma, beta], group=2, epsilon=1e-12)
    assert mean.shape == (1, 2) and mean.tolist() == [[3.0, 1.0]]
    # group 0 values 0, 2, 4, 6: biased variance 5
    torch.testing.assert_close(inv_std[0, 0], torch.tensor(5.0**-0.5))
    torch.testing.assert_close(y[0, :2].reshape(-1), torch.tensor([-3.0, -1.0, 1.0, 3.0]) / 5.0**0.5)
    torch.testing.assert_close(y[0, 2:].reshape(-1), torch.full((4,), 5.0))


def test_group_norm_matches_torch():
    x = torch.randn(2, 8, 3, 3, generator=G)
    gamma, beta = torch.randn(8, generator=G), torch.randn(8, generator=G)
    (y, _, _) = run_single_op("GroupNorm", [x, gamma, beta], group=4)
    torch.testing.assert_close(y, F.group_norm(x, 4, gamma, beta, eps=1e-5), rtol=1e-5, atol=1e-5)
    (only_y,) = run_single_op("GroupNorm", [x, gamma, beta], num_outputs=1, group=4)
    torch.testing.assert_close(only_y, y)
    with pytest.raises(OperatorArgumentError, match=r"GroupNorm: group=3, expected a divisor of the 8 channels"):
        run_single_op("GroupNorm", [x, gamma, beta], group=3)
