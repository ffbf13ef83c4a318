"""Input conversion and output assembly of the Caffe2 meta-architectures (SPEC 3.2, 3.12, 3.13)."""

from __future__ import annotations

import json
import types

import pytest
import torch

from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.config import get_cfg
from detectron2_export.errors import ExportError, OperatorArgumentError, OperatorInputError, ProtobufError
from detectron2_export.export.caffe2_modeling import (
    _RETINANET_INFERENCE_METHODS,
    META_ARCH_CAFFE2_EXPORT_TYPE_MAP,
    Caffe2GeneralizedRCNN,
    Caffe2PanopticFPN,
    Caffe2RetinaNet,
    assemble_rcnn_outputs_by_name,
    convert_batched_inputs_to_c2_format,
)
from detectron2_export.export.protobuf_utils import check_set_pb_arg
from detectron2_export.layers import ShapeSpec
from detectron2_export.modeling import meta_arch
from detectron2_export.modeling.anchor_generator import build_anchor_generator
from detectron2_export.structures import Boxes, RotatedBoxes


class TestConvertBatchedInputs:
    def test_pads_to_divisibility_as_float32(self):
        image = torch.randint(0, 256, (3, 50, 70), dtype=torch.uint8)
        data, im_info = convert_batched_inputs_to_c2_format([{"image": image}], 32, "cpu")
        assert data.dtype == torch.float32 and data.shape == (1, 3, 64, 96)
        assert torch.equal(data[0, :, :50, :70], image.float())
        assert data[0, :, 50:, :].abs().sum() == 0 and data[0, :, :, 70:].abs().sum() == 0
        # no "height": the scale column is exactly 1
        assert im_info.dtype == torch.float32
        assert im_info.tolist() == [[50.0, 70.0, 1.0]]

    def test_scale_is_target_height_over_height(self):
        image = torch.rand(3, 40, 64)
        _, im_info = convert_batched_inputs_to_c2_format([{"image": image, "height": 100, "width": 999}], 32, "cpu")
        # only the height ratio is kept (upstream convention); the width is ignored
        assert im_info.tolist() == [[40.0, 64.0, 2.5]]

    def test_no_divisibility_keeps_size(self):
        data, im_info = convert_batched_inputs_to_c2_format([{"image": torch.rand(3, 33, 47)}], 0, "cpu")
        assert data.shape == (1, 3, 33, 47)
        assert im_info.tolist() == [[33.0, 47.0, 1.0]]

    def test_batch_pads_to_common_size(self):
        inputs = [{"image": torch.ones(3, 30, 65)}, {"image": torch.ones(3, 70, 20), "height": 140}]
        data, im_info = convert_batched_inputs_to_c2_format(inputs, 32, "cpu")
        assert data.shape == (2, 3, 96, 96)
        assert data[0].sum() == 3 * 30 * 65 and data[1].sum() == 3 * 70 * 20
        assert im_info.tolist() == [[30.0, 65.0, 1.0], [70.0, 20.0, 2.0]]

    def test_rejects_non_chw(self):
        with pytest.raises(OperatorInputError, match=r"batched_inputs\[0\]\['image'\] shape=\(1, 3, 8, 8\), expected 3-D"):
            convert_batched_inputs_to_c2_format([{"image": torch.rand(1, 3, 8, 8)}], 0, "cpu")


    @pytest.mark.parametrize(
        "image, message",
        [
            (torch.rand(2, 8, 8), r"\['image'\] shape=\(2, 8, 8\), expected 1 or 3 channels first"),
            (torch.rand(8, 8, 3), r"\['image'\] shape=\(8, 8, 3\), expected 1 or 3 channels first \(C, H, W\) \(HWC layout"),
            (torch.rand(3, 0, 0), r"\['image'\] shape=\(3, 0, 0\), expected a non-empty image"),
            (torch.rand(8, 8).numpy(), r"\['image'\] is a ndarray, expected a torch.Tensor"),
        ],
    )
    def test_bad_images_name_the_input(self, image, message):
        with pytest.raises(OperatorInputError, match=r"convert_batched_inputs_to_c2_format: batched_inputs\[0\]" + message):
            convert_batched_inputs_to_c2_format([{"image": torch.rand(3, 8, 8)}, {"image": image}][1:], 32, "cpu")

    def test_bad_batch_and_target_height(self):
        with pytest.raises(OperatorInputError, match=r"batched_inputs is a list of length 0, expected a non-empty list"):
            convert_batched_inputs_to_c2_format([], 32, "cpu")
        with pytest.raises(OperatorInputError, match=r"batched_inputs\[0\] is a Tensor, expected a dict"):
            convert_batched_inputs_to_c2_format([torch.rand(3, 8, 8)], 32, "cpu")
        with pytest.raises(OperatorInputError, match=r"batched_inputs\[0\]\['height'\]='10', expected a positive number"):
            convert_batched_inputs_to_c2_format([{"image": torch.rand(3, 8, 8), "height": "10"}], 32, "cpu")

    @pytest.mark.parametrize(
        "args, message",
        [
            ((2**31 - 1, "cpu", None), r"size_divisibility=2147483647, expected an int in \[0, 4096\]"),
            ((-32, "cpu", None), r"size_divisibility=-32, expected an int in \[0, 4096\]"),
            ((32, "CPU", None), r"device='CPU', expected 'cpu', 'cuda' or 'cuda:<index>'"),
            ((32, "cpu", [1.0, 2.0]), r"pad_value=\[1.0, 2.0\], expected 1 or 3 finite numbers"),
            ((32, "cpu", [float("nan")] * 3), r"pad_value=\[nan, nan, nan\], expected 1 or 3 finite numbers"),
        ],
    )
    def test_bad_arguments(self, args, message):
        with pytest.raises(OperatorArgumentError, match=r"convert_batched_inputs_to_c2_format: " + message):
            convert_batched_inputs_to_c2_format([{"image": torch.rand(3, 8, 8)}], *args)

    def test_channels_follow_pad_value_and_the_batch(self):
        with pytest.raises(OperatorInputError, match=r"\[0\]\['image'\] shape=\(1, 8, 8\), expected 3 channels first"):
            convert_batched_inputs_to_c2_format([{"image": torch.rand(1, 8, 8)}], 32, "cpu", [1.0, 2.0, 3.0])
        gray = [{"image": torch.rand(1, 8, 8)}, {"image": torch.rand(3, 8, 8)}]
        assert convert_batched_inputs_to_c2_format(gray[:1], 32, "cpu", [5.0])[0].shape == (1, 1, 32, 32)
        with pytest.raises(OperatorInputError, match=r"\[1\]\['image'\] shape=\(3, 8, 8\), expected 1 channels first"):
            convert_batched_inputs_to_c2_format(gray, 32, "cpu")

    def test_one_pad_value_broadcasts(self):
        data, _ = convert_batched_inputs_to_c2_format([{"image": torch.zeros(3, 5, 5)}], 8, "cpu", [7.0])
        assert data.shape == (1, 3, 8, 8) and data[0, :, 5:, :].eq(7).all() and data[0, :, :5, :5].eq(0).all()


