"""Untrusted model files, op by op (issue 15): every index a C++ kernel dereferences is checked against
the actual tensor sizes, and every size a file's arguments decide is bounded before allocation, so a
malformed net gets the runtime's error naming the op and what was expected instead of an
out-of-bounds read, a crash or an unbounded allocation. In-range indices at the edge still run and
equal the Python runtime."""

from __future__ import annotations

import numpy as np
import pytest

from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.caffe2.workspace import Workspace
from tests.caffe2.helpers import make_op

from .cpp_runner import Case, run_batch, run_tool

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cpp")]

HUGE = 1 << 20  # per dim: any two of these make 2^40 elements, far beyond the 2^28 ceiling


def _net(op: caffe2_pb2.OperatorDef, inputs: list[str]) -> caffe2_pb2.NetDef:
    return caffe2_pb2.NetDef(name="untrusted", op=[op], external_input=inputs, external_output=list(op.output))


def _features(n: int) -> np.ndarray:
    return np.arange(n * 2 * 4 * 4, dtype=np.float32).reshape(n, 2, 4, 4)


def _rois(*rows: list[float]) -> np.ndarray:
    return np.array(rows, np.float32)


def _roi_align(**args) -> caffe2_pb2.NetDef:
    return _net(make_op("RoIAlign", ["x", "r"], ["y"], pooled_h=2, pooled_w=2, **args), ["x", "r"])


def _nms_inputs() -> list[np.ndarray]:
    scores = np.array([[0.1, 0.9], [0.2, 0.8]], np.float32)
    boxes = np.tile(np.array([0, 0, 4, 4, 0, 0, 4, 4], np.float32), (2, 1))
    return [scores, boxes]


