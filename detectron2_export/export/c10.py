"""Caffe2-compatible replacements of detectron2 components (SPEC 3.5-3.9).

In "tensor mode" these consume and produce tensor-only data (``im_info``, 5-column rois) and call
the ``_caffe2`` detection operators, so that the traced graph maps one-to-one onto a Caffe2 net.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import ExportAssertionError
from ..layers import ROIAlignRotated, cat
from ..modeling import poolers
from ..modeling.proposal_generator import rpn
from ..modeling.roi_heads.cascade_rcnn import CascadeROIHeads
from ..modeling.roi_heads.keypoint_head import keypoint_rcnn_inference
from ..modeling.roi_heads.mask_head import mask_rcnn_inference
from ..structures import Boxes, ImageList, Instances, Keypoints, RotatedBoxes
from .caffe2_graph_ops import _ensure_caffe2_ops, alias, to_device


class Caffe2Boxes(Boxes):
    """A ``Boxes`` holding a 4, 5 (batch index + XYXY) or 6-column tensor, without validation."""

    def __init__(self, tensor: torch.Tensor) -> None:
        if not isinstance(tensor, torch.Tensor) or tensor.dim() != 2 or tensor.size(-1) not in (4, 5, 6):
            got = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise ExportAssertionError(f"Caffe2Boxes: tensor={got}, expected a (N, 4), (N, 5) or (N, 6) tensor")
        self.tensor = tensor


class InstancesList:
    """Tensor representation of a batch of ``Instances``: shared ``im_info`` (N, 3), a batch index
    per row, and an ordered dict of fields. ``flatten()`` gives the graph outputs in field order."""

    def __init__(self, im_info: torch.Tensor, indices: torch.Tensor, extra_fields: dict | None = None) -> None:
        self.im_info = im_info
        self.indices = indices
        self.batch_extra_fields = extra_fields or {}
        self.image_size = self.im_info

    def get_fields(self) -> dict:
        """Like ``Instances.get_fields``; ``(type, tensor)`` pairs are returned as their tensor."""
        ret = {}
        for k, v in self.batch_extra_fields.items():
            ret[k] = v
        return ret

    def has(self, name: str) -> bool:
        return name in self.batch_extra_fields

    def set(self, name: str, value: Any) -> None:
        # a (target type, tensor) pair counts the rows of its tensor
        data = value[1] if isinstance(value, tuple) else value
        data_len = data.shape[0] if isinstance(data, torch.Tensor) else len(data)
        if len(self.batch_extra_fields) and len(self) != data_len:
            raise ExportAssertionError(
                f"InstancesList.set({name!r}): adding a field of length {data_len} to a Instances of length {len(self)}"
            )
        self.batch_extra_fields[name] = value

    def __getattr__(self, name: str) -> Any:
        if name not in self.__dict__.get("batch_extra_fields", {}):
            raise AttributeError(f"Cannot find field '{name}' in the given Instances!")
        return self.batch_extra_fields[name]

    def __setattr__(self, name: str, val: Any) -> None:
        if name in ("im_info", "indices", "batch_extra_fields", "image_size"):
            super().__setattr__(name, val)
        else:
            self.set(name, val)

    def __len__(self) -> int:
        return len(self.indices)

    def flatten(self) -> list[torch.Tensor]:
        ret = []
        for _, v in self.batch_extra_fields.items():
            if isinstance(v, (Boxes, Keypoints)):
                ret.append(v.tensor)
            elif isinstance(v, tuple):
                ret.append(v[1])
            else:
                ret.append(v)
        return ret

    @staticmethod
    def to_d2_instances_list(instances_list: "InstancesList") -> list[Instances]:
        """Split by batch index into detectron2 ``Instances`` (boxes keep their last 4 columns)."""
        if not isinstance(instances_list, InstancesList):
            if not all(isinstance(x, Instances) for x in instances_list):
                raise ExportAssertionError(
                    f"to_d2_instances_list: got {[type(x).__name__ for x in instances_list]}, "
                    "expected an InstancesList or a list of Instances"
                )
            return instances_list
        ret = []
        for i, info in enumerate(instances_list.im_info):
            instances = Instances(torch.Size([int(info[0].item()), int(info[1].item())]))
            ids = instances_list.indices == i
            for k, v in instances_list.batch_extra_fields.items():
                if isinstance(v, torch.Tensor):
                    instances.set(k, v[ids])
                    continue
                if isinstance(v, Boxes):
                    instances.set(k, v[ids, -4:])
                    continue
                target_type, tensor_source = v
                if not isinstance(tensor_source, torch.Tensor) or len(tensor_source) != len(instances_list.indices):
                    raise ExportAssertionError(
                        f"to_d2_instances_list: field {k!r} holds {type(tensor_source).__name__} "
                        f"{tuple(getattr(tensor_source, 'shape', ()))}, expected a tensor of "
                        f"{len(instances_list.indices)} rows (one per instance)"
                    )
                tensor_source = tensor_source[ids]
                if issubclass(target_type, Boxes):
                    instances.set(k, Boxes(tensor_source[:, -4:]))
                elif issubclass(target_type, Keypoints):
                    instances.set(k, Keypoints(tensor_source))
                elif issubclass(target_type, torch.Tensor):
                    instances.set(k, tensor_source)
                else:
                    raise ValueError(f"Can't handle target type: {target_type}")
            ret.append(instances)
        return ret


def _require_one_instances_list(where: str, pred_instances: list) -> None:
    if len(pred_instances) != 1:
        raise ExportAssertionError(
            f"{where}: {len(pred_instances)} InstancesList, expected one holding the whole batch"
        )


def _require_eval(module: torch.nn.Module) -> None:
    if module.training:
        raise ExportAssertionError(
            f"{type(module).__name__} is in training mode; the Caffe2 rewrite runs inference only: call model.eval()"
        )


class Caffe2Compatible:
    """Mixin: a ``tensor_mode`` switch, off until the meta-architecture wrapper turns it on."""

    def _get_tensor_mode(self) -> bool:
        return self._tensor_mode

    def _set_tensor_mode(self, v: bool) -> None:
        self._tensor_mode = v

    tensor_mode = property(_get_tensor_mode, _set_tensor_mode)


class Caffe2RPN(Caffe2Compatible, rpn.RPN):
    """RPN whose proposals come from ``GenerateProposals`` per level + ``CollectRpnProposals``."""

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super(Caffe2Compatible, cls).from_config(cfg, input_shape)
        weights = tuple(cfg.MODEL.RPN.BBOX_REG_WEIGHTS)
        if weights not in ((1.0, 1.0, 1.0, 1.0), (1.0, 1.0, 1.0, 1.0, 1.0)):
            raise ExportAssertionError(
                f"Caffe2RPN: MODEL.RPN.BBOX_REG_WEIGHTS={weights}, expected all ones "
                "(GenerateProposals decodes with unit weights)"
            )
        return ret

    def _generate_proposals(self, images, objectness_logits_pred, anchor_deltas_pred, gt_instances=None):
        if not isinstance(images, ImageList):
            raise ExportAssertionError(f"Caffe2RPN: images is a {type(images).__name__}, expected an ImageList")
        if self.tensor_mode:
            im_info = images.image_sizes
        else:
            im_info = torch.tensor([[im_sz[0], im_sz[1], 1.0] for im_sz in images.image_sizes]).to(
                images.tensor.device
            )
        if not isinstance(im_info, torch.Tensor):
            raise ExportAssertionError(
                f"Caffe2RPN: image_sizes in tensor mode is a {type(im_info).__name__}, expected the im_info tensor"
            )
        _ensure_caffe2_ops()

        rpn_rois_list = []
        rpn_roi_probs_list = []
        for scores, bbox_deltas, cell_anchors_tensor, feat_stride in zip(
            objectness_logits_pred,
            anchor_deltas_pred,
            list(self.anchor_generator.cell_anchors),
            self.anchor_generator.strides,
        ):
            scores = scores.detach()
            bbox_deltas = bbox_deltas.detach()
            rpn_rois, rpn_roi_probs = torch.ops._caffe2.GenerateProposals(
                scores,
                bbox_deltas,
                im_info,
                cell_anchors_tensor,
                spatial_scale=1.0 / feat_stride,
                pre_nms_topN=self.pre_nms_topk[self.training],
                post_nms_topN=self.post_nms_topk[self.training],
                nms_thresh=self.nms_thresh,
                min_size=self.min_box_size,
                angle_bound_on=True,
                angle_bound_lo=-180,
                angle_bound_hi=180,
                clip_angle_thresh=1.0,
                legacy_plus_one=False,
            )
            rpn_rois_list.append(rpn_rois)
            rpn_roi_probs_list.append(rpn_roi_probs)

        if len(objectness_logits_pred) == 1:
            rpn_rois = rpn_rois_list[0]
            rpn_roi_probs = rpn_roi_probs_list[0]
        else:
            rpn_post_nms_topN = self.post_nms_topk[self.training]
            device = rpn_rois_list[0].device
            input_list = [to_device(x, "cpu") for x in (rpn_rois_list + rpn_roi_probs_list)]
            feature_strides = list(self.anchor_generator.strides)
            rpn_min_level = int(math.log2(feature_strides[0]))
            rpn_max_level = int(math.log2(feature_strides[-1]))
            if rpn_max_level - rpn_min_level + 1 != len(rpn_rois_list):
                raise ExportAssertionError(
                    f"Caffe2RPN: feature strides {feature_strides}, expected consecutive powers of two "
                    "(CollectRpnProposals requires continuous levels)"
                )
            rpn_rois = torch.ops._caffe2.CollectRpnProposals(
                input_list,
                # CollectRpnProposals only uses the number of levels, not the actual values.
                rpn_max_level=2 + len(rpn_rois_list) - 1,
                rpn_min_level=2,
                rpn_post_nms_topN=rpn_post_nms_topN,
            )
            rpn_rois = to_device(rpn_rois, device)
            rpn_roi_probs = []

        proposals = self.c2_postprocess(im_info, rpn_rois, rpn_roi_probs, self.tensor_mode)
        return proposals, {}

    def forward(self, images, features, gt_instances=None):
        _require_eval(self)
        features = [features[f] for f in self.in_features]
        objectness_logits_pred, anchor_deltas_pred = self.rpn_head(features)
        return self._generate_proposals(images, objectness_logits_pred, anchor_deltas_pred, gt_instances)

    @staticmethod
    def c2_postprocess(im_info, rpn_rois, rpn_roi_probs, tensor_mode):
        proposals = InstancesList(
            im_info=im_info,
            indices=rpn_rois[:, 0],
            extra_fields={
                "proposal_boxes": Caffe2Boxes(rpn_rois),
                "objectness_logits": (torch.Tensor, rpn_roi_probs),
            },
        )
        if not tensor_mode:
            return InstancesList.to_d2_instances_list(proposals)
        return [proposals]


class Caffe2ROIPooler(Caffe2Compatible, poolers.ROIPooler):
    """ROIPooler as ``RoIAlign`` per level, with ``DistributeFpnProposals`` + ``BatchPermutation``."""

    @staticmethod
    def c2_preprocess(box_lists):
        if not all(isinstance(x, Boxes) for x in box_lists):
            raise ExportAssertionError(
                f"Caffe2ROIPooler: box_lists of {[type(x).__name__ for x in box_lists]}, expected Boxes"
            )
        if all(isinstance(x, Caffe2Boxes) for x in box_lists):
            # input is pure-tensor based: one (R, 5) tensor for the whole batch
            if len(box_lists) != 1:
                raise ExportAssertionError(
                    f"Caffe2ROIPooler: {len(box_lists)} Caffe2Boxes, expected one holding the whole batch"
                )
            return box_lists[0].tensor
        return poolers.convert_boxes_to_pooler_format(box_lists)

    def _roi_align_op(self, pooler) -> tuple[Any, bool]:
        if isinstance(pooler, ROIAlignRotated):
            return torch.ops._caffe2.RoIAlignRotated, True
        return torch.ops._caffe2.RoIAlign, bool(pooler.aligned)

    def _pool(self, x_level, rois, pooler):
        op, aligned = self._roi_align_op(pooler)
        return op(
            x_level,
            rois,
            order="NCHW",
            spatial_scale=float(pooler.spatial_scale),
            pooled_h=int(self.output_size[0]),
            pooled_w=int(self.output_size[1]),
            sampling_ratio=int(pooler.sampling_ratio),
            aligned=aligned,
        )

    def forward(self, x, box_lists):
        _require_eval(self)
        _ensure_caffe2_ops()
        pooler_fmt_boxes = self.c2_preprocess(box_lists)
        num_level_assignments = len(self.level_poolers)

        if num_level_assignments == 1:
            x0 = x[0]
            if x0.is_quantized:
                x0 = x0.dequantize()
            return self._pool(x0, pooler_fmt_boxes, self.level_poolers[0])

        device = pooler_fmt_boxes.device
        if self.max_level - self.min_level + 1 != 4:
            raise ExportAssertionError(
                f"Caffe2ROIPooler: levels {self.min_level}..{self.max_level}, expected 4 levels "
                "(DistributeFpnProposals supports exactly 4)"
            )
        fpn_outputs = torch.ops._caffe2.DistributeFpnProposals(
            to_device(pooler_fmt_boxes, "cpu"),
            roi_canonical_scale=self.canonical_box_size,
            roi_canonical_level=self.canonical_level,
            roi_max_level=self.max_level,
            roi_min_level=self.min_level,
            legacy_plus_one=False,
        )
        fpn_outputs = [to_device(x, device) for x in fpn_outputs]

        rois_fpn_list = fpn_outputs[:-1]
        rois_idx_restore_int32 = fpn_outputs[-1]

        roi_feat_fpn_list = [
            self._pool(x_level, roi_fpn, pooler)
            for roi_fpn, x_level, pooler in zip(rois_fpn_list, x, self.level_poolers)
        ]
        roi_feat_shuffled = cat(roi_feat_fpn_list, dim=0)
        if roi_feat_shuffled.numel() == 0 or rois_idx_restore_int32.numel() == 0:
            raise ExportAssertionError(
                "Caffe2 export requires tracing with a model checkpoint + input that can produce valid"
                " detections. But no detections were obtained with the given checkpoint and input!"
            )
        return torch.ops._caffe2.BatchPermutation(roi_feat_shuffled, rois_idx_restore_int32)


class Caffe2FastRCNNOutputsInference:
    """Replaces ``FastRCNNOutputLayers.inference``: softmax, ``BBoxTransform``, ``BoxWithNMSLimit``.

    The steps are also methods of their own, which the cascade rewrite
    (:class:`Caffe2CascadeROIHeads`) runs once per stage.
    """

    def __init__(self, tensor_mode: bool) -> None:
        self.tensor_mode = tensor_mode

    def __call__(self, box_predictor, predictions, proposals):
        _ensure_caffe2_ops()
        class_logits, box_regression = predictions
        class_prob = self.class_probabilities(box_predictor, class_logits)
        rois, im_info = self.rois_and_im_info(box_predictor, proposals)
        roi_pred_bbox, roi_batch_splits = self.bbox_transform(box_predictor, rois, box_regression, im_info)
        return self.nms(box_predictor, class_prob, roi_pred_bbox, roi_batch_splits, im_info, rois)

    @staticmethod
    def _box_dim_and_weights(box_predictor) -> tuple[int, Any]:
        """(4, weights) or, for rotated boxes, (5, the 4 weights BBoxTransform takes)."""
        weights = box_predictor.box2box_transform.weights
        if len(weights) != 5:
            return 4, weights
        if weights[4] != 1:
            raise ExportAssertionError(
                f"box2box_transform weights={tuple(weights)}: the weights for Rotated BBoxTransform in C2 have "
                "only 4 dimensions, thus enforcing the angle weight to be 1 for now"
            )
        return 5, weights[:4]

    @staticmethod
    def class_probabilities(box_predictor, class_logits: torch.Tensor) -> torch.Tensor:
        """(R, K+1) probabilities as eager ``predict_probs`` (the last column is background)."""
        num_classes = box_predictor.num_classes
        if num_classes + 1 == class_logits.shape[1]:
            # A sigmoid classifier (USE_SIGMOID_CE / USE_FED_LOSS) also has K+1 logits; as in eager
            # predict_probs, each is a sigmoid, and BoxWithNMSLimit ignores the background column.
            if getattr(box_predictor, "use_sigmoid_ce", False):
                return torch.sigmoid(class_logits)
            return F.softmax(class_logits, -1)
        if num_classes != class_logits.shape[1]:
            raise ExportAssertionError(
                f"box predictor: {class_logits.shape[1]} class logits, expected {num_classes} (sigmoid) "
                f"or {num_classes + 1} (softmax with background)"
            )
        class_prob = torch.sigmoid(class_logits)
        # BoxWithNMSLimit infers K from the number of columns: append a background placeholder.
        return torch.cat((class_prob, torch.zeros(class_prob.shape[0], 1).to(class_prob)), dim=1)

    def rois_and_im_info(self, box_predictor, proposals) -> tuple[torch.Tensor, Any]:
        """The proposals as (R, 1 + box_dim) RoIs with batch indices, and im_info."""
        box_dim, _ = self._box_dim_and_weights(box_predictor)
        input_tensor_mode = proposals[0].proposal_boxes.tensor.shape[1] == box_dim + 1

        proposal_boxes = proposals[0].proposal_boxes
        if isinstance(proposal_boxes, Caffe2Boxes):
            rois = Caffe2Boxes.cat([p.proposal_boxes for p in proposals])
        elif isinstance(proposal_boxes, RotatedBoxes):
            rois = RotatedBoxes.cat([p.proposal_boxes for p in proposals])
        elif isinstance(proposal_boxes, Boxes):
            rois = Boxes.cat([p.proposal_boxes for p in proposals])
        else:
            raise NotImplementedError(
                f'Expected proposals[0].proposal_boxes to be type "Boxes", instead got {type(proposal_boxes)}'
            )

        rois = rois.tensor
        device, dtype = rois.device, rois.dtype

        if input_tensor_mode:
            return rois, proposals[0].image_size
        im_info = torch.tensor([[sz[0], sz[1], 1.0] for sz in [x.image_size for x in proposals]])
        batch_ids = cat(
            [torch.full((b, 1), i, dtype=dtype, device=device) for i, b in enumerate(len(p) for p in proposals)],
            dim=0,
        )
        return torch.cat([batch_ids, rois], dim=1), im_info

    def bbox_transform(self, box_predictor, rois, box_regression, im_info) -> tuple[torch.Tensor, torch.Tensor]:
        """``BBoxTransform``: the deltas decoded against the RoIs with the predictor's weights,
        clipped to the image; returns (boxes (R, K*box_dim), batch splits)."""
        box_dim, weights = self._box_dim_and_weights(box_predictor)
        if box_regression.shape[1] % box_dim:
            raise ExportAssertionError(
                f"BBoxTransform: box regression of width {box_regression.shape[1]}, expected a multiple of {box_dim}"
            )
        roi_pred_bbox, roi_batch_splits = torch.ops._caffe2.BBoxTransform(
            to_device(rois, "cpu"),
            to_device(box_regression, "cpu"),
            to_device(im_info, "cpu"),
            weights=[float(w) for w in weights],
            apply_scale=True,
            rotated=box_dim == 5,
            angle_bound_on=True,
            angle_bound_lo=-180,
            angle_bound_hi=180,
            clip_angle_thresh=1.0,
            legacy_plus_one=False,
        )
        return to_device(roi_pred_bbox, rois.device), to_device(roi_batch_splits, rois.device)

    def nms(self, box_predictor, class_prob, roi_pred_bbox, roi_batch_splits, im_info, rois):
        """``BoxWithNMSLimit`` with the predictor's test thresholds, and the outputs by name
        (``bbox_nms``, ``score_nms``, ...): (results, kept indices) as ``inference`` returns."""
        device, dtype = rois.device, rois.dtype
        box_dim, _ = self._box_dim_and_weights(box_predictor)
        nms_outputs = torch.ops._caffe2.BoxWithNMSLimit(
            to_device(class_prob, "cpu"),
            to_device(roi_pred_bbox, "cpu"),
            to_device(roi_batch_splits, "cpu"),
            score_thresh=float(box_predictor.test_score_thresh),
            nms=float(box_predictor.test_nms_thresh),
            detections_per_im=int(box_predictor.test_topk_per_image),
            soft_nms_enabled=False,
            soft_nms_method="linear",
            soft_nms_sigma=0.5,
            soft_nms_min_score_thres=0.001,
            rotated=box_dim == 5,
            cls_agnostic_bbox_reg=roi_pred_bbox.shape[1] // box_dim == 1,
            input_boxes_include_bg_cls=False,
            output_classes_include_bg_cls=False,
            legacy_plus_one=False,
        )
        roi_score_nms = to_device(nms_outputs[0], device)
        roi_bbox_nms = to_device(nms_outputs[1], device)
        roi_class_nms = to_device(nms_outputs[2], device)
        roi_batch_splits_nms = to_device(nms_outputs[3], device)
        roi_keeps_nms = to_device(nms_outputs[4], device)
        roi_keeps_size_nms = to_device(nms_outputs[5], device)
        if not self.tensor_mode:
            roi_class_nms = roi_class_nms.to(torch.int64)

        # A python loop over detection counts: bakes the count into the trace (batch size 1 only).
        roi_batch_ids = cat(
            [
                torch.full((b, 1), i, dtype=dtype, device=device)
                for i, b in enumerate(int(x.item()) for x in roi_batch_splits_nms)
            ],
            dim=0,
        )

        roi_class_nms = alias(roi_class_nms, "class_nms")
        roi_score_nms = alias(roi_score_nms, "score_nms")
        roi_bbox_nms = alias(roi_bbox_nms, "bbox_nms")
        roi_batch_splits_nms = alias(roi_batch_splits_nms, "batch_splits_nms")
        roi_keeps_nms = alias(roi_keeps_nms, "keeps_nms")
        roi_keeps_size_nms = alias(roi_keeps_size_nms, "keeps_size_nms")

        results = InstancesList(
            im_info=im_info,
            indices=roi_batch_ids[:, 0],
            extra_fields={
                "pred_boxes": Caffe2Boxes(roi_bbox_nms),
                "scores": roi_score_nms,
                "pred_classes": roi_class_nms,
            },
        )

        if not self.tensor_mode:
            results = InstancesList.to_d2_instances_list(results)
            batch_splits = roi_batch_splits_nms.int().tolist()
            kept_indices = list(roi_keeps_nms.to(torch.int64).split(batch_splits))
        else:
            results = [results]
            kept_indices = [roi_keeps_nms]

        return results, kept_indices


class Caffe2CascadeROIHeads(Caffe2Compatible, CascadeROIHeads):
    """CascadeROIHeads with Caffe2 operators (beyond detectron2, whose Caffe2 export refused it).

    Each stage is ``RoIAlign`` (through :class:`Caffe2ROIPooler`) + its box head + predictor +
    ``BBoxTransform`` with that stage's weights (which also clips to the image, as eager clips
    the next stage's proposals); the class probabilities of the stages are averaged, and the
    last stage's boxes go through ``BoxWithNMSLimit``. Outputs (``bbox_nms``, ``score_nms``,
    ``class_nms``, ...) are those of the standard heads, so masks, keypoints and
    ``Caffe2Model`` work unchanged.
    """

    def _forward_box(self, features, proposals):
        if not self.tensor_mode:
            return super()._forward_box(features, proposals)
        _ensure_caffe2_ops()
        steps = Caffe2FastRCNNOutputsInference(self.tensor_mode)
        features = [features[f] for f in self.box_in_features]
        rois, im_info = steps.rois_and_im_info(self.box_predictor[0], proposals)
        mean_prob = None
        for k, predictor in enumerate(self.box_predictor):
            if k > 0:  # the previous stage's boxes, with the batch indices of their RoIs
                rois = torch.cat([rois[:, :1], boxes], dim=1)
            box_features = self.box_head[k](self.box_pooler(features, [Caffe2Boxes(rois)]))
            class_logits, box_regression = predictor(box_features)
            prob = steps.class_probabilities(predictor, class_logits)
            mean_prob = prob if mean_prob is None else mean_prob + prob
            boxes, batch_splits = steps.bbox_transform(predictor, rois, box_regression, im_info)
        mean_prob = mean_prob * (1.0 / self.num_cascade_stages)
        results, _ = steps.nms(self.box_predictor[-1], mean_prob, boxes, batch_splits, im_info, rois)
        return results


class Caffe2MaskRCNNInference:
    """Replaces ``mask_rcnn_inference``: per-class sigmoid probabilities of every class."""

    def __call__(self, pred_mask_logits, pred_instances):
        if all(isinstance(x, InstancesList) for x in pred_instances):
            _require_one_instances_list("Caffe2MaskRCNNInference", pred_instances)
            mask_probs_pred = pred_mask_logits.sigmoid()
            mask_probs_pred = alias(mask_probs_pred, "mask_fcn_probs")
            pred_instances[0].set("pred_masks", mask_probs_pred)
        else:
            mask_rcnn_inference(pred_mask_logits, pred_instances)


class Caffe2KeypointRCNNInference:
    """Replaces ``keypoint_rcnn_inference``: raw heatmaps, or ``HeatmapMaxKeypoint`` when asked."""

    def __init__(self, use_heatmap_max_keypoint: bool) -> None:
        self.use_heatmap_max_keypoint = use_heatmap_max_keypoint

    def __call__(self, pred_keypoint_logits, pred_instances):
        output = alias(pred_keypoint_logits, "kps_score")
        if all(isinstance(x, InstancesList) for x in pred_instances):
            _require_one_instances_list("Caffe2KeypointRCNNInference", pred_instances)
            if self.use_heatmap_max_keypoint:
                _ensure_caffe2_ops()
                device = output.device
                output = torch.ops._caffe2.HeatmapMaxKeypoint(
                    to_device(output, "cpu"),
                    pred_instances[0].pred_boxes.tensor,
                    should_output_softmax=True,
                )
                output = to_device(output, device)
                output = alias(output, "keypoints_out")
            pred_instances[0].set("pred_keypoints", output)
        else:
            keypoint_rcnn_inference(pred_keypoint_logits, pred_instances)
        return pred_keypoint_logits
