import pytest
import torch
import torchvision

import detectron2_export.caffe2.library  # noqa: F401  (defines torch.ops._caffe2)
from detectron2_export.errors import OperatorArgumentError, OperatorInputError
from tests.caffe2.helpers import run_single_op

# detectron2's call (SPEC 3.7): background is the LAST score column, boxes have no background block
D2_ARGS = dict(input_boxes_include_bg_cls=False, output_classes_include_bg_cls=False, legacy_plus_one=False)


def box_nms(scores, boxes, batch_splits=None, *, score_thresh=0.05, nms=0.3, detections_per_im=100,
            soft_nms_enabled=False, soft_nms_method="linear", soft_nms_sigma=0.5, soft_nms_min_score_thres=0.001,
            rotated=False, cls_agnostic_bbox_reg=False, input_boxes_include_bg_cls=True,
            output_classes_include_bg_cls=True, legacy_plus_one=True):
    if batch_splits is None:
        batch_splits = torch.tensor([float(scores.shape[0])])
    return torch.ops._caffe2.BoxWithNMSLimit(
        scores, boxes, batch_splits, score_thresh, nms, detections_per_im, soft_nms_enabled, soft_nms_method,
        soft_nms_sigma, soft_nms_min_score_thres, rotated, cls_agnostic_bbox_reg, input_boxes_include_bg_cls,
        output_classes_include_bg_cls, legacy_plus_one,
    )


def three_rows(r0_c1=0.05, r2_c0=0.05):
    """Two foreground classes (+ background last); row 1 overlaps row 0 in class 0 and row 2 in class 1."""
    scores = torch.tensor([[0.9, r0_c1, 0.05], [0.8, 0.6, 0.0], [r2_c0, 0.7, 0.0]])
    boxes = torch.tensor([
        [0.0, 0, 10, 10, 0, 0, 10, 10],
        [1.0, 0, 11, 10, 50, 50, 60, 60],
        [100.0, 100, 110, 110, 51, 50, 61, 60],
    ])
    return scores, boxes


