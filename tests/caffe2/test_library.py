import importlib
import io

import onnx
import pytest
import torch
from torch import nn

from detectron2_export.caffe2 import library

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning", "ignore::UserWarning")

# SPEC section 5 (and upstream's C10 exports): names and order are the ONNX / Caffe2 argument names
SPEC_SCHEMAS = [
    "GenerateProposals(Tensor scores, Tensor bbox_deltas, Tensor im_info, Tensor anchors, float spatial_scale, "
    "int pre_nms_topN, int post_nms_topN, float nms_thresh, float min_size, bool angle_bound_on, int angle_bound_lo, "
    "int angle_bound_hi, float clip_angle_thresh, bool legacy_plus_one) -> (Tensor, Tensor)",
    "BBoxTransform(Tensor rois, Tensor deltas, Tensor im_info, float[] weights, bool apply_scale, bool rotated, "
    "bool angle_bound_on, int angle_bound_lo, int angle_bound_hi, float clip_angle_thresh, bool legacy_plus_one) "
    "-> (Tensor, Tensor)",
    "BoxWithNMSLimit(Tensor scores, Tensor boxes, Tensor batch_splits, float score_thresh, float nms, "
    "int detections_per_im, bool soft_nms_enabled, str soft_nms_method, float soft_nms_sigma, "
    "float soft_nms_min_score_thres, bool rotated, bool cls_agnostic_bbox_reg, bool input_boxes_include_bg_cls, "
    "bool output_classes_include_bg_cls, bool legacy_plus_one) -> (Tensor scores, Tensor boxes, Tensor classes, "
    "Tensor batch_splits, Tensor keeps, Tensor keeps_size)",
    "RoIAlign(Tensor features, Tensor rois, str order, float spatial_scale, int pooled_h, int pooled_w, "
    "int sampling_ratio, bool aligned) -> Tensor",
    "RoIAlignRotated(Tensor features, Tensor rois, str order, float spatial_scale, int pooled_h, int pooled_w, "
    "int sampling_ratio, bool aligned) -> Tensor",
    "CollectRpnProposals(Tensor[] input_list, int rpn_max_level, int rpn_min_level, int rpn_post_nms_topN) -> Tensor",
    "DistributeFpnProposals(Tensor rois, int roi_canonical_scale, int roi_canonical_level, int roi_max_level, "
    "int roi_min_level, bool legacy_plus_one) -> (Tensor rois_fpn2, Tensor rois_fpn3, Tensor rois_fpn4, "
    "Tensor rois_fpn5, Tensor rois_idx_restore_int32)",
    "CollectAndDistributeFpnRpnProposals(Tensor[] input_list, int roi_canonical_scale, int roi_canonical_level, "
    "int roi_max_level, int roi_min_level, int rpn_max_level, int rpn_min_level, int rpn_post_nms_topN, "
    "bool legacy_plus_one) -> (Tensor rois, Tensor rois_fpn2, Tensor rois_fpn3, Tensor rois_fpn4, Tensor rois_fpn5, "
    "Tensor rois_idx_restore_int32)",
    "BatchPermutation(Tensor X, Tensor indices) -> Tensor",
    "AliasWithName(Tensor input, str name, bool is_backward=False) -> Tensor",
    "HeatmapMaxKeypoint(Tensor heatmaps, Tensor bboxes_in, bool should_output_softmax=True) -> Tensor keypoints",
    "ResizeNearest(Tensor X, str order, float width_scale, float height_scale) -> Tensor",
    "CopyCPUToGPU(Tensor input) -> Tensor",
    "CopyGPUToCPU(Tensor input) -> Tensor",
]


@pytest.mark.parametrize("schema", SPEC_SCHEMAS, ids=lambda s: s.split("(")[0])
def test_schema_is_the_specs(schema):
    name = schema.split("(")[0]
    registered = getattr(torch.ops._caffe2, name).default._schema
    assert str(registered) == str(torch._C.parse_schema(f"_caffe2::{schema}"))
    for key in ("CPU", "CUDA", "Meta"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"_caffe2::{name}", key)


def test_reimport_is_idempotent():
    before = str(torch.ops._caffe2.RoIAlign.default._schema)
    importlib.reload(library)
    importlib.reload(library)
    assert str(torch.ops._caffe2.RoIAlign.default._schema) == before
    x = torch.arange(25.0).reshape(1, 1, 5, 5)
    y = torch.ops._caffe2.RoIAlign(x, torch.tensor([[0.0, 1, 1, 3, 3]]), "NCHW", 1.0, 2, 2, 1, True)
    torch.testing.assert_close(y, torch.tensor([[[[6.0, 7.0], [11.0, 12.0]]]]))


