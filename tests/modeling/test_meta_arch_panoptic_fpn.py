"""PanopticFPN and combine_semantic_and_instance_outputs on tiny hand cases."""

import torch

from detectron2_export.modeling import PanopticFPN, build_model
from detectron2_export.modeling.meta_arch.panoptic_fpn import combine_semantic_and_instance_outputs
from detectron2_export.structures import Boxes, Instances

from .stubs import FixedProposals, IdentityBackbone, shapes_of, upstream_keys, zoo_cfg


def _instances(masks, scores, classes) -> Instances:
    inst = Instances(tuple(masks.shape[1:]))
    inst.pred_masks = masks
    inst.scores = torch.tensor(scores)
    inst.pred_classes = torch.tensor(classes)
    return inst


def test_combine_hand_case():
    # 4x4 image. Instance A (score 0.9) covers the left two columns. Instance B (0.8) covers
    # columns 1-2: half of it overlaps A (0.5, not > 0.5), so it keeps only column 2.
    # Instance C (0.7) covers column 1 only: fully overlapped, dropped. D (0.3) is below 0.5.
    masks = torch.zeros(4, 4, 4, dtype=torch.bool)
    masks[0, :, 0:2] = True
    masks[1, :, 1:3] = True
    masks[2, :, 1] = True
    masks[3, :, 3] = True
    inst = _instances(masks, [0.8, 0.9, 0.7, 0.3], [5, 6, 7, 8])
    inst.pred_masks = masks[[1, 0, 2, 3]]  # scores are not sorted: B first
    semantic = torch.tensor([[0, 0, 2, 3], [0, 0, 2, 3], [0, 0, 2, 3], [4, 4, 4, 3]])

    panoptic, segments = combine_semantic_and_instance_outputs(
        inst, semantic, overlap_threshold=0.5, stuff_area_thresh=3, instances_score_thresh=0.5
    )
    expected = torch.tensor([[1, 1, 2, 3], [1, 1, 2, 3], [1, 1, 2, 3], [1, 1, 2, 3]], dtype=torch.int32)
    # stuff: label 2 has no free pixels left, label 3 has 4 (column 3), label 4 only 0 free
    assert panoptic.dtype == torch.int32
    assert torch.equal(panoptic, expected)
    assert segments == [
        {"id": 1, "isthing": True, "score": inst.scores[1].item(), "category_id": 6, "instance_id": 1},
        {"id": 2, "isthing": True, "score": inst.scores[0].item(), "category_id": 5, "instance_id": 0},
        {"id": 3, "isthing": False, "category_id": 3, "area": 4},
    ]


def test_combine_stuff_area_threshold_and_empty_instances():
    inst = _instances(torch.zeros(0, 2, 3, dtype=torch.bool), [], [])
    inst.scores = inst.scores.float()
    semantic = torch.tensor([[1, 1, 2], [1, 1, 0]])
    panoptic, segments = combine_semantic_and_instance_outputs(inst, semantic, 0.5, 2, 0.5)
    # label 1 (4 px) kept; label 2 (1 px) below the limit; 0 is the "things" class
    assert panoptic.tolist() == [[1, 1, 0], [1, 1, 0]]
    assert segments == [{"id": 1, "isthing": False, "category_id": 1, "area": 4}]


class _MaskROIHeads(torch.nn.Module):
    """Detects the proposals as class 0 with a full mask."""

    def forward(self, images, features, proposals, targets=None):
        results = []
        for p in proposals:
            inst = Instances(p.image_size)
            inst.pred_boxes = Boxes(p.proposal_boxes.tensor.clone())
            inst.scores = torch.linspace(0.9, 0.6, len(p))
            inst.pred_classes = torch.zeros(len(p), dtype=torch.int64)
            inst.pred_masks = torch.ones(len(p), 1, 28, 28)
            results.append(inst)
        return results, {}


class _StuffHead(torch.nn.Module):
    """Semantic logits favouring stuff class 1 everywhere."""

    def forward(self, features, targets=None):
        x = features["img"]
        logits = torch.zeros(x.shape[0], 2, x.shape[2], x.shape[3])
        logits[:, 1] = 1.0
        return logits, {}


def _panoptic(**kwargs) -> PanopticFPN:
    return PanopticFPN(
        backbone=IdentityBackbone(size_divisibility=32),
        proposal_generator=FixedProposals(torch.tensor([[0.0, 0.0, 8.0, 8.0]])),
        roi_heads=_MaskROIHeads(),
        sem_seg_head=_StuffHead(),
        pixel_mean=(0.0, 0.0, 0.0),
        pixel_std=(1.0, 1.0, 1.0),
        combine_stuff_area_thresh=10,
        **kwargs,
    ).eval()


def test_panoptic_fpn_outputs():
    model = _panoptic()
    out = model([{"image": torch.zeros(3, 16, 24), "height": 32, "width": 48}])[0]
    assert set(out) == {"sem_seg", "instances", "panoptic_seg"}
    assert out["sem_seg"].shape == (2, 32, 48)
    assert out["instances"].pred_masks.shape == (1, 32, 48)
    panoptic, segments = out["panoptic_seg"]
    # the instance box (0, 0, 8, 8) becomes (0, 0, 16, 16) at output size; stuff takes the rest
    expected = torch.full((32, 48), 2, dtype=torch.int32)
    expected[:16, :16] = 1
    assert torch.equal(panoptic, expected)
    assert [s["isthing"] for s in segments] == [True, False]
    assert segments[1]["area"] == 32 * 48 - 256


def test_panoptic_fpn_combine_off_and_raw_outputs():
    model = _panoptic(combine_on=False)
    out = model([{"image": torch.zeros(3, 16, 24)}])[0]
    assert set(out) == {"sem_seg", "instances"}
    detections, sem_seg = model.inference([{"image": torch.zeros(3, 16, 24)}], do_postprocess=False)
    assert sem_seg.shape == (1, 2, 32, 32)  # padded batch, network resolution
    assert detections[0].image_size == (16, 24) and detections[0].pred_masks.shape == (1, 1, 28, 28)


def test_build_from_zoo_config():
    cfg = zoo_cfg("COCO-PanopticSegmentation/panoptic_fpn_R_50_3x.yaml")
    cfg.MODEL.PANOPTIC_FPN.COMBINE.OVERLAP_THRESH = 0.25
    cfg.MODEL.PANOPTIC_FPN.COMBINE.STUFF_AREA_LIMIT = 1024
    cfg.MODEL.PANOPTIC_FPN.COMBINE.INSTANCES_CONFIDENCE_THRESH = 0.75
    model = build_model(cfg)
    assert type(model) is PanopticFPN
    assert shapes_of(model) == upstream_keys("panoptic_fpn_R_50_3x", "")
    assert model.combine_on is True
    assert (model.combine_overlap_thresh, model.combine_stuff_area_thresh) == (0.25, 1024)
    assert model.combine_instances_score_thresh == 0.75
