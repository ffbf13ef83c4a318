import numpy as np
import pytest
import torch
import torch.nn.functional as F
from onnx import helper

from detectron2_export.errors import UnsupportedOnnxNodeError
from detectron2_export.export.onnx_to_caffe2 import onnx_graph_to_caffe2_net
from detectron2_export.export.onnx_to_caffe2.converters.upsample import bilinear_kernel_1d
from tests.export.onnx_to_caffe2.helpers import check_against_reference, make_model, op_types

X = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
EMPTY = np.zeros(0, np.float32)


def _resize(scales, opset=11, **attrs):
    node = helper.make_node("Resize", ["x", "roi", "scales"], ["y"], **attrs)
    return make_model(node, {"x": X}, ["y"], {"roi": EMPTY, "scales": np.array(scales, np.float32)}, opset=opset)


@pytest.mark.parametrize("scales", [[1, 1, 2, 2], [1, 1, 3, 2], [1, 1, 1.5, 0.5]])
def test_pytorch_nearest_is_resize_nearest(scales):
    model = _resize(scales, mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    net = check_against_reference(model, {"x": X})
    assert op_types(net) == ["ResizeNearest"]
    args = {a.name: a.f for a in net.op[0].arg if a.name.endswith("scale")}
    assert args == {"height_scale": scales[2], "width_scale": scales[3]}


def test_nearest_default_modes_with_integer_scales():
    check_against_reference(_resize([1, 1, 2, 3], mode="nearest"), {"x": X})


def test_nearest_from_sizes():
    node = helper.make_node(
        "Resize",
        ["x", "", "", "sizes"],
        ["y"],
        mode="nearest",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    )
    model = make_model(node, {"x": X}, ["y"], {"sizes": np.array([2, 3, 8, 15], np.int64)}, opset=13)
    check_against_reference(model, {"x": X})


def test_upsample_opset9_nearest():
    node = helper.make_node("Upsample", ["x", "scales"], ["y"], mode="nearest")
    model = make_model(node, {"x": X}, ["y"], {"scales": np.array([1, 1, 2, 2], np.float32)}, opset=9)
    assert op_types(check_against_reference(model, {"x": X})) == ["ResizeNearest"]


def test_upsample_with_runtime_scales_slices_them():
    node = helper.make_node("Upsample", ["x", "scales"], ["y"], mode="nearest")
    feeds = {"x": X, "scales": np.array([1, 1, 2, 3], np.float32)}
    model = make_model(node, feeds, ["y"], opset=9)
    net = check_against_reference(model, feeds)
    assert op_types(net) == ["Slice", "ResizeNearest"]


def test_align_corners_bilinear_is_upsample_bilinear():
    model = _resize([1, 1, 2, 2], mode="linear", coordinate_transformation_mode="align_corners")
    net = check_against_reference(model, {"x": X}, atol=1e-5)
    assert op_types(net) == ["UpsampleBilinear"]


def test_bilinear_kernel_weights():
    np.testing.assert_allclose(bilinear_kernel_1d(2), [0.25, 0.75, 0.75, 0.25])
    np.testing.assert_allclose(bilinear_kernel_1d(3), [1 / 3, 2 / 3, 1, 2 / 3, 1 / 3], rtol=1e-6)
    np.testing.assert_allclose(bilinear_kernel_1d(1), [1.0])


@pytest.mark.parametrize("mode", ["half_pixel", "pytorch_half_pixel"])
@pytest.mark.parametrize("scales", [(2, 2), (3, 2), (1, 4)])
def test_half_pixel_bilinear_is_exact(mode, scales):
    model = _resize([1, 1, *scales], mode="linear", coordinate_transformation_mode=mode)
    expected = F.interpolate(torch.from_numpy(X), scale_factor=scales, mode="bilinear", align_corners=False)
    net = check_against_reference(model, {"x": X}, atol=1e-5, expected=[expected.numpy()])
    assert "ConvTranspose" in op_types(net)
    check_against_reference(model, {"x": X}, atol=1e-5)  # the ONNX reference agrees too


def test_fractional_bilinear_is_refused():
    with pytest.raises(UnsupportedOnnxNodeError, match=r"linear resize with scales=\[1.5, 2.0\]"):
        onnx_graph_to_caffe2_net(_resize([1, 1, 1.5, 2], mode="linear"))


def test_cubic_is_refused():
    with pytest.raises(UnsupportedOnnxNodeError, match="mode='cubic'"):
        onnx_graph_to_caffe2_net(_resize([1, 1, 2, 2], mode="cubic"))