def test_device_copies_on_cpu():
    x = torch.rand(3)
    y = torch.ops._caffe2.CopyGPUToCPU(x)
    assert y.device.type == "cpu" and torch.equal(y, x) and y.data_ptr() != x.data_ptr()


def test_fake_tensors_give_shapes_and_dynamic_sizes():
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    with FakeTensorMode(shape_env=ShapeEnv()) as mode:
        scores, deltas = mode.from_tensor(torch.rand(1, 3, 4, 5)), mode.from_tensor(torch.rand(1, 12, 4, 5))
        im_info, anchors = mode.from_tensor(torch.ones(1, 3)), mode.from_tensor(torch.rand(3, 4))
        rois, probs = torch.ops._caffe2.GenerateProposals(scores, deltas, im_info, anchors, 0.25, 100, 10, 0.7, 0.0,
                                                          True, -90, 90, 1.0, False)
        assert isinstance(rois.shape[0], torch.SymInt) and rois.shape[1] == 5 and str(probs.shape[0]) == str(rois.shape[0])
        feats = mode.from_tensor(torch.rand(2, 8, 16, 16))
        pooled = torch.ops._caffe2.RoIAlign(feats, mode.from_tensor(torch.zeros(6, 5)), "NCHW", 0.25, 7, 7, 0, True)
        assert pooled.shape == (6, 8, 7, 7)


# ---------------------------------------------------------------------------------------------
# a small model of detectron2's Caffe2 box head, traced, scripted and exported to ONNX
# ---------------------------------------------------------------------------------------------


class TinyBoxHead(nn.Module):
    def forward(self, features, rois, deltas, logits, im_info):
        pooled = torch.ops._caffe2.RoIAlign(features, rois, order="NCHW", spatial_scale=0.25, pooled_h=2, pooled_w=2,
                                            sampling_ratio=0, aligned=True)
        boxes, splits = torch.ops._caffe2.BBoxTransform(
            rois, deltas, im_info, weights=[10.0, 10.0, 5.0, 5.0], apply_scale=True, rotated=False,
            angle_bound_on=True, angle_bound_lo=-180, angle_bound_hi=180, clip_angle_thresh=1.0, legacy_plus_one=False,
        )
        scores, det_boxes, classes, _, _, _ = torch.ops._caffe2.BoxWithNMSLimit(
            torch.softmax(logits, dim=1), boxes, splits, score_thresh=0.05, nms=0.5, detections_per_im=10,
            soft_nms_enabled=False, soft_nms_method="linear", soft_nms_sigma=0.5, soft_nms_min_score_thres=0.001,
            rotated=False, cls_agnostic_bbox_reg=False, input_boxes_include_bg_cls=False,
            output_classes_include_bg_cls=False, legacy_plus_one=False,
        )
        return torch.ops._caffe2.AliasWithName(det_boxes, "bbox_nms"), scores, classes, pooled


class TinyFpnPooler(nn.Module):
    def forward(self, rois_a, rois_b, probs_a, probs_b):
        rois = torch.ops._caffe2.CollectRpnProposals([rois_a, rois_b, probs_a, probs_b], rpn_max_level=3,
                                                     rpn_min_level=2, rpn_post_nms_topN=6)
        fpn2, fpn3, fpn4, fpn5, restore = torch.ops._caffe2.DistributeFpnProposals(
            rois, roi_canonical_scale=224, roi_canonical_level=4, roi_max_level=5, roi_min_level=2,
            legacy_plus_one=False,
        )
        return torch.ops._caffe2.BatchPermutation(torch.cat((fpn2, fpn3, fpn4, fpn5)), restore)


def box_head_inputs(num_rois, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(num_rois, 2, generator=g) * 40
    rois = torch.cat((torch.zeros(num_rois, 1), xy, xy + torch.rand(num_rois, 2, generator=g) * 20 + 4), dim=1)
    return (torch.rand(1, 3, 16, 16, generator=g), rois, torch.randn(num_rois, 8, generator=g),
            torch.randn(num_rois, 3, generator=g) * 3, torch.tensor([[64.0, 64.0, 1.0]]))


def fpn_inputs(seed):
    g = torch.Generator().manual_seed(seed)
    rois = []
    for _ in range(2):
        xy = torch.rand(5, 2, generator=g) * 100
        rois.append(torch.cat((torch.zeros(5, 1), xy, xy + torch.rand(5, 2, generator=g) * 400 + 1), dim=1))
    return rois[0], rois[1], torch.rand(5, generator=g), torch.rand(5, generator=g)


def assert_same(a, b):
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)


