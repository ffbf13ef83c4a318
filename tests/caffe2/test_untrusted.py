"""Issue 15's hand-made cases: each malformed op input, model file or image gets the project's error
naming what was wrong (never a crash, an out-of-bounds read, an unbounded allocation or a bare
RuntimeError/AssertionError/KeyError)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

from detectron2_export.caffe2.ops.box_utils import caffe2_torch_ops
from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.caffe2.serialization import load_net, save_net
from detectron2_export.caffe2.validate import validate_model
from detectron2_export.caffe2.workspace import Workspace
from detectron2_export.errors import (
    Detectron2ExportError,
    OperatorArgumentError,
    OperatorInputError,
    ProtobufError,
)
from detectron2_export.export import Caffe2Model
from tests.caffe2.helpers import make_op, run_single_op

FEATURES = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6)


# --- RoIAlign / RoIAlignRotated: checked before torchvision's kernel, which checks nothing ----------


@pytest.mark.parametrize("op_type, box", [("RoIAlign", [0.0, 0.0, 4.0, 4.0]), ("RoIAlignRotated", [2.0, 2.0, 4.0, 4.0, 0.0])])
@pytest.mark.parametrize("index", [1e6, 2.0, -1.0, float("nan")])
def test_roi_batch_index_outside_the_batch(op_type, box, index):
    # 1e6 segfaulted torchvision's CPU kernel; 2 (== batch size) read past the features; -1 wrapped around
    rois = torch.tensor([[0.0, *box], [index, *box]])
    with pytest.raises(OperatorInputError, match=rf"{op_type}: rois\[1\] batch index={index}, expected in \[0, 1\]"):
        run_single_op(op_type, [FEATURES, rois], pooled_h=2, pooled_w=2, sampling_ratio=2)


def test_fractional_batch_index_truncates_as_caffe2():
    rois = torch.tensor([[1.7, 0.0, 0.0, 4.0, 4.0]])
    (y,) = run_single_op("RoIAlign", [FEATURES, rois], pooled_h=2, pooled_w=2, sampling_ratio=2)
    expected = torchvision.ops.roi_align(FEATURES, torch.tensor([[1.0, 0.0, 0.0, 4.0, 4.0]]), (2, 2), 1.0, 2, False)
    torch.testing.assert_close(y, expected, rtol=0, atol=0)


def test_non_finite_roi():
    rois = torch.tensor([[0.0, 0.0, 0.0, float("inf"), 4.0]])
    with pytest.raises(OperatorInputError, match=r"RoIAlign: rois\[0\]=\[0.0, 0.0, 0.0, inf, 4.0\], expected finite values"):
        run_single_op("RoIAlign", [FEATURES, rois], pooled_h=2, pooled_w=2)


def test_huge_roi_with_adaptive_sampling_is_refused_not_run_for_hours():
    rois = torch.tensor([[0.0, 0.0, 0.0, 1e12, 1e12]])
    with pytest.raises(OperatorInputError, match=r"RoIAlign: 1 RoIs of up to 1e\+12 x 1e\+12 feature pixels with sampling_ratio=-1 need .* bilinear samples, expected at most 68719476736"):
        run_single_op("RoIAlign", [FEATURES, rois], pooled_h=7, pooled_w=7, sampling_ratio=-1)
    # a fixed grid bounds the work: the same RoI samples (zeros) quickly
    (y,) = run_single_op("RoIAlign", [FEATURES, rois], pooled_h=7, pooled_w=7, sampling_ratio=2)
    assert y.shape == (1, 3, 7, 7)


def test_huge_pooled_size_is_refused_before_allocation():
    rois = torch.tensor([[0.0, 0.0, 0.0, 4.0, 4.0]])
    with pytest.raises(OperatorArgumentError, match=r"RoIAlign: output shape=\(1, 3, 1048576, 1048576\) torch.float32 needs 13194139533312 bytes"):
        run_single_op("RoIAlign", [FEATURES, rois], pooled_h=1 << 20, pooled_w=1 << 20, sampling_ratio=1)


@pytest.mark.parametrize("args,what", [
    ({"pads": [1 << 17] * 4}, r"output shape=\(1, 4, 262150, 262150\)"),  # 6 + 2 * 2^17; fuzz case 6094
    ({"pads": [0, 0, 1 << 17, 1 << 17]}, r"padded X shape=\(1, 3, 131078, 131078\)"),  # asymmetric: F.pad first
])
def test_conv_pads_that_need_too_much_memory_are_refused(args, what):
    x, w = torch.zeros(1, 3, 6, 6), torch.zeros(4, 3, 1, 1)
    with pytest.raises(OperatorArgumentError, match=f"Conv: {what} torch.float32 needs"):
        run_single_op("Conv", [x, w], **args)
    assert run_single_op("Conv", [x, w], pads=[2, 2, 2, 2])[0].shape == (1, 4, 10, 10)


def test_torch_ops_dispatch_keeps_the_project_error_type():
    rois = torch.tensor([[5.0, 0.0, 0.0, 4.0, 4.0]])
    with pytest.raises(OperatorInputError, match="batch index=5.0"):
        caffe2_torch_ops().RoIAlign(FEATURES, rois, "NCHW", 1.0, 2, 2, 2, False)


# --- index and size checks of other ops --------------------------------------------------------------


def test_batch_permutation_indices():
    x = torch.arange(6.0).reshape(3, 2)
    with pytest.raises(OperatorInputError, match=r"BatchPermutation: indices in \[0, 3\], expected in \[0, 2\]"):
        run_single_op("BatchPermutation", [x, torch.tensor([0, 1, 3], dtype=torch.int32)])
    with pytest.raises(OperatorInputError, match=r"BatchPermutation: indices in \[-1, 1\], expected in \[0, 2\]"):
        run_single_op("BatchPermutation", [x, torch.tensor([-1, 0, 1], dtype=torch.int32)])
    with pytest.raises(OperatorInputError, match=r"BatchPermutation: indices dtype=torch.float32, expected an integer type"):
        run_single_op("BatchPermutation", [x, torch.tensor([0.0, 1.0, 2.0])])


@pytest.mark.parametrize(
    "op_type, inputs, args, message",
    [
        ("ResizeNearest", [torch.zeros(1, 1, 4, 4)], {"width_scale": 1e9, "height_scale": 1e9},
         r"ResizeNearest: output shape=\(1, 1, 4000000000, 4000000000\)"),
        ("UpsampleNearest", [torch.zeros(1, 1, 4, 4)], {"scale": 1 << 20}, r"UpsampleNearest: output shape=\(1, 1, 4194304, 4194304\)"),
        ("UpsampleBilinear", [torch.zeros(1, 1, 4, 4)], {"width_scale": 1e9, "height_scale": 1e9}, r"UpsampleBilinear: output shape"),
        ("PadImage", [torch.zeros(1, 1, 4, 4)], {"pads": [1 << 20] * 4}, r"PadImage: output shape=\(1, 1, 2097156, 2097156\)"),
        ("NumpyTile", [torch.zeros(4, 4), torch.tensor([1 << 20, 1 << 20])], {}, r"NumpyTile: output shape=\(4194304, 4194304\)"),
        ("ConstantFill", [], {"shape": [1 << 40]}, r"ConstantFill: output shape=\(1099511627776,\) torch.float32"),
        ("ConstantFill", [torch.tensor([1 << 40])], {"input_as_shape": 1}, r"ConstantFill: output shape=\(1099511627776,\)"),
    ],
)
def test_sizes_from_arguments_are_bounded(op_type, inputs, args, message):
    with pytest.raises(OperatorArgumentError, match=message + r".* bytes, expected at most"):
        run_single_op(op_type, inputs, **args)


def test_roi_with_a_huge_batch_index_in_a_net_file(tmp_path):
    """The issue's crash, from files: a constant RoI whose batch index is 10^6 feeds RoIAlign."""
    predict = caffe2_pb2.NetDef(
        name="roi_net",
        op=[
            make_op("GivenTensorFill", [], ["rois"], values=np.array([[1e6, 0, 0, 4, 4]], np.float32), shape=[1, 5]),
            make_op("RoIAlign", ["data", "rois"], ["pooled"], pooled_h=2, pooled_w=2, sampling_ratio=2),
        ],
        external_input=["data"],
        external_output=["pooled"],
    )
    save_net(predict, tmp_path / "model.pb")
    ws = Workspace("roi_net")
    ws.FeedBlob("data", FEATURES)
    with pytest.raises(OperatorInputError, match=r"op #1 'RoIAlign' .*rois\[0\] batch index=1000000.0"):
        ws.RunNetOnce(load_net(tmp_path / "model.pb"))


