"""detector_postprocess and sem_seg_postprocess on hand-made cases."""

import torch
import torch.nn.functional as F

from detectron2_export.modeling.postprocessing import detector_postprocess, sem_seg_postprocess
from detectron2_export.structures import Boxes, Instances, ROIMasks


def _detections() -> Instances:
    inst = Instances((10, 20))  # (height, width) of the network input
    inst.pred_boxes = Boxes(
        torch.tensor([[1.0, 1.0, 5.0, 5.0], [15.0, 2.0, 25.0, 8.0], [3.0, 3.0, 3.0, 6.0]])
    )
    inst.scores = torch.tensor([0.9, 0.8, 0.7])
    inst.pred_classes = torch.tensor([0, 1, 2])
    return inst


def test_boxes_scaled_clipped_and_empty_removed():
    out = detector_postprocess(_detections(), 20, 40)  # x2 in both directions
    assert out.image_size == (20, 40)
    # box 1 is clipped at x = 40; box 2 has zero width and is dropped
    torch.testing.assert_close(
        out.pred_boxes.tensor, torch.tensor([[2.0, 2.0, 10.0, 10.0], [30.0, 4.0, 40.0, 16.0]])
    )
    torch.testing.assert_close(out.scores, torch.tensor([0.9, 0.8]))
    assert out.pred_classes.tolist() == [0, 1]


def test_anisotropic_scale_and_proposals():
    inst = Instances((10, 20))
    inst.proposal_boxes = Boxes(torch.tensor([[2.0, 2.0, 10.0, 8.0]]))
    inst.objectness_logits = torch.tensor([3.0])
    out = detector_postprocess(inst, 5, 60)  # y x0.5, x x3
    torch.testing.assert_close(out.proposal_boxes.tensor, torch.tensor([[6.0, 1.0, 30.0, 4.0]]))


def test_masks_pasted_with_threshold():
    inst = _detections()[:1]
    inst.pred_masks = torch.ones(1, 1, 28, 28)  # (N, 1, M, M) probabilities
    out = detector_postprocess(inst, 20, 40)
    assert out.pred_masks.shape == (1, 20, 40) and out.pred_masks.dtype == torch.bool
    expected = torch.zeros(20, 40, dtype=torch.bool)
    expected[2:10, 2:10] = True  # box (2, 2, 10, 10): pixel centres 2.5 .. 9.5
    assert torch.equal(out.pred_masks[0], expected)

    inst = _detections()[:1]
    inst.pred_masks = ROIMasks(torch.full((1, 28, 28), 0.4))
    assert not detector_postprocess(inst, 20, 40).pred_masks.any()  # below mask_threshold=0.5
    inst = _detections()[:1]
    inst.pred_masks = ROIMasks(torch.full((1, 28, 28), 0.4))
    assert detector_postprocess(inst, 20, 40, mask_threshold=0.3).pred_masks.sum() == 64


def test_keypoints_scaled():
    inst = _detections()[:2]
    inst.pred_keypoints = torch.tensor([[[1.0, 2.0, 0.5]], [[3.0, 4.0, 0.25]]])
    out = detector_postprocess(inst, 30, 10)  # y x3, x x0.5
    torch.testing.assert_close(out.pred_keypoints, torch.tensor([[[0.5, 6.0, 0.5]], [[1.5, 12.0, 0.25]]]))


def test_tensor_output_size_while_tracing_style():
    out = detector_postprocess(_detections(), torch.tensor(20), torch.tensor(40))
    torch.testing.assert_close(out.pred_boxes.tensor[0], torch.tensor([2.0, 2.0, 10.0, 10.0]))


def test_sem_seg_postprocess_crops_padding_then_resizes():
    logits = torch.zeros(2, 8, 8)
    logits[:, :6, :5] = torch.arange(30.0).reshape(6, 5)
    logits[:, 6:, :] = 100.0  # padding rows/cols must not leak into the output
    logits[:, :, 5:] = 100.0
    out = sem_seg_postprocess(logits, (6, 5), 12, 10)
    assert out.shape == (2, 12, 10)
    assert out.max() < 30
    expected = F.interpolate(logits[None, :, :6, :5], size=(12, 10), mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(out, expected)
    # bilinear (align_corners=False) x2 upsampling: output pixel 1 sits at input 0.25 -> 0.75*v0 + 0.25*v1
    torch.testing.assert_close(out[0, 0, 1], torch.tensor(0.25))
