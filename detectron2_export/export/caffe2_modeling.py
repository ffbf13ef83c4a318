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
import types
from typing import Any, Callable

import numpy as np
import torch

from ..modeling import meta_arch
from ..modeling.anchor_generator import DefaultAnchorGenerator
from ..modeling.box_regression import Box2BoxTransform
from ..modeling.meta_arch.panoptic_fpn import combine_semantic_and_instance_outputs
from ..modeling.postprocessing import detector_postprocess, sem_seg_postprocess
from ..modeling.roi_heads import keypoint_head
from ..structures import Boxes, ImageList, Instances, RotatedBoxes
from ..errors import ExportError
from .c10 import Caffe2Compatible
from .caffe2_patch import ROIHeadsPatcher, patch_generalized_rcnn
from .protobuf_utils import (
    check_set_pb_arg,
    get_pb_arg_floats,
    get_pb_arg_valf,
    get_pb_arg_vali,
    get_pb_arg_vals,
)
from .shared import alias, mock_torch_nn_functional_interpolate

logger = logging.getLogger(__name__)


def assemble_rcnn_outputs_by_name(
    image_sizes: list[list[int]], tensor_outputs: dict[str, torch.Tensor], force_mask_on: bool = False
) -> list[Instances]:
    """Raw R-CNN net outputs (by blob name) -> one detectron2 ``Instances`` in network-input size."""
    assert len(image_sizes) == 1
    result = Instances(tuple(image_sizes[0]))

    bbox_nms = tensor_outputs["bbox_nms"]
    score_nms = tensor_outputs["score_nms"]
    class_nms = tensor_outputs["class_nms"]
    assert bbox_nms is not None and score_nms is not None and class_nms is not None
    if bbox_nms.shape[1] == 5:
        result.pred_boxes = RotatedBoxes(bbox_nms)
    else:
        result.pred_boxes = Boxes(bbox_nms)
    result.scores = score_nms
    result.pred_classes = class_nms.to(torch.int64)

    mask_fcn_probs = tensor_outputs.get("mask_fcn_probs", None)
    if mask_fcn_probs is not None:
        num_masks = mask_fcn_probs.shape[0]
        class_pred = result.pred_classes
        indices = torch.arange(num_masks, device=class_pred.device)
        result.pred_masks = mask_fcn_probs[indices, class_pred][:, None]
    elif force_mask_on:
        result.pred_masks = torch.zeros([0, 1, 0, 0], dtype=torch.uint8)

    keypoints_out = tensor_outputs.get("keypoints_out", None)
    kps_score = tensor_outputs.get("kps_score", None)
    if keypoints_out is not None:
        # (N, 4, #keypoints) rows x, y, score, prob -> (N, #keypoints, 3) with the heatmap score
        result.pred_keypoints = keypoints_out.transpose(1, 2)[:, :, [0, 1, 2]]
    elif kps_score is not None:
        keypoint_head.keypoint_rcnn_inference(kps_score, [result])
    return [result]


def _cast_to_f32(f64: float) -> float:
    return float(np.float32(f64))


def set_caffe2_compatible_tensor_mode(model: torch.nn.Module, enable: bool = True) -> None:
    def _fn(m: torch.nn.Module) -> None:
        if isinstance(m, Caffe2Compatible):
            m.tensor_mode = enable

    model.apply(_fn)


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
    normalisation" difference, SPEC 3.3/3.14, which costs ~0.3 segm AP on small images)."""
    assert all(isinstance(x, dict) for x in batched_inputs)
    assert all(x["image"].dim() == 3 for x in batched_inputs)

    images = [x["image"].to(torch.float32) for x in batched_inputs]
    images = ImageList.from_tensors(images, size_divisibility)
    if pad_value is not None:
        fill = torch.as_tensor(pad_value, dtype=torch.float32).view(-1, 1, 1)
        for padded, (h, w) in zip(images.tensor, images.image_sizes):
            padded[:, h:, :] = fill
            padded[:, :, w:] = fill

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
        return [_cast_to_f32(v) for v in self._wrapped_model.pixel_mean.flatten().tolist()]

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


def _use_heatmap_max_keypoint(cfg) -> bool:
    try:
        return bool(cfg.EXPORT_CAFFE2.USE_HEATMAP_MAX_KEYPOINT)
    except AttributeError:
        return False


class Caffe2GeneralizedRCNN(Caffe2MetaArch):
    def __init__(self, cfg, torch_model: torch.nn.Module, enable_tensor_mode: bool = True) -> None:
        assert isinstance(torch_model, meta_arch.GeneralizedRCNN)
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
        assert isinstance(torch_model, meta_arch.PanopticFPN)
        torch_model = patch_generalized_rcnn(torch_model)
        super().__init__(cfg, torch_model)
        self.roi_heads_patcher = ROIHeadsPatcher(
            self._wrapped_model.roi_heads, _use_heatmap_max_keypoint(cfg)
        )

    @mock_torch_nn_functional_interpolate()
    def forward(self, inputs):
        assert self.tensor_mode
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
            predict_net, "combine_overlap_threshold", "f", _cast_to_f32(model.combine_overlap_thresh)
        )
        check_set_pb_arg(predict_net, "combine_stuff_area_limit", "i", model.combine_stuff_area_thresh)
        check_set_pb_arg(
            predict_net,
            "combine_instances_confidence_threshold",
            "f",
            _cast_to_f32(model.combine_instances_score_thresh),
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
            sem_seg_results = c2_results["sem_seg"]

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
        assert isinstance(torch_model, meta_arch.RetinaNet)
        super().__init__(cfg, torch_model)

    @mock_torch_nn_functional_interpolate()
    def forward(self, inputs):
        assert self.tensor_mode
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
        check_set_pb_arg(predict_net, "score_threshold", "f", _cast_to_f32(model.test_score_thresh))
        check_set_pb_arg(predict_net, "topk_candidates", "i", model.test_topk_candidates)
        check_set_pb_arg(predict_net, "nms_threshold", "f", _cast_to_f32(model.test_nms_thresh))
        check_set_pb_arg(predict_net, "max_detections_per_image", "i", model.max_detections_per_image)
        check_set_pb_arg(
            predict_net,
            "bbox_reg_weights",
            "floats",
            [_cast_to_f32(w) for w in model.box2box_transform.weights],
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
        spec = json.loads(raw.decode("ascii"))
        cell_anchors = [torch.tensor(a, dtype=torch.float32).reshape(-1, 4) for a in spec["cell_anchors"]]
        generator = DefaultAnchorGenerator(
            sizes=[[32.0]] * len(cell_anchors),
            aspect_ratios=[[1.0]] * len(cell_anchors),
            strides=spec["strides"],
            offset=spec["offset"],
        )
        for buffer, value in zip(generator.cell_anchors, cell_anchors):
            buffer.resize_(value.shape).copy_(value)
        return generator

    @staticmethod
    def get_outputs_converter(predict_net, init_net) -> Callable:
        self: Any = types.SimpleNamespace()
        self.anchor_generator = Caffe2RetinaNet._decode_anchor_generator(predict_net)
        bbox_reg_weights = get_pb_arg_floats(predict_net, "bbox_reg_weights", None)
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
            pred_logits = [c2_results[f"box_cls_{i}"] for i in range(num_features)]
            pred_anchor_deltas = [c2_results[f"box_delta_{i}"] for i in range(num_features)]

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