# --- the shapes Mask R-CNN through Caffe2Model -------------------------------------------------------


@pytest.fixture(scope="module")
def shapes_export(tmp_path_factory):
    from tests.cpp.shapes_model import export_shapes_mask_rcnn

    out = tmp_path_factory.mktemp("shapes_caffe2")
    export_shapes_mask_rcnn(out)
    return out, load_net(out / "model.pb"), load_net(out / "model_init.pb")


@pytest.fixture(scope="module")
def image():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (3, 96, 128), dtype=torch.uint8, generator=g)


def _save(tmp_path, predict, init):
    save_net(predict, tmp_path / "model.pb")
    save_net(init, tmp_path / "model_init.pb")
    return str(tmp_path)


def _with_arg(net: caffe2_pb2.NetDef, name: str, field: str | None, value=None) -> caffe2_pb2.NetDef:
    """A copy of ``net`` whose NetDef argument ``name`` holds ``value`` in ``field`` (removed if None)."""
    net = caffe2_pb2.NetDef.FromString(net.SerializeToString())
    kept = [a for a in net.arg if a.name != name]
    del net.arg[:]
    net.arg.extend(kept)
    if field is not None:
        arg = net.arg.add(name=name)
        getattr(arg, field).extend(value) if isinstance(value, list) else setattr(arg, field, value)
    return net