def _nms_outputs(boxes: list[list[float]], scores: list[float], classes: list[float]) -> dict:
    return {
        "bbox_nms": torch.tensor(boxes),
        "score_nms": torch.tensor(scores),
        "class_nms": torch.tensor(classes),
    }


class TestAssembleRcnnOutputs:
    def test_boxes_scores_classes(self):
        outputs = _nms_outputs([[1.0, 2, 3, 4], [5.0, 6, 7, 8]], [0.9, 0.8], [2.0, 0.0])
        (result,) = assemble_rcnn_outputs_by_name([[20, 30]], outputs)
        assert result.image_size == (20, 30)
        assert type(result.pred_boxes) is Boxes
        assert torch.equal(result.pred_boxes.tensor, outputs["bbox_nms"])
        assert torch.equal(result.scores, outputs["score_nms"])
        assert result.pred_classes.dtype == torch.int64 and result.pred_classes.tolist() == [2, 0]
        assert not result.has("pred_masks") and not result.has("pred_keypoints")

    def test_rotated_boxes(self):
        outputs = _nms_outputs([[10.0, 10, 4, 2, 30]], [0.5], [1.0])
        (result,) = assemble_rcnn_outputs_by_name([[20, 30]], outputs)
        assert isinstance(result.pred_boxes, RotatedBoxes)

    def test_mask_of_each_detections_class(self):
        outputs = _nms_outputs([[1.0, 2, 3, 4], [5.0, 6, 7, 8]], [0.9, 0.8], [2.0, 0.0])
        probs = torch.rand(2, 3, 4, 4)
        outputs["mask_fcn_probs"] = probs
        (result,) = assemble_rcnn_outputs_by_name([[20, 30]], outputs)
        assert result.pred_masks.shape == (2, 1, 4, 4)
        assert torch.equal(result.pred_masks[0, 0], probs[0, 2])
        assert torch.equal(result.pred_masks[1, 0], probs[1, 0])

    def test_force_mask_on_without_masks(self):
        # PanopticFPN's converter needs the field even when the net gave no masks (no detections)
        outputs = {"bbox_nms": torch.zeros(0, 4), "score_nms": torch.zeros(0), "class_nms": torch.zeros(0)}
        (result,) = assemble_rcnn_outputs_by_name([[20, 30]], outputs, force_mask_on=True)
        assert result.pred_masks.shape == (0, 1, 0, 0) and result.pred_masks.dtype == torch.uint8
        (result,) = assemble_rcnn_outputs_by_name([[20, 30]], outputs)
        assert not result.has("pred_masks")

    def test_keypoints_out(self):
        outputs = _nms_outputs([[1.0, 2, 3, 4]], [0.9], [0.0])
        # HeatmapMaxKeypoint layout: (N, 4, #keypoints) with rows x, y, heatmap score, probability
        outputs["keypoints_out"] = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [0.7, 0.8]]])
        (result,) = assemble_rcnn_outputs_by_name([[20, 30]], outputs)
        assert result.pred_keypoints.tolist() == [[[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]]]

    def test_kps_score_heatmaps_are_decoded(self):
        # a 56x56 box at the origin maps heatmap cells 1:1 to pixels (bicubic resize to the same size
        # is the identity): a peak at row 10, column 20 is the keypoint at the cell centre (20.5, 10.5)
        outputs = _nms_outputs([[0.0, 0.0, 56.0, 56.0]], [0.9], [0.0])
        heatmap = torch.zeros(1, 2, 56, 56)
        heatmap[0, 0, 10, 20] = 10.0
        heatmap[0, 1, 40, 3] = 10.0
        outputs["kps_score"] = heatmap
        (result,) = assemble_rcnn_outputs_by_name([[56, 56]], outputs)
        assert result.pred_keypoints.shape == (1, 2, 3)
        assert result.pred_keypoints[0, :, :2].tolist() == [[20.5, 10.5], [3.5, 40.5]]
        assert torch.equal(result.pred_keypoint_heatmaps, heatmap)

    def test_only_batch_size_one(self):
        with pytest.raises(OperatorInputError, match="2 images, expected 1"):
            assemble_rcnn_outputs_by_name([[20, 30], [20, 30]], _nms_outputs([[1.0, 2, 3, 4]], [0.9], [0.0]))


    @pytest.mark.parametrize("missing", ["bbox_nms", "score_nms", "class_nms"])
    def test_missing_output_blob(self, missing):
        outputs = _nms_outputs([[1.0, 2, 3, 4]], [0.9], [0.0])
        del outputs[missing]
        with pytest.raises(OperatorInputError, match=rf"output blob '{missing}' missing or empty, expected a tensor"):
            assemble_rcnn_outputs_by_name([[20, 30]], outputs)

    def test_inconsistent_outputs(self):
        outputs = _nms_outputs([[1.0, 2, 3, 4], [5.0, 6, 7, 8]], [0.9], [2.0, 0.0])
        with pytest.raises(OperatorInputError, match=r"'score_nms' shape=\(1,\), expected 2 rows"):
            assemble_rcnn_outputs_by_name([[20, 30]], outputs)
        outputs = _nms_outputs([[1.0, 2, 3, 4], [5.0, 6, 7, 8]], [0.9, 0.8], [3.0, 0.0])
        outputs["mask_fcn_probs"] = torch.rand(2, 3, 4, 4)
        with pytest.raises(OperatorInputError, match=r"'class_nms' holds class ids in \[0, 3\], expected in \[0, 2\]"):
            assemble_rcnn_outputs_by_name([[20, 30]], outputs)
        outputs["class_nms"] = torch.tensor([1.0, 0.0])
        outputs["mask_fcn_probs"] = torch.rand(3, 3, 4, 4)
        with pytest.raises(OperatorInputError, match=r"'mask_fcn_probs' shape=\(3, 3, 4, 4\), expected 2 rows"):
            assemble_rcnn_outputs_by_name([[20, 30]], outputs)
        outputs = _nms_outputs([[1.0, 2, 3]], [0.9], [0.0])
        with pytest.raises(OperatorInputError, match=r"'bbox_nms' shape=\(1, 3\), expected \(N, 4\) or \(N, 5\)"):
            assemble_rcnn_outputs_by_name([[20, 30]], outputs)