# (name, net, inputs, error class name, fragments of the message)
ERROR_CASES = [
    ("roi_batch_one_past", _roi_align(), [_features(1), _rois([1, 0, 0, 2, 2])], "OperatorInputError",
     ["op #0 'RoIAlign'", "rois batch index=1 at position 0, expected an index in [0, 1)"]),
    ("roi_batch_huge", _roi_align(), [_features(2), _rois([0, 0, 0, 2, 2], [1e6, 0, 0, 2, 2])], "OperatorInputError",
     ["rois batch index=1000000 at position 1, expected an index in [0, 2)"]),
    ("roi_batch_negative", _roi_align(), [_features(1), _rois([-1, 0, 0, 2, 2])], "OperatorInputError",
     ["rois batch index=-1 at position 0"]),
    ("roi_batch_nan", _roi_align(), [_features(1), _rois([np.nan, 0, 0, 2, 2])], "OperatorInputError",
     ["rois batch index=nan"]),
    ("roi_coordinates_inf", _roi_align(), [_features(1), _rois([0, 0, 0, np.inf, 2])], "OperatorInputError",
     ["RoIAlign: rois contain NaN or infinite coordinates"]),
    ("roi_huge_box", _roi_align(), [_features(1), _rois([0, 0, 0, 1e30, 1e30])], "OperatorInputError",
     ["RoIAlign: roi 0 needs a", "expected at most 4194304 samples per roi"]),
    ("roi_sampling_ratio", _roi_align(sampling_ratio=1 << 30), [_features(1), _rois([0, 0, 0, 2, 2])],
     "OperatorInputError", ["samples per roi"]),
    ("roi_output_size", _net(make_op("RoIAlign", ["x", "r"], ["y"], pooled_h=HUGE, pooled_w=HUGE), ["x", "r"]),
     [_features(1), _rois([0, 0, 0, 2, 2])], "OperatorInputError",
     ["RoIAlign: output shape=(1, 2, 1048576, 1048576) would have more than 268435456 elements"]),
    ("rotated_batch", _net(make_op("RoIAlignRotated", ["x", "r"], ["y"], pooled_h=2, pooled_w=2), ["x", "r"]),
     [_features(1), _rois([3, 2, 2, 2, 2, 30])], "OperatorInputError",
     ["op #0 'RoIAlignRotated'", "rois batch index=3 at position 0, expected an index in [0, 1)"]),
    ("batch_permutation", _net(make_op("BatchPermutation", ["x", "i"], ["y"]), ["x", "i"]),
     [_features(2), np.array([0, 2], np.int32)], "OperatorInputError",
     ["BatchPermutation: indices=2 at position 1, expected an index in [0, 2)"]),
    ("batch_permutation_negative", _net(make_op("BatchPermutation", ["x", "i"], ["y"]), ["x", "i"]),
     [_features(2), np.array([-5, 0], np.int64)], "OperatorInputError", ["BatchPermutation: indices=-5"]),
    ("bbox_transform_batch", _net(make_op("BBoxTransform", ["r", "d", "im"], ["b", "s"]), ["r", "d", "im"]),
     [_rois([-1, 0, 0, 4, 4]), np.zeros((1, 4), np.float32), np.array([[8, 8, 1]], np.float32)],
     "OperatorInputError", ["BBoxTransform: rois batch index=-1 at position 0, expected an index in [0, 1)"]),
    ("nms_splits_negative",
     _net(make_op("BoxWithNMSLimit", ["s", "b", "n"], ["os", "ob", "oc"]), ["s", "b", "n"]),
     [*_nms_inputs(), np.array([-1, 3], np.float32)], "OperatorInputError",
     ["BoxWithNMSLimit: batch_splits[0]=-1", "expected a count in [0, 2]"]),
    ("nms_splits_nan",
     _net(make_op("BoxWithNMSLimit", ["s", "b", "n"], ["os", "ob", "oc"]), ["s", "b", "n"]),
     [*_nms_inputs(), np.array([np.nan], np.float32)], "OperatorInputError", ["batch_splits[0]=nan"]),
    ("fill_shape_overflow", _net(make_op("GivenTensorFill", [], ["y"], values=[1.0], shape=[1 << 32, 1 << 32]), []),
     [], "OperatorInputError", ["GivenTensorFill: output shape=(4294967296, 4294967296) would have more than"]),
    ("fill_count", _net(make_op("GivenTensorFill", [], ["y"], values=[1.0, 2.0], shape=[3]), []), [],
     "OperatorArgumentError", ["GivenTensorFill: values has 2 elements, expected 3"]),
    ("constant_fill_huge", _net(make_op("ConstantFill", [], ["y"], shape=[HUGE, HUGE], value=1.0), []), [],
     "OperatorInputError", ["ConstantFill: output shape=(1048576, 1048576) would have more than"]),
    ("resize_scale", _net(make_op("ResizeNearest", ["x"], ["y"], width_scale=1e9, height_scale=1e9), ["x"]),
     [_features(1)], "OperatorInputError", ["ResizeNearest: output shape=", "would have more than"]),
    ("upsample_scale", _net(make_op("UpsampleNearest", ["x"], ["y"], scale=HUGE), ["x"]), [_features(1)],
     "OperatorInputError", ["UpsampleNearest: output shape=(1, 2, 4194304, 4194304)"]),
    ("bilinear_scale", _net(make_op("UpsampleBilinear", ["x"], ["y"], width_scale=1e30, height_scale=2.0), ["x"]),
     [_features(1)], "OperatorInputError", ["UpsampleBilinear: output shape="]),
    ("pad_huge", _net(make_op("PadImage", ["x"], ["y"], pad=HUGE // 2), ["x"]), [_features(1)],
     "OperatorInputError", ["PadImage: output shape=(1, 2, 1048580, 1048580) would have more than"]),
    ("pad_beyond_bound", _net(make_op("PadImage", ["x"], ["y"], pad=1 << 40), ["x"]), [_features(1)],
     "OperatorArgumentError", ["PadImage: pads=", "expected values <= 1048576"]),
    ("tile_huge", _net(make_op("NumpyTile", ["x", "r"], ["y"]), ["x", "r"]),
     [_features(1), np.array([1, 1, HUGE, HUGE], np.int64)], "OperatorInputError",
     ["NumpyTile: (X dims, repeats) shape=", "would have more than"]),
    ("fpn_levels", _net(make_op("DistributeFpnProposals", ["r"], ["a", "b", "i"], roi_min_level=0,
                                roi_max_level=1 << 40), ["r"]),
     [_rois([0, 0, 0, 4, 4])], "OperatorArgumentError",
     ["DistributeFpnProposals: roi_min_level=0, roi_max_level=1099511627776", "at most 64 levels"]),
    ("collect_levels", _net(make_op("CollectRpnProposals", ["r", "s"], ["o"], rpn_min_level=-(1 << 62),
                                    rpn_max_level=1 << 62), ["r", "s"]),
     [_rois([0, 0, 0, 4, 4]), np.ones(1, np.float32)], "OperatorArgumentError",
     ["CollectRpnProposals: rpn_min_level=", "at most 64 levels"]),
    ("proposals_im_info", _net(make_op("GenerateProposals", ["s", "d", "im", "a"], ["r", "p"]), ["s", "d", "im", "a"]),
     [np.ones((1, 1, 2, 2), np.float32), np.zeros((1, 4, 2, 2), np.float32), np.array([[np.nan, 8, 1]], np.float32),
      np.array([[0, 0, 4, 4]], np.float32)], "OperatorInputError", ["GenerateProposals: im_info has NaN"]),
]


@pytest.fixture(scope="module")
def results(cpp_tools):
    valid = [Case(f"valid_{name}", net, inputs) for name, net, inputs in VALID_CASES]
    cases = [Case(name, net, inputs) for name, net, inputs, *_ in ERROR_CASES] + valid
    return run_batch(cpp_tools, cases)


@pytest.mark.parametrize("name,net,inputs,error_class,fragments", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_refused_with_the_op_named(results, name, net, inputs, error_class, fragments):
    error = results[name].error
    assert error is not None, f"C++ accepted {name}"
    assert error.startswith(error_class + ": "), error
    assert "\n" not in error
    for fragment in fragments:
        assert fragment in error, error


# In range at the edge (the last image of the batch, the last row): the checks must not refuse these.
VALID_CASES = [
    ("roi_last_image", _roi_align(), [_features(2), _rois([1, 0.5, 0.5, 3, 3], [0, 0, 0, 2, 2])]),
    ("roi_boxes_only", _roi_align(), [_features(1), _rois([0.5, 0.5, 3, 3])]),
    ("batch_permutation_last", _net(make_op("BatchPermutation", ["x", "i"], ["y"]), ["x", "i"]),
     [_features(2), np.array([1, 0], np.int32)]),
    ("nms_splits", _net(make_op("BoxWithNMSLimit", ["s", "b", "n"], ["os", "ob", "oc"]), ["s", "b", "n"]),
     [*_nms_inputs(), np.array([1, 1], np.float32)]),
]


@pytest.mark.parametrize("name,net,inputs", VALID_CASES, ids=[c[0] for c in VALID_CASES])
def test_edge_indices_run_as_python(results, name, net, inputs):
    result = results[f"valid_{name}"]
    assert result.error is None, result.error
    ws = Workspace(f"untrusted_{name}")
    for blob, value in zip(net.external_input, inputs):
        ws.FeedBlob(blob, value)
    ws.RunNetOnce(net)
    for blob, cpp in zip(net.external_output, result.outputs):
        np.testing.assert_allclose(cpp, ws.FetchBlob(blob), rtol=0, atol=1e-5)


def test_npy_claiming_huge_shape_is_refused_before_allocation(cpp_tools, tmp_path):
    path = tmp_path / "huge.npy"
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1024), }"
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\0" * 16)
    net = _net(make_op("Relu", ["x"], ["y"]), ["x"])
    (tmp_path / "model.pb").write_bytes(net.SerializeToString())
    (tmp_path / "init.pb").write_bytes(caffe2_pb2.NetDef().SerializeToString())
    proc = run_tool(cpp_tools.run_net, f"--predict_net={tmp_path / 'model.pb'}", f"--init_net={tmp_path / 'init.pb'}",
                    f"--inputs={path}", f"--output_dir={tmp_path / 'out'}")
    assert proc.returncode == 1, proc.stderr
    assert f"{path}: truncated .npy data, shape (1099511627776, 1024) needs more than the 16 bytes" in proc.stderr
