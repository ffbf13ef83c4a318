"""Caffe2-compatible meta-architectures (SPEC 3.1-3.3, 3.10, 3.12, 3.13).

Each class wraps a deep copy of a detectron2 model as ``_wrapped_model``, takes ``(data, im_info)``
and returns a flat tuple of tensors that become the external outputs of the Caffe2 net. Its static
``get_outputs_converter`` turns those raw outputs back into detectron2's output format using only
what is stored in the nets.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import types
from typing import Any, Callable

import torch

from ..modeling import meta_arch
from ..modeling.anchor_generator import DefaultAnchorGenerator
from ..modeling.box_regression import Box2BoxTransform
from ..modeling.meta_arch.panoptic_fpn import combine_semantic_and_instance_outputs
from ..modeling.postprocessing import detector_postprocess, sem_seg_postprocess
from ..modeling.roi_heads import keypoint_head
from ..structures import Boxes, ImageList, Instances, RotatedBoxes
from ..caffe2.arguments import to_float32
from ..caffe2.op_args import check_allocation, resource_limits
from ..errors import ExportError, OperatorArgumentError, OperatorInputError, ProtobufError
from .c10 import Caffe2Compatible
from .caffe2_patch import ROIHeadsPatcher, patch_generalized_rcnn
from .protobuf_utils import (
    check_set_pb_arg,
    get_pb_arg_floats,
    get_pb_arg_valf,
    get_pb_arg_vali,
    get_pb_arg_vals,
)
from .caffe2_graph_ops import alias
from .onnx_interpolate import mock_torch_nn_functional_interpolate

logger = logging.getLogger(__name__)


def _output(
    tensor_outputs: dict[str, torch.Tensor], name: str, ranks: tuple[int, ...], required: bool = True,
    where: str = "assemble_rcnn_outputs_by_name",
):
    """Output blob ``name`` of the net, checked to be a tensor of one of ``ranks`` (None if optional and absent)."""
    value = tensor_outputs.get(name)
    if value is None:
        if not required:
            return None
        raise OperatorInputError(
            f"{where}: output blob {name!r} missing or empty, expected a tensor "
            f"(the predict net's outputs: {sorted(tensor_outputs)})"
        )
    if not isinstance(value, torch.Tensor) or value.dim() not in ranks:
        got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise OperatorInputError(f"{where}: output blob {name!r} shape={got}, expected {' or '.join(f'{r}-D' for r in ranks)}")
    return value


def _check_leading(name: str, value: torch.Tensor, n: int) -> None:
    if value.shape[0] != n:
        raise OperatorInputError(
            f"assemble_rcnn_outputs_by_name: output blob {name!r} shape={tuple(value.shape)}, expected {n} rows "
            "(one per detection in 'bbox_nms')"
        )


def assemble_rcnn_outputs_by_name(
    image_sizes: list[list[int]], tensor_outputs: dict[str, torch.Tensor], force_mask_on: bool = False
) -> list[Instances]:
    """Raw R-CNN net outputs (by blob name) -> one detectron2 ``Instances`` in network-input size.

    Shapes and class ids are checked against each other first: the outputs come from a model file."""
    if len(image_sizes) != 1:
        raise OperatorInputError(
            f"assemble_rcnn_outputs_by_name: {len(image_sizes)} images, expected 1 (the Caffe2 nets run one image)"
        )
    result = Instances(tuple(image_sizes[0]))

    bbox_nms = _output(tensor_outputs, "bbox_nms", (2,))
    num = bbox_nms.shape[0]
    if bbox_nms.shape[1] not in (4, 5):
        raise OperatorInputError(
            f"assemble_rcnn_outputs_by_name: output blob 'bbox_nms' shape={tuple(bbox_nms.shape)}, expected (N, 4) or (N, 5)"
        )
    score_nms = _output(tensor_outputs, "score_nms", (1,))
    class_nms = _output(tensor_outputs, "class_nms", (1,))
    _check_leading("score_nms", score_nms, num)
    _check_leading("class_nms", class_nms, num)
    if bbox_nms.shape[1] == 5:
        result.pred_boxes = RotatedBoxes(bbox_nms)
    else:
        result.pred_boxes = Boxes(bbox_nms)
    result.scores = score_nms
    result.pred_classes = class_nms.to(torch.int64)

    mask_fcn_probs = _output(tensor_outputs, "mask_fcn_probs", (4,), required=False)
    if mask_fcn_probs is not None:
        _check_leading("mask_fcn_probs", mask_fcn_probs, num)
        class_pred = result.pred_classes
        num_classes = mask_fcn_probs.shape[1]
        if num and (int(class_pred.min()) < 0 or int(class_pred.max()) >= num_classes):
            raise OperatorInputError(
                f"assemble_rcnn_outputs_by_name: output blob 'class_nms' holds class ids in [{int(class_pred.min())}, "
                f"{int(class_pred.max())}], expected in [0, {num_classes - 1}] ('mask_fcn_probs' shape "
                f"{tuple(mask_fcn_probs.shape)})"
            )
        indices = torch.arange(num, device=class_pred.device)
        result.pred_masks = mask_fcn_probs[indices, class_pred][:, None]
    elif force_mask_on:
        result.pred_masks = torch.zeros([0, 1, 0, 0], dtype=torch.uint8)

    keypoints_out = _output(tensor_outputs, "keypoints_out", (3,), required=False)
    kps_score = _output(tensor_outputs, "kps_score", (4,), required=False)
    if keypoints_out is not None:
        _check_leading("keypoints_out", keypoints_out, num)
        if keypoints_out.shape[1] < 3:
            raise OperatorInputError(
                f"assemble_rcnn_outputs_by_name: output blob 'keypoints_out' shape={tuple(keypoints_out.shape)}, "
                "expected (N, 4, #keypoints)"
            )
        # (N, 4, #keypoints) rows x, y, score, prob -> (N, #keypoints, 3) with the heatmap score
        result.pred_keypoints = keypoints_out.transpose(1, 2)[:, :, [0, 1, 2]]
    elif kps_score is not None:
        _check_leading("kps_score", kps_score, num)
        keypoint_head.keypoint_rcnn_inference(kps_score, [result])
    return [result]


def set_caffe2_compatible_tensor_mode(model: torch.nn.Module, enable: bool = True) -> None:
    def _fn(m: torch.nn.Module) -> None:
        if isinstance(m, Caffe2Compatible):
            m.tensor_mode = enable

    model.apply(_fn)


_DEVICE = re.compile(r"(cpu|cuda)(:[0-9]+)?")


def _check_image(i: int, image: Any, channels: tuple[int, ...]) -> None:
    """``image`` must be a (C, H, W) real tensor with C in ``channels`` and no empty side."""
    where = f"convert_batched_inputs_to_c2_format: batched_inputs[{i}]['image']"
    expected = " or ".join(map(str, channels))
    if not isinstance(image, torch.Tensor):
        raise OperatorInputError(f"{where} is a {type(image).__name__}, expected a torch.Tensor (C, H, W)")
    shape = tuple(image.shape)
    if image.dtype == torch.bool or image.dtype.is_complex:
        raise OperatorInputError(f"{where} dtype={image.dtype}, expected a real (integer or floating) dtype")
    if image.dim() != 3:
        raise OperatorInputError(f"{where} shape={shape}, expected 3-D (C, H, W) with C={expected}")
    if shape[0] not in channels:
        hint = " (HWC layout? permute it to CHW)" if shape[2] in channels else ""
        raise OperatorInputError(f"{where} shape={shape}, expected {expected} channels first (C, H, W){hint}")
    if shape[1] == 0 or shape[2] == 0:
        raise OperatorInputError(f"{where} shape={shape}, expected a non-empty image")


def _check_size_divisibility(size_divisibility: Any) -> int:
    limit = resource_limits().max_size_divisibility
    if isinstance(size_divisibility, bool) or not isinstance(size_divisibility, int) or not 0 <= size_divisibility <= limit:
        raise OperatorArgumentError(
            f"convert_batched_inputs_to_c2_format: size_divisibility={size_divisibility!r}, expected an int in "
            f"[0, {limit}] (ResourceLimits.max_size_divisibility)"
        )
    return size_divisibility


def _check_device(device: str | torch.device) -> torch.device:
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str) or not _DEVICE.fullmatch(device):
        raise OperatorArgumentError(
            f"convert_batched_inputs_to_c2_format: device={device!r}, expected 'cpu', 'cuda' or 'cuda:<index>'"
        )
    return torch.device(device)


def _check_pad_value(pad_value: Any) -> list[float] | None:
    if pad_value is None:
        return None
    ok = isinstance(pad_value, (list, tuple)) and len(pad_value) in (1, 3)
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in pad_value)
    if not ok:
        raise OperatorArgumentError(
            f"convert_batched_inputs_to_c2_format: pad_value={pad_value!r}, expected 1 or 3 finite numbers "
            "(one for all channels, or one per channel)"
        )
    return [float(v) for v in pad_value]


def _check_target_height(i: int, height: Any) -> None:
    if isinstance(height, bool) or not isinstance(height, (int, float)) or not (math.isfinite(height) and height > 0):
        raise OperatorInputError(
            f"convert_batched_inputs_to_c2_format: batched_inputs[{i}]['height']={height!r}, expected a positive number"
        )


def convert_batched_inputs_to_c2_format(
    batched_inputs: list[dict],
    size_divisibility: int,
    device: str | torch.device,
    pad_value: list[float] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """detectron2 inputs -> ``(data, im_info)``: raw images padded to ``size_divisibility`` (float32),
    and rows ``(h, w, height / h)`` (SPEC 3.2).

    ``pad_value`` (one value per channel) fills the padding. Upstream pads the raw image with 0, so
    padded pixels become ``-mean/std`` inside the graph while eager detectron2 pads the normalised
    image with 0; padding with the pixel mean makes the two identical (upstream's "padding before
    normalisation" difference, SPEC 3.3/3.14, which costs ~0.3 segm AP on small images).

    Every input and argument is checked first (they may come from a model file or a caller): images
    must be (C, H, W), C = 3 with 3 ``pad_value`` values, else 1 or 3, the same for the whole batch."""
    if not isinstance(batched_inputs, (list, tuple)) or not batched_inputs:
        raise OperatorInputError(
            f"convert_batched_inputs_to_c2_format: batched_inputs is a {type(batched_inputs).__name__} "
            f"of length {len(batched_inputs) if isinstance(batched_inputs, (list, tuple)) else '-'}, "
            "expected a non-empty list of dicts"
        )
    size_divisibility = _check_size_divisibility(size_divisibility)
    device = _check_device(device)
    pad_value = _check_pad_value(pad_value)
    channels: tuple[int, ...] = (3,) if pad_value is not None and len(pad_value) == 3 else (1, 3)
    for i, x in enumerate(batched_inputs):
        if not isinstance(x, dict) or "image" not in x:
            raise OperatorInputError(
                f"convert_batched_inputs_to_c2_format: batched_inputs[{i}] is a {type(x).__name__}, expected a dict "
                "with an 'image'"
            )
        _check_image(i, x["image"], channels)
        channels = (x["image"].shape[0],)  # every image of a batch alike
        if "height" in x:
            _check_target_height(i, x["height"])
    padded = [
        max(img["image"].shape[d] for img in batched_inputs) for d in (1, 2)
    ]
    if size_divisibility > 1:
        padded = [-(-s // size_divisibility) * size_divisibility for s in padded]
    check_allocation("convert_batched_inputs_to_c2_format", "data", (len(batched_inputs), *channels, *padded), torch.float32)

    images = [x["image"].to(torch.float32) for x in batched_inputs]
    images = ImageList.from_tensors(images, size_divisibility)
    if pad_value is not None:
        fill = torch.as_tensor(pad_value, dtype=torch.float32).view(-1, 1, 1)
        for padded_image, (h, w) in zip(images.tensor, images.image_sizes):
            padded_image[:, h:, :] = fill
            padded_image[:, :, w:] = fill

    im_info = []
    for input_per_image, image_size in zip(batched_inputs, images.image_sizes):
        # only the height ratio is kept, as upstream does ("as convention")
        target_height = input_per_image.get("height", image_size[0])
        scale = target_height / image_size[0]
        im_info.append([image_size[0], image_size[1], scale])
    im_info = torch.Tensor(im_info)

    return images.tensor.to(device), im_info.to(device)


class Caffe2MetaArch(Caffe2Compatible, torch.nn.Module):
    """Base class of the Caffe2-compatible meta-architectures."""

    def __init__(self, cfg, torch_model: torch.nn.Module, enable_tensor_mode: bool = True) -> None:
        super().__init__()
        self._wrapped_model = torch_model
        self.eval()
        set_caffe2_compatible_tensor_mode(self, enable_tensor_mode)

    def get_caffe2_inputs(self, batched_inputs: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        return convert_batched_inputs_to_c2_format(
            batched_inputs,
            self._wrapped_model.backbone.size_divisibility,
            self._wrapped_model.device,
            self.pad_value(),
        )

    def pad_value(self) -> list[float]:
        """Per-channel value of the padding of ``data``: the pixel mean, which normalises to 0."""
        return [to_float32(v) for v in self._wrapped_model.pixel_mean.flatten().tolist()]

    def encode_additional_info(self, predict_net, init_net) -> None:
        """Save extra metadata in the predict net's arguments, needed to rebuild the outputs."""
        raise NotImplementedError()

    def _encode_common_info(self, predict_net, meta_architecture: bytes) -> None:
        size_divisibility = self._wrapped_model.backbone.size_divisibility
        check_set_pb_arg(predict_net, "size_divisibility", "i", size_divisibility)
        check_set_pb_arg(predict_net, "device", "s", str.encode(str(self._wrapped_model.device), "ascii"))
        check_set_pb_arg(predict_net, "meta_architecture", "s", meta_architecture)
        check_set_pb_arg(predict_net, "pad_value", "floats", self.pad_value())

    def forward(self, inputs):
        raise NotImplementedError()

    def _check_tensor_mode(self) -> None:
        if not self.tensor_mode:
            raise ExportError(f"{type(self).__name__}.forward: tensor_mode=False, expected True (only the Caffe2 "
                              "tensor-mode graph is implemented for this meta-architecture)")

    def _caffe2_preprocess_image(self, inputs):
        """Normalise inside the graph; ``image_sizes`` becomes the ``im_info`` tensor itself."""
        data, im_info = inputs
        data = alias(data, "data")
        im_info = alias(im_info, "im_info")
        mean, std = self._wrapped_model.pixel_mean, self._wrapped_model.pixel_std
        normalized_data = (data - mean) / std
        normalized_data = alias(normalized_data, "normalized_data")
        return ImageList(tensor=normalized_data, image_sizes=im_info)

    @staticmethod
    def get_outputs_converter(predict_net, init_net) -> Callable:
        """``f(batched_inputs, c2_inputs, c2_results) -> detectron2 outputs``."""
        raise NotImplementedError()


def _check_model_type(torch_model: torch.nn.Module, expected: type, wrapper: str) -> None:
    if not isinstance(torch_model, expected):
        raise ExportError(f"{wrapper}: model is a {type(torch_model).__name__}, expected a {expected.__name__}")


def _use_heatmap_max_keypoint(cfg) -> bool:
    try:
        return bool(cfg.EXPORT_CAFFE2.USE_HEATMAP_MAX_KEYPOINT)
    except AttributeError:
        return False


class Caffe2GeneralizedRCNN(Caffe2MetaArch):
    def __init__(self, cfg, torch_model: torch.nn.Module, enable_tensor_mode: bool = True) -> None:
        _check_model_type(torch_model, meta_arch.GeneralizedRCNN, type(self).__name__)
        torch_model = patch_generalized_rcnn(torch_model)
        super().__init__(cfg, torch_model, enable_tensor_mode)
        self.roi_heads_patcher = ROIHeadsPatcher(
            self._wrapped_model.roi_heads, _use_heatmap_max_keypoint(cfg)
        )

    def encode_additional_info(self, predict_net, init_net) -> None:
        self._encode_common_info(predict_net, b"GeneralizedRCNN")

    @mock_torch_nn_functional_interpolate()
    def forward(self, inputs):
        if not self.tensor_mode:
            return self._wrapped_model.inference(inputs)
        images = self._caffe2_preprocess_image(inputs)
        features = self._wrapped_model.backbone(images.tensor)
        proposals, _ = self._wrapped_model.proposal_generator(images, features)
        with self.roi_heads_patcher.mock_roi_heads():
            detector_results, _ = self._wrapped_model.roi_heads(images, features, proposals)
        return tuple(detector_results[0].flatten())

    @staticmethod
    def get_outputs_converter(predict_net, init_net) -> Callable:
        def f(batched_inputs, c2_inputs, c2_results):
            _, im_info = c2_inputs
            image_sizes = [[int(im[0]), int(im[1])] for im in im_info]
            results = assemble_rcnn_outputs_by_name(image_sizes, c2_results)
            return meta_arch.GeneralizedRCNN._postprocess(results, batched_inputs, image_sizes)

        return f


class Caffe2PanopticFPN(Caffe2MetaArch):
    def __init__(self, cfg, torch_model: torch.nn.Module) -> None:
        _check_model_type(torch_model, meta_arch.PanopticFPN, type(self).__name__)
        torch_model = patch_generalized_rcnn(torch_model)
        super().__init__(cfg, torch_model)
        self.roi_heads_patcher = ROIHeadsPatcher(
            self._wrapped_model.roi_heads, _use_heatmap_max_keypoint(cfg)
        )

    @mock_torch_nn_functional_interpolate()
    def forward(self, inputs):
        self._check_tensor_mode()
        images = self._caffe2_preprocess_image(inputs)
        features = self._wrapped_model.backbone(images.tensor)

        sem_seg_results, _ = self._wrapped_model.sem_seg_head(features)
        sem_seg_results = alias(sem_seg_results, "sem_seg")

        proposals, _ = self._wrapped_model.proposal_generator(images, features)
        with self.roi_heads_patcher.mock_roi_heads(self.tensor_mode):
            detector_results, _ = self._wrapped_model.roi_heads(images, features, proposals)
        return tuple(detector_results[0].flatten()) + (sem_seg_results,)

    def encode_additional_info(self, predict_net, init_net) -> None:
        self._encode_common_info(predict_net, b"PanopticFPN")
        model = self._wrapped_model
        check_set_pb_arg(predict_net, "combine_on", "i", model.combine_on)
        check_set_pb_arg(
            predict_net, "combine_overlap_threshold", "f", to_float32(model.combine_overlap_thresh)
        )
        check_set_pb_arg(predict_net, "combine_stuff_area_limit", "i", model.combine_stuff_area_thresh)
        check_set_pb_arg(
            predict_net,
            "combine_instances_confidence_threshold",
            "f",
            to_float32(model.combine_instances_score_thresh),
        )

    @staticmethod
    def get_outputs_converter(predict_net, init_net) -> Callable:
        combine_on = get_pb_arg_vali(predict_net, "combine_on", None)
        combine_overlap_threshold = get_pb_arg_valf(predict_net, "combine_overlap_threshold", None)
        combine_stuff_area_limit = get_pb_arg_vali(predict_net, "combine_stuff_area_limit", None)
        combine_instances_confidence_threshold = get_pb_arg_valf(
            predict_net, "combine_instances_confidence_threshold", None
        )

        def f(batched_inputs, c2_inputs, c2_results):
            _, im_info = c2_inputs
            image_sizes = [[int(im[0]), int(im[1])] for im in im_info]
            detector_results = assemble_rcnn_outputs_by_name(image_sizes, c2_results, force_mask_on=True)
            sem_seg_results = _output(c2_results, "sem_seg", (4,), where="PanopticFPN outputs")

            processed_results = []
            for sem_seg_result, detector_result, input_per_image, image_size in zip(
                sem_seg_results, detector_results, batched_inputs, image_sizes
            ):
                height = input_per_image.get("height", image_size[0])
                width = input_per_image.get("width", image_size[1])
                sem_seg_r = sem_seg_postprocess(sem_seg_result, image_size, height, width)
                detector_r = detector_postprocess(detector_result, height, width)
                processed_results.append({"sem_seg": sem_seg_r, "instances": detector_r})
                if combine_on:
                    processed_results[-1]["panoptic_seg"] = combine_semantic_and_instance_outputs(
                        detector_r,
                        sem_seg_r.argmax(dim=0),
                        combine_overlap_threshold,
                        combine_stuff_area_limit,
                        combine_instances_confidence_threshold,
                    )
            return processed_results

        return f


_RETINANET_INFERENCE_METHODS = (
    "forward_inference",
    "inference_single_image",
    "_transpose_dense_predictions",
    "_decode_multi_level_predictions",
    "_decode_per_level_predictions",
)


class Caffe2RetinaNet(Caffe2MetaArch):
    """The graph stops at the head; decoding, anchors and NMS run in Python from stored metadata."""

    def __init__(self, cfg, torch_model: torch.nn.Module) -> None:
        _check_model_type(torch_model, meta_arch.RetinaNet, type(self).__name__)
        super().__init__(cfg, torch_model)

    @mock_torch_nn_functional_interpolate()
    def forward(self, inputs):
        self._check_tensor_mode()
        images = self._caffe2_preprocess_image(inputs)

        # explicitly return the image sizes so ONNX does not drop the otherwise unused input
        return_tensors = [images.image_sizes]

        features = self._wrapped_model.backbone(images.tensor)
        features = [features[f] for f in self._wrapped_model.head_in_features]
        for i, feature_i in enumerate(features):
            features[i] = alias(feature_i, f"feature_{i}", is_backward=True)
            return_tensors.append(features[i])

        pred_logits, pred_anchor_deltas = self._wrapped_model.head(features)
        for i, (box_cls_i, box_delta_i) in enumerate(zip(pred_logits, pred_anchor_deltas)):
            return_tensors.append(alias(box_cls_i, f"box_cls_{i}"))
            return_tensors.append(alias(box_delta_i, f"box_delta_{i}"))
        return tuple(return_tensors)

    def encode_additional_info(self, predict_net, init_net) -> None:
        self._encode_common_info(predict_net, b"RetinaNet")
        model = self._wrapped_model
        check_set_pb_arg(predict_net, "score_threshold", "f", to_float32(model.test_score_thresh))
        check_set_pb_arg(predict_net, "topk_candidates", "i", model.test_topk_candidates)
        check_set_pb_arg(predict_net, "nms_threshold", "f", to_float32(model.test_nms_thresh))
        check_set_pb_arg(predict_net, "max_detections_per_image", "i", model.max_detections_per_image)
        check_set_pb_arg(
            predict_net,
            "bbox_reg_weights",
            "floats",
            [to_float32(w) for w in model.box2box_transform.weights],
        )
        self._encode_anchor_generator_cfg(predict_net)

    def _encode_anchor_generator_cfg(self, predict_net) -> None:
        # Upstream stores a pickled detectron2 module here, which ties the file to detectron2's class
        # path and needs arbitrary unpickling to read. We store what defines the anchors instead.
        anchor_generator = self._wrapped_model.anchor_generator
        if not isinstance(anchor_generator, DefaultAnchorGenerator):
            raise ExportError(
                f"Caffe2RetinaNet: anchor_generator={type(anchor_generator).__name__}, "
                "expected DefaultAnchorGenerator (the only one the output converter can rebuild)"
            )
        spec = {
            "cell_anchors": [a.tolist() for a in anchor_generator.cell_anchors],
            "strides": [int(s) for s in anchor_generator.strides],
            "offset": float(anchor_generator.offset),
        }
        check_set_pb_arg(predict_net, "anchor_generator_spec", "s", json.dumps(spec).encode("ascii"))

    @staticmethod
    def _decode_anchor_generator(predict_net) -> DefaultAnchorGenerator:
        raw = get_pb_arg_vals(predict_net, "anchor_generator_spec", None)
        if raw is None:
            if get_pb_arg_vals(predict_net, "serialized_anchor_generator", None) is not None:
                raise ExportError(
                    "RetinaNet predict net: it stores 'serialized_anchor_generator' (a pickled detectron2 "
                    "module written by upstream detectron2), which this project does not unpickle; "
                    "re-export the model with detectron2_export to get 'anchor_generator_spec'"
                )
            raise ExportError("RetinaNet predict net: missing argument 'anchor_generator_spec'")
        try:
            spec = json.loads(raw.decode("ascii"))
            cell_anchors = [torch.tensor(a, dtype=torch.float32).reshape(-1, 4) for a in spec["cell_anchors"]]
            strides, offset = [int(s) for s in spec["strides"]], float(spec["offset"])
            if len(strides) != len(cell_anchors) or not cell_anchors:
                raise ValueError(f"{len(strides)} strides for {len(cell_anchors)} levels of cell anchors")
        except (UnicodeDecodeError, TypeError, ValueError, KeyError, RuntimeError) as e:
            raise ProtobufError(
                f"RetinaNet predict net: argument 'anchor_generator_spec'={raw[:200]!r}, expected ASCII JSON "
                f"{{'cell_anchors': [[[x0, y0, x1, y1], ...], ...], 'strides': [int, ...], 'offset': float}}: "
                f"{type(e).__name__}: {e}"
            ) from None
        generator = DefaultAnchorGenerator(
            sizes=[[32.0]] * len(cell_anchors),
            aspect_ratios=[[1.0]] * len(cell_anchors),
            strides=strides,
            offset=offset,
        )
        for buffer, value in zip(generator.cell_anchors, cell_anchors):
            buffer.resize_(value.shape).copy_(value)
        return generator

    @staticmethod
    def get_outputs_converter(predict_net, init_net) -> Callable:
        self: Any = types.SimpleNamespace()
        self.anchor_generator = Caffe2RetinaNet._decode_anchor_generator(predict_net)
        bbox_reg_weights = get_pb_arg_floats(predict_net, "bbox_reg_weights", None)
        if bbox_reg_weights is None or len(bbox_reg_weights) != 4:
            raise ProtobufError(
                f"RetinaNet predict net: argument 'bbox_reg_weights'={bbox_reg_weights}, expected 4 floats (dx, dy, dw, dh)"
            )
        self.box2box_transform = Box2BoxTransform(weights=tuple(bbox_reg_weights))
        self.test_score_thresh = get_pb_arg_valf(predict_net, "score_threshold", None)
        self.test_topk_candidates = get_pb_arg_vali(predict_net, "topk_candidates", None)
        self.test_nms_thresh = get_pb_arg_valf(predict_net, "nms_threshold", None)
        self.max_detections_per_image = get_pb_arg_vali(predict_net, "max_detections_per_image", None)

        # reuse RetinaNet's own inference code on the raw outputs
        for meth in _RETINANET_INFERENCE_METHODS:
            setattr(self, meth, functools.partial(getattr(meta_arch.RetinaNet, meth), self))

        def f(batched_inputs, c2_inputs, c2_results):
            _, im_info = c2_inputs
            image_sizes = [[int(im[0]), int(im[1])] for im in im_info]
            dummy_images = ImageList(
                torch.randn((len(im_info), 3) + tuple(image_sizes[0])),
                image_sizes,
            )

            num_features = len([x for x in c2_results.keys() if x.startswith("box_cls_")])
            if num_features == 0:
                raise OperatorInputError(
                    f"RetinaNet outputs: no 'box_cls_<i>' output blob, expected one per feature level "
                    f"(the predict net's outputs: {sorted(c2_results)})"
                )
            pred_logits = [_output(c2_results, f"box_cls_{i}", (4,), where="RetinaNet outputs") for i in range(num_features)]
            pred_anchor_deltas = [
                _output(c2_results, f"box_delta_{i}", (4,), where="RetinaNet outputs") for i in range(num_features)
            ]

            # For each feature level, feature should have the same batch size and
            # spatial dimension as the box_cls and box_delta.
            dummy_features = [x.clone()[:, 0:0, :, :] for x in pred_logits]
            # self.num_classes can be inferred
            self.num_classes = pred_logits[0].shape[1] // (pred_anchor_deltas[0].shape[1] // 4)

            results = self.forward_inference(dummy_images, dummy_features, [pred_logits, pred_anchor_deltas])
            return meta_arch.GeneralizedRCNN._postprocess(results, batched_inputs, image_sizes)

        return f


META_ARCH_CAFFE2_EXPORT_TYPE_MAP: dict[str, type[Caffe2MetaArch]] = {
    "GeneralizedRCNN": Caffe2GeneralizedRCNN,
    "PanopticFPN": Caffe2PanopticFPN,
    "RetinaNet": Caffe2RetinaNet,
}
