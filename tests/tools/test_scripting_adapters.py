"""export_model.py's scripting adapters (export/deploy.py): RetinaNet (no ``inference`` method) scripts too."""

import os

import pytest
import torch

from detectron2_export.export.deploy import export_scripting
from detectron2_export.config import get_cfg
from detectron2_export.modeling import build_model
from detectron2_export.structures import Boxes

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_retinanet_scripting_export_runs_like_eager(tmp_path):
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(REPO, "configs/COCO-Detection/retinanet_R_50_FPN_3x.yaml"))
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.RESNETS.DEPTH", "18", "MODEL.RESNETS.RES2_OUT_CHANNELS", "64",
                         "MODEL.FPN.OUT_CHANNELS", "32", "MODEL.RETINANET.SCORE_THRESH_TEST", "0.0"])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    export_scripting(model, str(tmp_path))
    scripted = torch.jit.load(str(tmp_path / "model.ts"))
    image = torch.rand(3, 96, 128) * 255
    with torch.no_grad():
        fields = scripted(({"image": image},))[0]
        eager = model.forward([{"image": image}])[0]["instances"]
    assert len(fields["scores"]) == len(eager) > 0
    torch.testing.assert_close(fields["scores"], eager.scores, atol=1e-4, rtol=0)
    # scripted RetinaNet returns raw instances; eager's detector_postprocess clips to the image
    boxes = Boxes(fields["pred_boxes"])
    boxes.clip((96, 128))
    torch.testing.assert_close(boxes.tensor, eager.pred_boxes.tensor, atol=1e-2, rtol=0)
