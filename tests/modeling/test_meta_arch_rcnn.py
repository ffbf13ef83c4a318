"""GeneralizedRCNN / ProposalNetwork: pre-processing, wiring and post-processing with stub parts."""

import pytest
import torch

from detectron2_export.modeling import GeneralizedRCNN, ProposalNetwork, build_model
from detectron2_export.structures import Boxes, Instances

from .stubs import EchoROIHeads, FixedProposals, IdentityBackbone, upstream_keys, zoo_cfg

MEAN = (100.0, 110.0, 120.0)
STD = (2.0, 4.0, 8.0)
BOXES = torch.tensor([[2.0, 2.0, 10.0, 12.0], [0.0, 0.0, 40.0, 40.0]])


def _model(proposal_generator=None, **kwargs) -> GeneralizedRCNN:
    return GeneralizedRCNN(
        backbone=IdentityBackbone(size_divisibility=32),
        proposal_generator=proposal_generator if proposal_generator is not None else FixedProposals(BOXES),
        roi_heads=EchoROIHeads(),
        pixel_mean=MEAN,
        pixel_std=STD,
        **kwargs,
    ).eval()


def test_preprocess_normalizes_then_pads_with_zeros():
    model = _model()
    img = torch.full((3, 20, 45), 120.0)
    images = model.preprocess_image([{"image": img}, {"image": img[:, :10, :10]}])
    assert images.tensor.shape == (2, 3, 32, 64)  # max size rounded up to 32
    assert images.image_sizes == [(20, 45), (10, 10)]
    expected = torch.tensor([(120.0 - m) / s for m, s in zip(MEAN, STD)])  # 10, 2.5, 0
    torch.testing.assert_close(images.tensor[0, :, 0, 0], expected)
    assert images.tensor[0, :, 20:].abs().sum() == 0 and images.tensor[0, :, :, 45:].abs().sum() == 0
    assert images.tensor[1, :, 10:].abs().sum() == 0


def test_pixel_stats_are_non_persistent_buffers():
    model = _model()
    assert model.pixel_mean.shape == (3, 1, 1) and model.pixel_std.shape == (3, 1, 1)
    assert "pixel_mean" not in model.state_dict() and "pixel_std" not in model.state_dict()
    assert model.device == torch.device("cpu")
    with pytest.raises(ValueError, match="same number of channels"):
        GeneralizedRCNN(
            backbone=IdentityBackbone(),
            proposal_generator=None,
            roi_heads=EchoROIHeads(),
            pixel_mean=(1.0, 2.0, 3.0),
            pixel_std=(1.0,),
        )


def test_forward_postprocesses_to_requested_size():
    model = _model()
    img = torch.zeros(3, 20, 40)
    out = model([{"image": img, "height": 40, "width": 20}, {"image": img}])
    first, second = out[0]["instances"], out[1]["instances"]
    assert first.image_size == (40, 20)
    # x scaled by 0.5, y by 2, then clipped to (40, 20)
    torch.testing.assert_close(
        first.pred_boxes.tensor, torch.tensor([[1.0, 4.0, 5.0, 24.0], [0.0, 0.0, 20.0, 40.0]])
    )
    assert second.image_size == (20, 40)
    torch.testing.assert_close(
        second.pred_boxes.tensor, torch.tensor([[2.0, 2.0, 10.0, 12.0], [0.0, 0.0, 40.0, 20.0]])
    )
    assert model.roi_heads.calls == ["forward"]


def test_inference_without_postprocess_returns_raw_instances():
    model = _model()
    results = model.inference(
        [{"image": torch.zeros(3, 20, 40), "height": 5, "width": 5}], do_postprocess=False
    )
    assert isinstance(results[0], Instances) and results[0].image_size == (20, 40)
    torch.testing.assert_close(results[0].pred_boxes.tensor, BOXES)


def test_inference_with_detected_instances_skips_detection():
    model = _model()
    given = Instances((20, 40))
    given.pred_boxes = Boxes(torch.tensor([[4.0, 4.0, 8.0, 8.0]]))
    given.scores = torch.tensor([1.0])
    given.pred_classes = torch.tensor([0])
    out = model.inference([{"image": torch.zeros(3, 20, 40)}], detected_instances=[given])
    assert model.roi_heads.calls == ["forward_with_given_boxes"]
    assert out[0]["instances"].pred_masks.shape == (1, 20, 40)


def test_proposals_from_inputs_when_no_proposal_generator():
    model = GeneralizedRCNN(
        backbone=IdentityBackbone(),
        proposal_generator=None,
        roi_heads=EchoROIHeads(),
        pixel_mean=MEAN,
        pixel_std=STD,
    ).eval()
    proposals = Instances((20, 40))
    proposals.proposal_boxes = Boxes(torch.tensor([[1.0, 1.0, 3.0, 3.0]]))
    out = model([{"image": torch.zeros(3, 20, 40), "proposals": proposals}])
    torch.testing.assert_close(out[0]["instances"].pred_boxes.tensor, torch.tensor([[1.0, 1.0, 3.0, 3.0]]))
    with pytest.raises(ValueError, match="expected 'proposals'"):
        model([{"image": torch.zeros(3, 20, 40)}])


def test_training_mode_is_rejected():
    model = _model().train()
    with pytest.raises(NotImplementedError, match="GeneralizedRCNN: training mode is not supported"):
        model([{"image": torch.zeros(3, 8, 8)}])


def test_proposal_network_outputs_rescaled_proposals():
    model = ProposalNetwork(
        backbone=IdentityBackbone(), proposal_generator=FixedProposals(BOXES), pixel_mean=MEAN, pixel_std=STD
    ).eval()
    out = model([{"image": torch.zeros(3, 20, 40), "height": 40, "width": 80}])
    assert list(out[0]) == ["proposals"]
    torch.testing.assert_close(
        out[0]["proposals"].proposal_boxes.tensor,
        torch.tensor([[4.0, 4.0, 20.0, 24.0], [0.0, 0.0, 80.0, 40.0]]),
    )


@pytest.mark.parametrize(
    "name, config",
    [
        ("mask_rcnn_R_50_FPN_3x", "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"),
        ("mask_rcnn_R_50_C4_3x", "COCO-InstanceSegmentation/mask_rcnn_R_50_C4_3x.yaml"),
        ("faster_rcnn_R_50_DC5_3x", "COCO-Detection/faster_rcnn_R_50_DC5_3x.yaml"),
        ("keypoint_rcnn_R_50_FPN_3x", "COCO-Keypoints/keypoint_rcnn_R_50_FPN_3x.yaml"),
    ],
)
def test_build_model_has_upstream_state_dict(name, config):
    model = build_model(zoo_cfg(config))
    assert type(model) is GeneralizedRCNN
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == upstream_keys(name, "")
    assert model.input_format == "BGR" and model.vis_period == 0
    torch.testing.assert_close(model.pixel_mean.flatten(), torch.tensor([103.53, 116.28, 123.675]))
