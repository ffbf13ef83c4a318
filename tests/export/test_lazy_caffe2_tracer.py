"""``Caffe2Tracer`` on models built from a LazyConfig (issue 13), with ``cfg`` the LazyConfig or None.

* The bundled shapes model as a LazyConfig (tests/tools/lazy_shapes.py) with its trained checkpoint:
  the predict and init nets equal, message for message, those exported from the YAML config's model
  (the independent reference: the long-tested yacs path), and they reproduce the eager detections.
* The zoo's ``new_baselines/mask_rcnn_R_50_FPN_100ep_LSJ.py`` (SyncBN backbone, NaiveSyncBatchNorm
  heads, 4conv1fc box head) with fixed random weights giving detections: the Caffe2 outputs match
  the eager ones on the traced image and on another size.
* ``caffe2_cfg_from_model`` gives the keys the yacs configs of the same models hold.
"""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from detectron2_export.cli.common import build_and_load_model, sample_inputs_from_image, setup_cfg
from detectron2_export.config import instantiate
from detectron2_export.export import Caffe2Tracer
from detectron2_export.export.api import UnsupportedArchitectureError
from detectron2_export.export.lazy_cfg import caffe2_cfg_from_model
from detectron2_export.model_zoo import get_config
from detectron2_export.modeling import GeneralizedRCNN, build_model

from ..tools.conftest import CONFIG, SHAPES_IMAGES, SMALL_OPTS
from ..tools.lazy_shapes import SHAPES_OVERRIDES, write_shapes_lazy_config
from .test_caffe2_export_models import match_detections
from .test_torchscript_models import sample_images

LSJ = "new_baselines/mask_rcnn_R_50_FPN_100ep_LSJ.py"
# classifier weight scale giving ~100 detections of the random LSJ model on both sample images
LSJ_CLASSIFIER_SCALE = 30.0
RESIDUAL_SCALE = 0.1


def _same_nets(a, b) -> bool:
    return a.predict_net == b.predict_net and a.init_net == b.init_net


@pytest.fixture(scope="module")
def shapes_models(tmp_path_factory):
    """(LazyConfig, its model, yacs cfg, its model, inputs): the shapes model built both ways, one image."""
    lazy_cfg = setup_cfg(write_shapes_lazy_config(str(tmp_path_factory.mktemp("lazy"))), SHAPES_OVERRIDES)
    yacs_cfg = setup_cfg(CONFIG, SMALL_OPTS)
    inputs = sample_inputs_from_image(yacs_cfg, os.path.join(SHAPES_IMAGES, "00000.jpg"))
    return lazy_cfg, build_and_load_model(lazy_cfg), yacs_cfg, build_and_load_model(yacs_cfg), inputs


def test_shapes_lazy_config_and_none_export_the_yacs_nets(shapes_models):
    lazy_cfg, lazy_model, yacs_cfg, yacs_model, inputs = shapes_models
    reference = Caffe2Tracer(yacs_cfg, yacs_model, inputs).export_caffe2()
    from_lazy = Caffe2Tracer(lazy_cfg, lazy_model, inputs).export_caffe2()
    assert _same_nets(from_lazy, reference)
    assert _same_nets(Caffe2Tracer(None, lazy_model, inputs).export_caffe2(), reference)

    with torch.no_grad():
        eager = lazy_model(inputs)[0]["instances"]
    exported = from_lazy(inputs)[0]["instances"]
    assert len(eager) >= 5
    found, _ = match_detections(eager, exported)
    assert len(found) >= 0.95 * len(eager) and len(exported) == len(eager)


def test_caffe2_cfg_from_model_has_the_yacs_values(shapes_models):
    _, lazy_model, yacs_cfg, _, _ = shapes_models
    derived = caffe2_cfg_from_model(lazy_model)
    assert derived.MODEL.META_ARCHITECTURE == yacs_cfg.MODEL.META_ARCHITECTURE == "GeneralizedRCNN"
    assert derived.MODEL.RPN.BBOX_REG_WEIGHTS == tuple(yacs_cfg.MODEL.RPN.BBOX_REG_WEIGHTS)
    assert derived.EXPORT_CAFFE2.USE_HEATMAP_MAX_KEYPOINT is yacs_cfg.EXPORT_CAFFE2.USE_HEATMAP_MAX_KEYPOINT is False
    assert derived.is_frozen()