def caffe2_kinds(graph):
    return {n.kind() for n in graph.nodes() if n.kind().startswith("_caffe2::")}


def test_trace_records_caffe2_nodes_and_generalizes():
    model = TinyBoxHead()
    traced = torch.jit.trace(model, box_head_inputs(12, 0))
    assert caffe2_kinds(traced.graph) == {
        "_caffe2::RoIAlign", "_caffe2::BBoxTransform", "_caffe2::BoxWithNMSLimit", "_caffe2::AliasWithName"
    }
    # data-dependent sizes are not baked into the trace: another RoI count, other detections
    other = box_head_inputs(7, 1)
    assert_same(traced(*other), model(*other))
    fpn = torch.jit.trace(TinyFpnPooler(), fpn_inputs(0))
    assert caffe2_kinds(fpn.graph) == {
        "_caffe2::CollectRpnProposals", "_caffe2::DistributeFpnProposals", "_caffe2::BatchPermutation"
    }
    torch.testing.assert_close(fpn(*fpn_inputs(1)), TinyFpnPooler()(*fpn_inputs(1)))


def test_script_and_save_load(tmp_path):
    scripted = torch.jit.script(TinyBoxHead())
    assert caffe2_kinds(scripted.graph) >= {"_caffe2::BBoxTransform", "_caffe2::BoxWithNMSLimit"}
    scripted.save(str(tmp_path / "head.ts"))
    loaded = torch.jit.load(str(tmp_path / "head.ts"))
    inputs = box_head_inputs(9, 2)
    assert_same(loaded(*inputs), TinyBoxHead()(*inputs))


def export_onnx(model, inputs, **kwargs):
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, inputs, buffer, dynamo=False, **kwargs)
    return onnx.load_from_string(buffer.getvalue())


def attributes(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


@pytest.mark.parametrize(
    "kwargs",
    [dict(opset_version=9), dict(opset_version=17), dict(),
     dict(operator_export_type=torch.onnx.OperatorExportTypes.ONNX_ATEN_FALLBACK)],
    ids=["opset9", "opset17", "default", "aten_fallback"],
)
def test_onnx_export_custom_domain_nodes(kwargs):
    proto = export_onnx(TinyBoxHead(), box_head_inputs(12, 0), **kwargs)
    nodes = {n.op_type: n for n in proto.graph.node if n.domain == library.ONNX_DOMAIN}
    assert library.ONNX_DOMAIN == "org.pytorch._caffe2"
    assert set(nodes) == {"RoIAlign", "BBoxTransform", "BoxWithNMSLimit", "AliasWithName"}
    assert any(o.domain == library.ONNX_DOMAIN for o in proto.opset_import)

    bbox = nodes["BBoxTransform"]
    assert len(bbox.input) == 3 and len(bbox.output) == 2
    attrs = attributes(bbox)
    assert list(attrs) == ["weights", "apply_scale", "rotated", "angle_bound_on", "angle_bound_lo", "angle_bound_hi",
                           "clip_angle_thresh", "legacy_plus_one"]
    assert attrs["weights"] == [10.0, 10.0, 5.0, 5.0]  # FLOATS
    assert (attrs["apply_scale"], attrs["legacy_plus_one"], attrs["angle_bound_lo"]) == (1, 0, -180)  # INTs
    assert attrs["clip_angle_thresh"] == pytest.approx(1.0)

    nms = attributes(nodes["BoxWithNMSLimit"])
    assert nms["soft_nms_method"] == b"linear" and nms["detections_per_im"] == 10
    assert nms["input_boxes_include_bg_cls"] == 0 and nms["nms"] == pytest.approx(0.5)
    assert len(nodes["BoxWithNMSLimit"].output) == 6
    assert attributes(nodes["AliasWithName"]) == {"name": b"bbox_nms", "is_backward": 0}
    roi = attributes(nodes["RoIAlign"])
    assert roi["order"] == b"NCHW" and (roi["pooled_h"], roi["sampling_ratio"], roi["aligned"]) == (2, 0, 1)


def test_onnx_export_expands_tensor_lists():
    proto = export_onnx(TinyFpnPooler(), fpn_inputs(0))
    nodes = {n.op_type: n for n in proto.graph.node if n.domain == library.ONNX_DOMAIN}
    assert set(nodes) == {"CollectRpnProposals", "DistributeFpnProposals", "BatchPermutation"}
    collect = nodes["CollectRpnProposals"]
    assert len(collect.input) == 4  # the Tensor[] argument: rois of each level, then their scores
    assert attributes(collect) == {"rpn_max_level": 3, "rpn_min_level": 2, "rpn_post_nms_topN": 6}
    assert len(nodes["DistributeFpnProposals"].output) == 5