def test_exported_and_upstream_style_files_validate_and_run(shapes_export, image, tmp_path):
    out, predict, init = shapes_export
    assert validate_model(predict, init).pad_value is not None
    (result,) = Caffe2Model.load_protobuf(str(out))([{"image": image}])
    upstream = _with_arg(predict, "pad_value", None)  # upstream files store no pad_value
    assert validate_model(upstream, init).pad_value is None
    (upstream_result,) = Caffe2Model.load_protobuf(_save(tmp_path, upstream, init))([{"image": image}])
    assert result["instances"].image_size == upstream_result["instances"].image_size == (96, 128)


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda im: im[:1], r"shape=\(1, 96, 128\), expected 3 channels first"),
        (lambda im: torch.cat([im, im[:1]]), r"shape=\(4, 96, 128\), expected 3 channels first"),
        (lambda im: im.permute(1, 2, 0), r"shape=\(96, 128, 3\), expected 3 channels first \(C, H, W\) \(HWC layout"),
        (lambda im: im[0], r"shape=\(96, 128\), expected 3-D \(C, H, W\)"),
        (lambda im: im[:, :0, :0], r"shape=\(3, 0, 0\), expected a non-empty image"),
        (lambda im: im.numpy(), r"is a ndarray, expected a torch.Tensor"),
        (lambda im: im.bool(), r"dtype=torch.bool, expected a real"),
    ],
)
def test_bad_images_name_the_input(shapes_export, image, bad, message):
    model = Caffe2Model.load_protobuf(str(shapes_export[0]))
    with pytest.raises(OperatorInputError, match=r"batched_inputs\[0\]\['image'\]( |.*)" + message):
        model([{"image": bad(image)}])


@pytest.mark.parametrize(
    "name, field, value, message",
    [
        ("device", "s", b"CPU", r"argument 'device'='CPU', expected 'cpu', 'cuda' or 'cuda:<index>'"),
        ("device", "s", b"\xff\xfe", r"argument 'device'=b'\\xff\\xfe', expected a UTF-8 string"),
        ("pad_value", "floats", [1.0, 2.0], r"argument 'pad_value'=\[1.0, 2.0\], expected 1 or 3 finite floats"),
        ("size_divisibility", "i", 2**31 - 1, r"argument 'size_divisibility'=2147483647, expected in \[0, 4096\]"),
        ("meta_architecture", "s", b"\xc3\x28", r"argument 'meta_architecture'=b'\\xc3\(', expected a UTF-8 string"),
        ("meta_architecture", "s", b"PanopticFPN", r"argument 'combine_on' missing"),
    ],
)
def test_bad_meta_arguments_in_the_file(shapes_export, image, tmp_path, name, field, value, message):
    _, predict, init = shapes_export
    model = Caffe2Model.load_protobuf(_save(tmp_path, _with_arg(predict, name, field, value), init))
    with pytest.raises(ProtobufError, match=r"predict net '.*': " + message):
        model([{"image": image}])