@pytest.mark.parametrize(
    "lazy, yaml",
    [
        ("COCO-Detection/retinanet_R_50_FPN_1x.py", "COCO-Detection/retinanet_R_50_FPN_1x.yaml"),
        ("COCO-PanopticSegmentation/panoptic_fpn_R_50_1x.py", "COCO-PanopticSegmentation/panoptic_fpn_R_50_1x.yaml"),
    ],
    ids=["retinanet", "panoptic_fpn"],
)
def test_caffe2_cfg_from_model_of_other_meta_architectures(lazy, yaml):
    with torch.device("meta"):
        model = instantiate(get_config(lazy).model)
    derived, yacs_cfg = caffe2_cfg_from_model(model), get_config(yaml)
    assert derived.MODEL.META_ARCHITECTURE == yacs_cfg.MODEL.META_ARCHITECTURE
    if yacs_cfg.MODEL.META_ARCHITECTURE == "RetinaNet":
        assert "RPN" not in derived.MODEL  # no proposal generator, nothing of the RPN is read
    else:
        assert derived.MODEL.RPN.BBOX_REG_WEIGHTS == tuple(yacs_cfg.MODEL.RPN.BBOX_REG_WEIGHTS)


def test_subclass_of_a_meta_architecture_uses_its_rewrite(shapes_models):
    _, lazy_model, _, _, _ = shapes_models

    class MyRCNN(GeneralizedRCNN):
        pass

    model = MyRCNN.__new__(MyRCNN)
    model.__dict__.update(lazy_model.__dict__)
    assert caffe2_cfg_from_model(model).MODEL.META_ARCHITECTURE == "GeneralizedRCNN"


def test_unsupported_model_without_cfg_names_its_class():
    cfg = get_config("Misc/semantic_R_50_FPN_1x.yaml")
    cfg.MODEL.DEVICE = "meta"  # no weights needed: the tracer refuses the class before any tracing
    model = build_model(cfg)
    with pytest.raises(UnsupportedArchitectureError, match=r"META_ARCHITECTURE='SemanticSegmentor', expected one of"):
        Caffe2Tracer(None, model, [{"image": torch.zeros(3, 32, 32)}])


def _lsj_model_giving_detections() -> tuple[object, nn.Module]:
    """(LazyConfig, model): random weights, residual branches scaled, BatchNorm statistics of image A."""
    cfg = get_config(LSJ)
    cfg.model.proposal_generator.post_nms_topk = (100, 100)  # keeps the heads cheap on the CPU
    torch.manual_seed(0)
    model = instantiate(cfg.model).eval()
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    seen: set[int] = set()

    def calibrate(module, args):
        if id(module) not in seen and args[0].shape[0] > 0:
            module.running_mean.copy_(args[0].mean(dim=(0, 2, 3)))
            module.running_var.copy_(args[0].var(dim=(0, 2, 3)))
            seen.add(id(module))

    with torch.no_grad():
        for name, module in model.named_modules():
            if name.endswith("conv3.norm"):
                module.weight.mul_(RESIDUAL_SCALE)
            elif name.endswith("box_predictor.cls_score"):
                module.weight.mul_(LSJ_CLASSIFIER_SCALE)  # first: the mask head's norms need detections
        hooks = [m.register_forward_pre_hook(calibrate) for m in norms]
        for _ in range(3):
            model([{"image": sample_images()[0]}])
            if len(seen) == len(norms):
                break
        for hook in hooks:
            hook.remove()
    assert len(seen) == len(norms), "a BatchNorm saw no input"
    return cfg, model


@pytest.mark.slow
def test_lsj_zoo_lazy_config_exports_like_eager():
    cfg, model = _lsj_model_giving_detections()
    image_a, image_b = sample_images()
    c2_model = Caffe2Tracer(cfg, model, [{"image": image_a}]).export_caffe2()
    for image in (image_a, image_b):
        inputs = [{"image": image}]
        with torch.no_grad():
            eager = model(inputs)[0]["instances"]
        exported = c2_model(inputs)[0]["instances"]
        assert len(eager) >= 20 and eager.has("pred_masks")
        found, _ = match_detections(eager, exported)
        found_back, _ = match_detections(exported, eager)
        assert len(found) >= 0.95 * len(eager) and len(found_back) >= 0.95 * len(exported)