class TestOutputConverters:
    def test_generalized_rcnn_rescales_to_requested_size(self):
        convert = Caffe2GeneralizedRCNN.get_outputs_converter(caffe2_pb2.NetDef(), caffe2_pb2.NetDef())
        batched_inputs = [{"image": torch.zeros(3, 50, 70), "height": 100, "width": 140}]
        c2_inputs = (torch.zeros(1, 3, 64, 96), torch.tensor([[50.0, 70.0, 2.0]]))
        outputs = _nms_outputs([[10.0, 5.0, 30.0, 25.0], [60.0, 40.0, 80.0, 60.0]], [0.9, 0.8], [1.0, 2.0])
        (result,) = convert(batched_inputs, c2_inputs, outputs)
        instances = result["instances"]
        assert instances.image_size == (100, 140)
        # x2 scale, then clipped to (100, 140)
        assert instances.pred_boxes.tensor.tolist() == [[20.0, 10.0, 60.0, 50.0], [120.0, 80.0, 140.0, 100.0]]
        assert instances.pred_classes.tolist() == [1, 2]

    def test_map(self):
        assert META_ARCH_CAFFE2_EXPORT_TYPE_MAP == {
            "GeneralizedRCNN": Caffe2GeneralizedRCNN,
            "PanopticFPN": Caffe2PanopticFPN,
            "RetinaNet": Caffe2RetinaNet,
        }

    def test_retinanet_inference_methods_exist(self):
        # the converter re-binds RetinaNet's own inference code to a namespace of stored metadata
        for name in _RETINANET_INFERENCE_METHODS:
            assert callable(getattr(meta_arch.RetinaNet, name)), name