def test_missing_output_blob(shapes_export, image, tmp_path):
    _, predict, init = shapes_export
    predict = caffe2_pb2.NetDef.FromString(predict.SerializeToString())
    predict.external_output.remove("bbox_nms")
    model = Caffe2Model.load_protobuf(_save(tmp_path, predict, init))
    with pytest.raises(ProtobufError, match=r"lack \['bbox_nms'\], which meta_architecture 'GeneralizedRCNN' needs"):
        model([{"image": image}])


def test_huge_fill_in_init_net_is_refused_before_allocation(shapes_export, image, tmp_path):
    _, predict, init = shapes_export
    init = caffe2_pb2.NetDef.FromString(init.SerializeToString())
    init.op.append(make_op("ConstantFill", [], ["huge"], shape=[1 << 20, 1 << 20, 1 << 10]))
    model = Caffe2Model.load_protobuf(_save(tmp_path, predict, init))
    with pytest.raises(OperatorArgumentError, match=r"init net: .*'ConstantFill' .*output \['huge'\] shape=\(1048576, 1048576, 1024\)"):
        model([{"image": image}])


def test_failure_while_running_keeps_the_op_error_type(shapes_export, image, tmp_path):
    """A weight whose shape passes loading but not the convolution: the op's OperatorInputError comes
    out of Caffe2Model (it came out as a bare RuntimeError about the missing output)."""
    _, predict, init = shapes_export
    init = caffe2_pb2.NetDef.FromString(init.SerializeToString())
    conv_weight = next(op for op in init.op if len([a for a in op.arg if a.name == "shape"][0].ints) == 4)
    shape = [a for a in conv_weight.arg if a.name == "shape"][0]
    shape.ints[:] = [shape.ints[1], shape.ints[0], shape.ints[2], shape.ints[3]]  # same count, channels swapped
    if shape.ints[0] == shape.ints[1]:
        pytest.skip("square filter: swapping its channels keeps the shape")
    model = Caffe2Model.load_protobuf(_save(tmp_path, predict, init))
    with pytest.raises(Detectron2ExportError) as info:
        model([{"image": image}])
    assert not type(info.value) is RuntimeError
    assert f"{conv_weight.output[0]}" in str(info.value) or "Conv" in str(info.value)


@pytest.mark.parametrize("index", [-1.0, 1.0, float("nan")])
def test_bbox_transform_roi_batch_index_is_a_row_of_im_info(index):
    rois = torch.tensor([[0.0, 0.0, 0.0, 4.0, 4.0], [index, 1.0, 1.0, 5.0, 5.0]])
    deltas, im_info = torch.zeros(2, 4), torch.tensor([[10.0, 10.0, 1.0]])
    with pytest.raises(OperatorInputError, match=r"BBoxTransform: roi batch indices in .*, expected in \[0, 0\] \(rows of im_info\)"):
        run_single_op("BBoxTransform", [rois, deltas, im_info], weights=[1.0, 1.0, 1.0, 1.0])


def test_distribute_fpn_proposals_level_count_is_bounded():
    # roi_max_level 2**62 looped over 2**62 levels, each with an output list entry (memory blow-up)
    rois = torch.tensor([[0.0, 0.0, 0.0, 32.0, 32.0]])
    with pytest.raises(OperatorArgumentError, match=r"DistributeFpnProposals: roi_max_level=4611686018427387904, expected in \[roi_min_level=2, roi_min_level \+ 15\]"):
        run_single_op("DistributeFpnProposals", [rois], num_outputs=5, roi_max_level=2**62, roi_min_level=2)
