"""Keypoints (detectron2.structures.keypoints) and decoding of keypoint heatmaps."""

from typing import Any, List, Union

import numpy as np
import torch
from torch.nn import functional as F

__all__ = ["Keypoints", "heatmaps_to_keypoints"]


class Keypoints:
    """Keypoints of N instances: a float32 (N, K, 3) tensor of (x, y, visibility).

    Coordinates are continuous image coordinates (pixel i covers [i, i + 1)); visibility follows
    COCO (0 unlabeled, 1 labeled but invisible, 2 visible).
    """

    def __init__(self, keypoints: Union[torch.Tensor, np.ndarray, List[List[float]]]):
        device = keypoints.device if isinstance(keypoints, torch.Tensor) else torch.device("cpu")
        keypoints = torch.as_tensor(keypoints, dtype=torch.float32, device=device)
        assert keypoints.dim() == 3 and keypoints.shape[2] == 3, keypoints.shape
        self.tensor = keypoints

    def __len__(self) -> int:
        return self.tensor.size(0)

    def to(self, *args: Any, **kwargs: Any) -> "Keypoints":
        return type(self)(self.tensor.to(*args, **kwargs))

    @property
    def device(self):  # unannotated: TorchScript infers torch.device (a literal annotation fails)
        return self.tensor.device

    def __getitem__(self, item) -> "Keypoints":
        """Index the instances; an int gives Keypoints of one instance."""
        if isinstance(item, int):
            return Keypoints(self.tensor[item].unsqueeze(0))
        return Keypoints(self.tensor[item])

    def __repr__(self) -> str:
        return self.__class__.__name__ + "(num_instances={})".format(len(self.tensor))

    @staticmethod
    def cat(keypoints_list: List["Keypoints"]) -> "Keypoints":
        assert len(keypoints_list) > 0
        assert all(isinstance(keypoints, Keypoints) for keypoints in keypoints_list)
        return type(keypoints_list[0])(torch.cat([kpts.tensor for kpts in keypoints_list], dim=0))


@torch.jit.script_if_tracing
def heatmaps_to_keypoints(maps: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
    """Decode keypoint locations from heatmap logits.

    Args:
        maps: (R, K, S, S) heatmap logits of each ROI and keypoint.
        rois: (R, 4) XYXY boxes of the ROIs.

    Returns:
        (R, K, 4): (x, y, logit, score) per keypoint. Each ROI's maps are resized (bicubic) to
        ceil(box height) x ceil(box width); the argmax pixel d maps back to d + 0.5 (pixel centre,
        Heckbert 1990) rescaled by box size / ceil(box size). ``score`` is a softmax over the
        resized map normalised by the sum over the S x S map, so that scores of objects of
        different sizes are comparable.
    """
    offset_x = rois[:, 0]
    offset_y = rois[:, 1]

    widths = (rois[:, 2] - rois[:, 0]).clamp(min=1)
    heights = (rois[:, 3] - rois[:, 1]).clamp(min=1)
    widths_ceil = widths.ceil()
    heights_ceil = heights.ceil()

    num_rois, num_keypoints = maps.shape[:2]
    xy_preds = maps.new_zeros(rois.shape[0], num_keypoints, 4)

    width_corrections = widths / widths_ceil
    height_corrections = heights / heights_ceil

    keypoints_idx = torch.arange(num_keypoints, device=maps.device)

    for i in range(num_rois):
        outsize = (int(heights_ceil[i]), int(widths_ceil[i]))
        roi_map = F.interpolate(maps[[i]], size=outsize, mode="bicubic", align_corners=False)
        # reshape rather than squeeze: squeeze does not export to ONNX in scripting mode
        roi_map = roi_map.reshape(roi_map.shape[1:])  # (K, H, W)

        max_score, _ = roi_map.view(num_keypoints, -1).max(1)
        max_score = max_score.view(num_keypoints, 1, 1)
        tmp_full_resolution = (roi_map - max_score).exp_()
        tmp_pool_resolution = (maps[i] - max_score).exp_()
        roi_map_scores = tmp_full_resolution / tmp_pool_resolution.sum((1, 2), keepdim=True)

        w = roi_map.shape[2]
        pos = roi_map.view(num_keypoints, -1).argmax(1)

        x_int = pos % w
        y_int = (pos - x_int) // w

        assert (
            roi_map_scores[keypoints_idx, y_int, x_int] == roi_map_scores.view(num_keypoints, -1).max(1)[0]
        ).all()

        x = (x_int.float() + 0.5) * width_corrections[i]
        y = (y_int.float() + 0.5) * height_corrections[i]

        xy_preds[i, :, 0] = x + offset_x[i]
        xy_preds[i, :, 1] = y + offset_y[i]
        xy_preds[i, :, 2] = roi_map[keypoints_idx, y_int, x_int]
        xy_preds[i, :, 3] = roi_map_scores[keypoints_idx, y_int, x_int]

    return xy_preds