class TestRetinaNetAnchorSpec:
    """``anchor_generator_spec`` (JSON) replaces upstream's pickled anchor generator."""

    def _encoded_net(self):
        cfg = get_cfg()
        cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[32, 40, 50], [64, 80, 101]]
        cfg.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS = [[0.5, 1.0, 2.0]]
        generator = build_anchor_generator(cfg, [ShapeSpec(channels=8, stride=8), ShapeSpec(channels=8, stride=16)])
        fake = types.SimpleNamespace(_wrapped_model=types.SimpleNamespace(anchor_generator=generator))
        net = caffe2_pb2.NetDef()
        Caffe2RetinaNet._encode_anchor_generator_cfg(fake, net)
        return generator, net

    def test_round_trip_gives_same_anchors(self):
        generator, net = self._encoded_net()
        decoded = Caffe2RetinaNet._decode_anchor_generator(net)
        assert list(decoded.strides) == [8, 16] and decoded.offset == generator.offset
        features = [torch.zeros(1, 8, 5, 7), torch.zeros(1, 8, 3, 4)]
        for a, b in zip(generator(features), decoded(features)):
            assert torch.equal(a.tensor, b.tensor)

    def test_spec_is_plain_json(self):
        _, net = self._encoded_net()
        (arg,) = [a for a in net.arg if a.name == "anchor_generator_spec"]
        spec = json.loads(arg.s.decode("ascii"))
        assert spec["strides"] == [8, 16] and len(spec["cell_anchors"]) == 2
        assert len(spec["cell_anchors"][0]) == 9 and len(spec["cell_anchors"][0][0]) == 4

    def test_malformed_spec_is_a_protobuf_error(self):
        net = caffe2_pb2.NetDef()
        check_set_pb_arg(net, "anchor_generator_spec", "s", b'{"cell_anchors": [[[0, 0, 1, 1]]], "strides": []}')
        with pytest.raises(ProtobufError, match=r"argument 'anchor_generator_spec'=.*expected ASCII JSON .*KeyError: 'offset'"):
            Caffe2RetinaNet._decode_anchor_generator(net)
        net = caffe2_pb2.NetDef()
        check_set_pb_arg(net, "anchor_generator_spec", "s", b"\xff{")
        with pytest.raises(ProtobufError, match=r"UnicodeDecodeError"):
            Caffe2RetinaNet._decode_anchor_generator(net)

    def test_missing_or_pickled_spec_is_a_clear_error(self):
        with pytest.raises(ExportError, match="anchor_generator_spec"):
            Caffe2RetinaNet._decode_anchor_generator(caffe2_pb2.NetDef())
        net = caffe2_pb2.NetDef()
        check_set_pb_arg(net, "serialized_anchor_generator", "s", b"\x80\x04pickle")
        with pytest.raises(ExportError, match="serialized_anchor_generator"):
            Caffe2RetinaNet._decode_anchor_generator(net)