def test_hand_computed_detectron2_layout():
    scores, boxes = three_rows()
    out_scores, out_boxes, classes, splits, keeps, keeps_size = box_nms(scores, boxes, score_thresh=0.05, nms=0.5, **D2_ARGS)
    # the 0.05 scores are not above the threshold; rows 1 are suppressed (IoU 90 / 110)
    torch.testing.assert_close(out_scores, torch.tensor([0.9, 0.7]))
    torch.testing.assert_close(out_boxes, torch.tensor([[0.0, 0, 10, 10], [51.0, 50, 61, 60]]))
    torch.testing.assert_close(classes, torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(splits, torch.tensor([2.0]))
    assert keeps.dtype == torch.int32 and keeps.tolist() == [0, 2]
    assert keeps_size.dtype == torch.int32 and keeps_size.tolist() == [[0, 1, 1]]


def test_detections_per_im_regroups_class_major():
    scores, boxes = three_rows(r0_c1=0.05, r2_c0=0.06)
    out_scores, _, classes, splits, keeps, keeps_size = box_nms(
        scores, boxes, score_thresh=0.04, nms=0.5, detections_per_im=3, **D2_ARGS
    )
    # kept before the limit: class 0 rows (0, 2), class 1 rows (2, 0); the 3 best are .9, .7, .06
    torch.testing.assert_close(out_scores, torch.tensor([0.9, 0.06, 0.7]))
    torch.testing.assert_close(classes, torch.tensor([0.0, 0.0, 1.0]))
    assert keeps.tolist() == [0, 2, 2] and keeps_size.tolist() == [[0, 2, 1]]
    torch.testing.assert_close(splits, torch.tensor([3.0]))


def test_caffe2_layout_background_first():
    scores, boxes = three_rows()
    scores = scores[:, [2, 0, 1]]  # background first
    boxes = torch.cat((torch.zeros(3, 4), boxes), dim=1)  # with a background block
    out_scores, out_boxes, classes, *_ = box_nms(scores, boxes, nms=0.5, legacy_plus_one=False)
    torch.testing.assert_close(out_scores, torch.tensor([0.9, 0.7]))
    torch.testing.assert_close(classes, torch.tensor([1.0, 2.0]))  # output_classes_include_bg_cls
    torch.testing.assert_close(out_boxes, torch.tensor([[0.0, 0, 10, 10], [51.0, 50, 61, 60]]))


def test_class_agnostic_boxes():
    scores, boxes = three_rows()
    out_scores, out_boxes, classes, *_ = box_nms(scores, boxes[:, :4], nms=0.5, cls_agnostic_bbox_reg=True, **D2_ARGS)
    # class 1 now uses the class-0 boxes: rows 2 and 1 do not overlap any more
    torch.testing.assert_close(out_scores, torch.tensor([0.9, 0.7, 0.6]))
    torch.testing.assert_close(classes, torch.tensor([0.0, 1.0, 1.0]))
    torch.testing.assert_close(out_boxes, torch.tensor([[0.0, 0, 10, 10], [100.0, 100, 110, 110], [1.0, 0, 11, 10]]))


@pytest.mark.parametrize("legacy, count", [(False, 2), (True, 1)])
def test_legacy_plus_one(legacy, count):
    scores = torch.tensor([[0.9, 0.0], [0.8, 0.0]])
    boxes = torch.tensor([[0.0, 0, 1, 1], [1.0, 0, 2, 1]])  # IoU 0, or 2/6 with the +1
    out_scores, *_ = box_nms(scores, boxes, input_boxes_include_bg_cls=False, legacy_plus_one=legacy)
    assert out_scores.numel() == count


def test_batch_splits_per_image():
    scores, boxes = three_rows()
    scores, boxes = torch.cat((scores, scores[:1])), torch.cat((boxes, boxes[:1] + 5))
    out_scores, out_boxes, classes, splits, keeps, keeps_size = box_nms(
        scores, boxes, torch.tensor([3, 1], dtype=torch.int32), nms=0.5, **D2_ARGS
    )
    torch.testing.assert_close(out_scores, torch.tensor([0.9, 0.7, 0.9]))
    torch.testing.assert_close(splits, torch.tensor([2.0, 1.0]))
    assert keeps.tolist() == [0, 2, 0]  # relative to each image's first row
    assert keeps_size.tolist() == [[0, 1, 1], [0, 1, 0]]
    torch.testing.assert_close(out_boxes[2], torch.tensor([5.0, 5, 15, 15]))


def test_four_d_inputs():
    scores, boxes = three_rows()
    expected = box_nms(scores, boxes, nms=0.5, **D2_ARGS)
    got = box_nms(scores[:, :, None, None], boxes[:, :, None, None], nms=0.5, **D2_ARGS)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)


def test_empty():
    out = box_nms(torch.zeros(0, 3), torch.zeros(0, 8), torch.tensor([0.0]), **D2_ARGS)
    assert [tuple(t.shape) for t in out] == [(0,), (0, 4), (0,), (1,), (0,), (1, 3)]
    assert out[3].tolist() == [0.0] and out[5].tolist() == [[0, 0, 0]]


def test_soft_nms_linear_rescores_and_orders_by_pick():
    scores = torch.tensor([[0.9, 0.0], [0.8, 0.0], [0.7, 0.0]])
    boxes = torch.tensor([[0.0, 0, 10, 10], [0.0, 0, 10, 5], [20.0, 20, 30, 30]])  # IoU(0, 1) = 0.5
    out_scores, _, _, _, keeps, _ = box_nms(scores, boxes, soft_nms_enabled=True, **D2_ARGS)
    torch.testing.assert_close(out_scores, torch.tensor([0.9, 0.7, 0.4]))
    assert keeps.tolist() == [0, 2, 1]


def test_rotated_boxes():
    scores = torch.tensor([[0.9, 0.0], [0.8, 0.0], [0.7, 0.0]])
    boxes = torch.tensor([[0.0, 0, 10, 2, 0], [0.0, 0, 10, 2, 5], [0.0, 0, 10, 2, 90]])
    out_scores, out_boxes, *_ = box_nms(scores, boxes, nms=0.5, rotated=True, **D2_ARGS)
    torch.testing.assert_close(out_scores, torch.tensor([0.9, 0.7]))
    assert out_boxes.shape == (2, 5)


