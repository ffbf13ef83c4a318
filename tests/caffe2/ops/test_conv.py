import numpy as np
import pytest
import torch
import torch.nn.functional as F

from detectron2_export.errors import OperatorArgumentError, OperatorInputError
from tests.caffe2.helpers import run_single_op

G = torch.Generator().manual_seed(0)


def test_conv_hand_computed():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    w = torch.tensor([[[[1.0, 0.0], [0.0, -1.0]]]])  # x[i, j] - x[i+1, j+1] = -5 everywhere
    (y,) = run_single_op("Conv", [x, w, torch.tensor([0.5])], kernels=[2, 2])
    assert y.tolist() == [[[[-4.5] * 3] * 3]]


@pytest.mark.parametrize(
    "args, torch_kw",
    [
        ({"kernels": [3, 3], "pads": [1, 1, 1, 1]}, {"padding": 1}),
        ({"kernel": 3, "stride": 2, "pad": 1}, {"stride": 2, "padding": 1}),
        ({"kernel_h": 3, "kernel_w": 3, "stride_h": 1, "stride_w": 2}, {"stride": (1, 2)}),
        ({"kernels": [3, 3], "strides": [2, 1], "dilations": [2, 1], "pads": [2, 1, 2, 1]}, {"stride": (2, 1), "dilation": (2, 1), "padding": (2, 1)}),
        ({"dilation": 2}, {"dilation": 2}),  # kernel inferred from the filter, as Caffe2
    ],
)
def test_conv_matches_torch(args, torch_kw):
    x, w, b = torch.randn(2, 4, 9, 8, generator=G), torch.randn(6, 4, 3, 3, generator=G), torch.randn(6, generator=G)
    (y,) = run_single_op("Conv", [x, w, b], **args)
    torch.testing.assert_close(y, F.conv2d(x, w, b, **torch_kw), rtol=1e-5, atol=1e-5)


def test_conv_group_and_no_bias():
    x, w = torch.randn(1, 6, 5, 5, generator=G), torch.randn(4, 3, 1, 1, generator=G)
    (y,) = run_single_op("Conv", [x, w], kernels=[1, 1], group=2)
    torch.testing.assert_close(y, F.conv2d(x, w, groups=2))


def test_conv_asymmetric_pads_t_l_b_r():
    x, w = torch.randn(1, 2, 5, 6, generator=G), torch.randn(3, 2, 3, 3, generator=G)
    (y,) = run_single_op("Conv", [x, w], kernels=[3, 3], pads=[0, 1, 2, 3])  # t=0, l=1, b=2, r=3
    xp = torch.from_numpy(np.pad(x.numpy(), ((0, 0), (0, 0), (0, 2), (1, 3))))
    assert y.shape == (1, 3, 5, 8)  # H: 5 + 0 + 2 - 2, W: 6 + 1 + 3 - 2
    torch.testing.assert_close(y, F.conv2d(xp, w), rtol=1e-5, atol=1e-5)


def test_conv_1d_and_3d():
    x1, w1 = torch.randn(1, 2, 7, generator=G), torch.randn(3, 2, 3, generator=G)
    torch.testing.assert_close(run_single_op("Conv", [x1, w1], kernels=[3], pads=[1, 1])[0], F.conv1d(x1, w1, padding=1))
    x3, w3 = torch.randn(1, 2, 4, 4, 4, generator=G), torch.randn(3, 2, 2, 2, 2, generator=G)
    torch.testing.assert_close(run_single_op("Conv", [x3, w3], strides=[2, 2, 2])[0], F.conv3d(x3, w3, stride=2), rtol=1e-5, atol=1e-5)


