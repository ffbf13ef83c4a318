"""Loss-side names of detectron2 v0.6's model modules import from the same modules here: the
ROI-head losses raise TrainingOnlyError when called; fvcore's focal losses (which upstream's
retinanet.py imports) are fvcore's own functions."""

from __future__ import annotations

import importlib
import math

import pytest
import torch

from detectron2_export.utils.training_only import TrainingOnlyError

# module -> the training-only names detectron2 v0.6 defines there
TRAINING_ONLY = {
    "modeling.roi_heads.fast_rcnn": ["_log_classification_stats"],
    "modeling.roi_heads.mask_head": ["mask_rcnn_loss"],
    "modeling.roi_heads.keypoint_head": ["keypoint_rcnn_loss"],
    "modeling.roi_heads.roi_heads": ["select_foreground_proposals", "select_proposals_with_visible_keypoints"],
    "modeling.roi_heads": ["select_foreground_proposals"],
}


@pytest.mark.parametrize("path", sorted(f"{m}.{n}" for m, names in TRAINING_ONLY.items() for n in names))
def test_roi_head_losses_raise_when_called(path):
    module, name = path.rsplit(".", 1)
    mod = importlib.import_module(f"detectron2_export.{module}")
    fn = getattr(mod, name)
    if not name.startswith("_"):
        assert name in mod.__all__
    with pytest.raises(TrainingOnlyError, match=rf"roi_heads\.\w+\.{name} is training-only"):
        fn(torch.zeros(2, 3), [])
    with pytest.raises(NotImplementedError):
        fn()


def test_inference_names_unchanged_beside_the_losses():
    from detectron2_export.modeling.roi_heads import fast_rcnn, keypoint_head, mask_head

    assert callable(fast_rcnn.fast_rcnn_inference) and fast_rcnn.fast_rcnn_inference.__module__ == fast_rcnn.__name__
    assert mask_head.mask_rcnn_inference.__module__ == mask_head.__name__
    assert keypoint_head.keypoint_rcnn_inference.__module__ == keypoint_head.__name__


def test_retinanet_focal_losses_are_fvcores():
    import fvcore.nn

    from detectron2_export.modeling.meta_arch import retinanet

    assert retinanet.sigmoid_focal_loss_jit is fvcore.nn.sigmoid_focal_loss_jit
    assert retinanet.sigmoid_focal_loss is fvcore.nn.sigmoid_focal_loss
    # hand case: logit 0 (p = 0.5), alpha 0.25, gamma 2: target 1 -> 0.25 * 0.5**2 * log 2,
    # target 0 -> 0.75 * 0.5**2 * log 2
    loss = retinanet.sigmoid_focal_loss(torch.zeros(2), torch.tensor([1.0, 0.0]), alpha=0.25, gamma=2.0)
    torch.testing.assert_close(loss, torch.tensor([0.0625, 0.1875]) * math.log(2), rtol=1e-6, atol=0)
    with pytest.raises(AttributeError, match="has no attribute 'focal_loss'"):
        retinanet.focal_loss


def test_box_regression_fvcore_losses_still_served():
    import fvcore.nn

    from detectron2_export.modeling import box_regression

    assert box_regression.giou_loss is fvcore.nn.giou_loss
    assert box_regression.smooth_l1_loss is fvcore.nn.smooth_l1_loss
