"""``deconv.py``: a transposed convolution with stride == kernel as a 1x1 convolution and a
DepthToSpace, compared with torch's ConvTranspose2d and, exported, run by onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from detectron2_export.export.onnx.deconv import DeconvAsConv, is_strided_deconv, replace_strided_deconvs

from .helpers import OnnxFunction, op_types


@pytest.mark.parametrize("kernel, bias", [(2, True), (3, False), (1, True)])
def test_same_as_conv_transpose(kernel, bias):
    torch.manual_seed(kernel)
    deconv = nn.ConvTranspose2d(6, 5, kernel, stride=kernel, bias=bias)
    x = torch.randn(3, 6, 7, 9)
    with torch.no_grad():
        torch.testing.assert_close(DeconvAsConv(deconv)(x), deconv(x), rtol=0, atol=1e-5)


def test_exported_as_conv_and_depth_to_space():
    torch.manual_seed(0)
    deconv = nn.ConvTranspose2d(4, 3, 2, stride=2)
    fn = OnnxFunction(DeconvAsConv(deconv), [torch.randn(2, 4, 5, 6)], ["x"], ["y"], {"x": {0: "n", 2: "h", 3: "w"}})
    assert op_types(fn.model) == ["Conv", "DepthToSpace"]
    x = torch.randn(3, 4, 8, 3)
    with torch.no_grad():
        np.testing.assert_allclose(fn(x)[0], deconv(x).numpy(), rtol=0, atol=1e-5)


def test_only_non_overlapping_deconvs_are_replaced():
    model = nn.Sequential(
        nn.ConvTranspose2d(4, 4, 2, stride=2),
        nn.ReLU(),
        nn.ConvTranspose2d(4, 4, 3, stride=2),
        nn.ConvTranspose2d(4, 4, 2, stride=2, padding=1),
        nn.ConvTranspose2d(4, 4, 2, stride=2, groups=2),
        nn.Sequential(nn.ConvTranspose2d(4, 4, (2, 1), stride=(2, 1)), nn.ConvTranspose2d(4, 2, 2, stride=2)),
    )
    assert [is_strided_deconv(m) for m in model] == [True, False, False, False, False, False]
    assert replace_strided_deconvs(model) == 2
    assert isinstance(model[0], DeconvAsConv) and isinstance(model[5][1], DeconvAsConv)
    assert all(isinstance(model[i], nn.ConvTranspose2d) for i in (2, 3, 4)) and isinstance(model[5][0], nn.ConvTranspose2d)
