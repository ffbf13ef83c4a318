"""``OnnxRuntimeModel``: a standard-ONNX export run by onnxruntime with detectron2's inputs and
outputs. What the graph leaves to it (documented per step in the README):

- masks: pasted into the image here (``paste_masks_in_image``) unless the graph pasted them;
- keypoints: decoded here from the graph's heatmaps (``heatmaps_to_keypoints``: a bicubic resize per
  detection to its own box size, which no batched ONNX operator expresses), then rescaled;
- panoptic segmentation: ``combine_semantic_and_instance_outputs`` of the graph's instances and
  semantic logits, with the thresholds stored in the file.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import onnx
import torch
from torch import nn

from ...errors import ExportError
from ...layers import paste_masks_in_image
from ...structures import Boxes, Instances
from .export import METADATA_KEY
from .io import INPUT_NAMES, batch_inputs


def model_source(path_or_model: Union[str, os.PathLike, onnx.ModelProto, bytes], where: str) -> Union[str, bytes]:
    """What ``onnxruntime.InferenceSession`` loads: a checked path, or the serialised model."""
    if isinstance(path_or_model, onnx.ModelProto):
        return path_or_model.SerializeToString()
    if isinstance(path_or_model, bytes):
        return path_or_model
    source = os.fspath(path_or_model)
    if not os.path.isfile(source):
        raise ExportError(f"{where}: {source}: no such file, expected a model.onnx written by export_onnx")
    return source


def _session(source: Union[str, bytes], providers, sess_options):
    import onnxruntime as ort

    name = source if isinstance(source, str) else "<onnx.ModelProto>"
    if sess_options is None:
        # measured (benchmarks/onnx_runtime.py): torch's thread count instead of one per core, and
        # no spinning of idle threads, 10-15% less CPU per image on the shared 2-core machine
        sess_options = ort.SessionOptions()
        sess_options.intra_op_num_threads = torch.get_num_threads()
        sess_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(source, sess_options, providers=providers or ["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types, not exported stably
        raise ExportError(f"OnnxRuntimeModel: {name}: onnxruntime could not load it: {e}") from e
    return session, name


class OnnxRuntimeModel(nn.Module):
    """Runs a file written by :func:`export_onnx`: ``model(inputs)`` takes detectron2's list of
    input dicts (all of them in one batch) and returns detectron2's list of output dicts.

    Args:
        path_or_model: a ``model.onnx`` path, or the ``onnx.ModelProto`` ``export_onnx`` returned.
        providers: onnxruntime execution providers (default: CPU).
        sess_options: an ``onnxruntime.SessionOptions`` (threads, profiling...); default: torch's
            number of threads, idle threads not spinning.
    """

    def __init__(self, path_or_model, providers: Optional[List[str]] = None, sess_options=None) -> None:
        super().__init__()
        self.source = model_source(path_or_model, "OnnxRuntimeModel")
        """The path, or the serialised model: what the session was loaded from (the profiler reloads it)."""
        self.session, self.name = _session(self.source, providers, sess_options)
        meta = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if meta is None:
            raise ExportError(f"OnnxRuntimeModel: {self.name}: no {METADATA_KEY!r} metadata, expected a file written by export_onnx")
        try:
            self.meta: Dict[str, Any] = json.loads(meta)
        except ValueError as e:
            raise ExportError(f"OnnxRuntimeModel: {self.name}: {METADATA_KEY!r} metadata is not JSON ({e})") from e
        if not isinstance(self.meta, dict):
            raise ExportError(f"OnnxRuntimeModel: {self.name}: {METADATA_KEY!r} metadata is a {type(self.meta).__name__}, expected an object")
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, batched_inputs: Sequence[Dict]) -> Dict[str, np.ndarray]:
        """The graph's raw outputs (batched numpy arrays, by name) for detectron2 inputs."""
        feeds = batch_inputs(batched_inputs)
        try:
            outputs = self.session.run(None, {name: feeds[name] for name in INPUT_NAMES})
        except Exception as e:
            raise ExportError(f"OnnxRuntimeModel: {self.name}: onnxruntime failed: {e}") from e
        return dict(zip(self.output_names, outputs))

    def forward(self, batched_inputs: Sequence[Dict]) -> List[Dict[str, Any]]:
        raw = self.run(batched_inputs)
        results = []
        for i, inputs in enumerate(batched_inputs):
            image_size = tuple(inputs["image"].shape[1:])
            out_size = (int(inputs.get("height", image_size[0])), int(inputs.get("width", image_size[1])))
            result: Dict[str, Any] = {}
            if "sem_seg" in raw:
                result["sem_seg"] = torch.from_numpy(raw["sem_seg"][i, :, : out_size[0], : out_size[1]].copy())
            if "num_instances" in raw:
                result["instances"] = self._instances(raw, i, image_size, out_size)
            if "panoptic" in self.meta and self.meta["panoptic"]["combine_on"]:
                result["panoptic_seg"] = self._panoptic(result["instances"], result["sem_seg"])
            results.append(result)
        return results

    def _instances(self, raw: Dict[str, np.ndarray], i: int, image_size, out_size) -> Instances:
        n = int(raw["num_instances"][i])
        instances = Instances(out_size)
        instances.pred_boxes = Boxes(torch.from_numpy(raw["pred_boxes"][i, :n].copy()))
        instances.scores = torch.from_numpy(raw["scores"][i, :n].copy())
        instances.pred_classes = torch.from_numpy(raw["pred_classes"][i, :n].copy())
        if "pred_masks" in raw:
            masks = torch.from_numpy(raw["pred_masks"][i, :n].copy())
            if self.meta["paste_masks"]:
                instances.pred_masks = masks[:, : out_size[0], : out_size[1]]
            else:
                instances.pred_masks = paste_masks_in_image(masks, instances.pred_boxes, out_size, threshold=0.5)
        if "pred_keypoint_heatmaps" in raw:
            instances.pred_keypoints, instances.pred_keypoint_heatmaps = _keypoints(
                raw["pred_keypoint_heatmaps"][i, :n], raw["heatmap_boxes"][i, :n], image_size, out_size
            )
        return instances

    def _panoptic(self, instances: Instances, sem_seg: torch.Tensor):
        from ...modeling.meta_arch.panoptic_fpn import combine_semantic_and_instance_outputs

        p = self.meta["panoptic"]
        return combine_semantic_and_instance_outputs(
            instances, sem_seg.argmax(dim=0), p["overlap_threshold"], p["stuff_area_thresh"], p["instances_score_thresh"]
        )


def _keypoints(heatmaps: np.ndarray, boxes: np.ndarray, image_size, out_size):
    """detectron2's keypoint decoding of (n, K, S, S) heatmaps in network-input (n, 4) boxes, then
    the rescale of ``detector_postprocess``; returns (n, K, 3) keypoints and the heatmaps."""
    from ...modeling.roi_heads.keypoint_head import keypoint_rcnn_inference

    heatmaps_t = torch.from_numpy(heatmaps.copy())
    holder = Instances(image_size, pred_boxes=Boxes(torch.from_numpy(boxes.copy())))
    keypoint_rcnn_inference(heatmaps_t, [holder])
    keypoints = holder.pred_keypoints.clone()
    keypoints[:, :, 0] *= out_size[1] / image_size[1]
    keypoints[:, :, 1] *= out_size[0] / image_size[0]
    return keypoints, holder.pred_keypoint_heatmaps