def test_conv_bad_inputs():
    with pytest.raises(OperatorInputError, match=r"Conv: X shape=\(4, 4\), expected 3-D or 4-D or 5-D"):
        run_single_op("Conv", [torch.zeros(4, 4), torch.zeros(1, 1, 3, 3)])
    with pytest.raises(OperatorInputError, match=r"Conv: filter shape=\(1, 1, 3\), expected 4-D"):
        run_single_op("Conv", [torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 3)])
    with pytest.raises(OperatorInputError, match=r"Conv: filter shape=\(1, 1, 3, 3\), expected spatial dims \[2, 2\]"):
        run_single_op("Conv", [torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 3, 3)], kernels=[2, 2])
    with pytest.raises(OperatorInputError, match=r"expected X channels = filter dim 1 \* group"):
        run_single_op("Conv", [torch.zeros(1, 3, 4, 4), torch.zeros(1, 2, 3, 3)])
    with pytest.raises(OperatorInputError, match=r"Conv: bias shape=\(2,\), expected \(1,\)"):
        run_single_op("Conv", [torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 3, 3), torch.zeros(2)])


def test_conv_bad_arguments():
    x, w = torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 3, 3)
    with pytest.raises(OperatorArgumentError, match=r"Conv: pads=\[1, 1\], expected 4 values for a 2-D Conv"):
        run_single_op("Conv", [x, w], pads=[1, 1])
    with pytest.raises(OperatorArgumentError, match=r"Conv: \['pad', 'pads'\] all given, expected one spelling of pad"):
        run_single_op("Conv", [x, w], pad=1, pads=[1, 1, 1, 1])
    with pytest.raises(OperatorArgumentError, match=r"Conv: stride=0, expected an int >= 1"):
        run_single_op("Conv", [x, w], stride=0)
    with pytest.raises(OperatorArgumentError, match=r"Conv: order='NHWC', expected 'NCHW'"):
        run_single_op("Conv", [x, w], order="NHWC")
    with pytest.raises(OperatorArgumentError, match=r"expected all of \['kernel_h', 'kernel_w'\]"):
        run_single_op("Conv", [x, w], kernel_h=3)


def _naive_conv_transpose(x, w, stride, pads, adj):
    """Scatter each input pixel times the kernel, then crop (t, l) and keep H_out = (H-1)s - t - b + k + adj."""
    n, c, h, wd = x.shape
    _, m, kh, kw = w.shape
    t, l, b, r = pads
    full = torch.zeros(n, m, (h - 1) * stride[0] + kh + adj[0], (wd - 1) * stride[1] + kw + adj[1])
    for i in range(h):
        for j in range(wd):
            full[:, :, i * stride[0] : i * stride[0] + kh, j * stride[1] : j * stride[1] + kw] += torch.einsum("nc,cmhw->nmhw", x[:, :, i, j], w)
    return full[:, :, t : full.shape[2] - b, l : full.shape[3] - r]


@pytest.mark.parametrize(
    "stride, pads, adj", [((1, 1), (0, 0, 0, 0), (0, 0)), ((2, 2), (1, 1, 1, 1), (1, 1)), ((2, 3), (0, 1, 2, 1), (1, 0))]
)
def test_conv_transpose_matches_naive(stride, pads, adj):
    x, w, bias = torch.randn(2, 3, 4, 5, generator=G), torch.randn(3, 2, 3, 3, generator=G), torch.randn(2, generator=G)
    (y,) = run_single_op("ConvTranspose", [x, w, bias], kernels=[3, 3], strides=list(stride), pads=list(pads), adjs=list(adj))
    expected = _naive_conv_transpose(x, w, stride, pads, adj) + bias.reshape(1, -1, 1, 1)
    assert y.shape[2] == (4 - 1) * stride[0] - pads[0] - pads[2] + 3 + adj[0]
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)


def test_conv_transpose_matches_torch_symmetric():
    x, w = torch.randn(1, 4, 5, 5, generator=G), torch.randn(4, 2, 4, 4, generator=G)
    (y,) = run_single_op("ConvTranspose", [x, w], stride=2, pad=1, group=2)
    torch.testing.assert_close(y, F.conv_transpose2d(x, w, stride=2, padding=1, groups=2), rtol=1e-5, atol=1e-5)


def test_conv_transpose_bad_adj():
    with pytest.raises(OperatorInputError, match=r"ConvTranspose: adjs=\[2, 2\], expected each < its stride"):
        run_single_op("ConvTranspose", [torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 3, 3)], strides=[2, 2], adjs=[2, 2])