def reference_fast_rcnn_inference(scores, boxes, score_thresh, nms_thresh, topk):
    """A plain formulation: per-class score threshold, torchvision NMS, then global top-k."""
    num_fg = scores.shape[1] - 1
    dets = []
    for c in range(num_fg):
        rows = torch.nonzero(scores[:, c] > score_thresh).squeeze(1)
        keep = torchvision.ops.nms(boxes[rows, 4 * c:4 * c + 4], scores[rows, c], nms_thresh)
        dets += [(float(scores[r, c]), c, int(r)) for r in rows[keep].tolist()]
    dets.sort(key=lambda d: -d[0])
    return sorted(dets[:topk], key=lambda d: (d[1], -d[0]))


@pytest.mark.parametrize("topk", [100, 25])
def test_matches_per_class_threshold_torchvision_nms_topk(topk):
    g = torch.Generator().manual_seed(0)
    num_rows, num_fg = 120, 4
    scores = torch.softmax(torch.randn(num_rows, num_fg + 1, generator=g) * 2, dim=1)
    xy = torch.rand(num_rows, num_fg, 2, generator=g) * 60
    boxes = torch.cat((xy, xy + torch.rand(num_rows, num_fg, 2, generator=g) * 30 + 1), dim=2).reshape(num_rows, -1)
    out_scores, out_boxes, classes, splits, keeps, _ = box_nms(
        scores, boxes, score_thresh=0.05, nms=0.5, detections_per_im=topk, **D2_ARGS
    )
    expected = reference_fast_rcnn_inference(scores, boxes, 0.05, 0.5, topk)
    got = list(zip(out_scores.tolist(), classes.long().tolist(), keeps.tolist()))
    assert len(got) == len(expected) and splits.tolist() == [float(len(expected))]
    for (s, c, r), (es, ec, er) in zip(got, expected):
        assert (c, r) == (ec, er) and s == pytest.approx(es)
    for box, (_, c, r) in zip(out_boxes, got):
        torch.testing.assert_close(box, boxes[r, 4 * c:4 * c + 4])


def test_runtime_optional_batch_splits_and_errors():
    scores, boxes = three_rows()
    scores, boxes = scores[:, [2, 0, 1]], torch.cat((torch.zeros(3, 4), boxes), dim=1)
    got = run_single_op("BoxWithNMSLimit", [scores, boxes], num_outputs=3)
    expected = box_nms(scores, boxes)  # Caffe2 defaults: 0.05, nms 0.3, bg first, legacy_plus_one
    for a, b in zip(got, expected[:3]):
        torch.testing.assert_close(a, b)
    got = run_single_op("BoxWithNMSLimit", [scores, boxes, torch.tensor([3.0])], nms=0.5, detections_per_im=1)
    assert got[0].tolist() == [pytest.approx(0.9)] and len(got) == 6
    with pytest.raises(OperatorArgumentError, match=r"BoxWithNMSLimit: soft_nms_method='hard', expected 'linear' or 'gaussian'"):
        run_single_op("BoxWithNMSLimit", [scores, boxes], soft_nms_method="hard")
    with pytest.raises(OperatorInputError, match=r"boxes columns=8, expected 12"):
        run_single_op("BoxWithNMSLimit", [scores, boxes[:, 4:]])
    with pytest.raises(OperatorInputError, match=r"sum\(batch_splits\)=2, expected 3"):
        run_single_op("BoxWithNMSLimit", [scores, boxes, torch.tensor([2.0])])


def test_opcheck():
    scores, boxes = three_rows()
    args = (scores, boxes, torch.tensor([3.0]), 0.05, 0.5, 100, False, "linear", 0.5, 0.001, False, False, False, False, False)
    torch.library.opcheck(torch.ops._caffe2.BoxWithNMSLimit.default, args)
