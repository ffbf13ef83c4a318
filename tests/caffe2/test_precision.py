"""``ProtobufModel(..., precision="bf16")``: convolutions and matrix products in bfloat16, the rest fp32.

Small-net reference: the same ops written with torch in bfloat16 (inputs, filters and biases cast,
outputs cast back), which the runtime must reproduce to bf16 rounding of the accumulation order
(rtol/atol 1e-2 on O(1) values); the shapes Mask R-CNN AP test asserts the issue's budget: bf16
bbox and segm AP within 1.0 of the fp32 runtime's on shapes_val (200 images).
"""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

from detectron2_export.caffe2 import precision as precision_module
from detectron2_export.config import get_cfg
from detectron2_export.data import build_detection_test_loader
from detectron2_export.evaluation import COCOEvaluator, inference_on_dataset
from detectron2_export.export import Caffe2Model
from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.caffe2.protobuf_model import ProtobufModel
from detectron2_export.errors import ConfigError
from tests.caffe2.helpers import make_op
from tests.caffe2.test_fusion import init_net
from tests.cpp.shapes_model import export_shapes_mask_rcnn
from tests.export.test_caffe2_shapes_ap import CONFIG  # the fp32 AP test's model

logger = logging.getLogger(__name__)
needs_bf16 = pytest.mark.skipif(not precision_module.bf16_supported(), reason="this CPU has no native bfloat16 (oneDNN)")
AP_BUDGET = 1.0


def _nets() -> tuple[caffe2_pb2.NetDef, caffe2_pb2.NetDef, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    p = {
        "w": torch.randn(6, 3, 3, 3, generator=g) * 0.3,
        "b": torch.randn(6, generator=g),
        "fw": torch.randn(5, 6 * 4 * 4, generator=g) * 0.1,
        "fb": torch.randn(5, generator=g),
    }
    init = init_net(p)
    predict = caffe2_pb2.NetDef(
        name="net",
        op=[
            make_op("Conv", ["x", "w", "b"], ["c"], kernel=3, pad=1, stride=2),
            make_op("Relu", ["c"], ["r"]),
            make_op("FC", ["r", "fw", "fb"], ["f"]),
            make_op("Softmax", ["f"], ["prob"]),
        ],
        external_input=["x", *p],
        external_output=["r", "prob"],
    )
    return predict, init, p


def test_unknown_precision_is_refused():
    predict, init, _ = _nets()
    with pytest.raises(ConfigError, match=r"precision='fp16', expected one of \['fp32', 'bf16'\]"):
        ProtobufModel(predict, init, precision="fp16")


def test_bf16_without_cpu_support_is_refused(monkeypatch):
    monkeypatch.setattr(precision_module, "bf16_supported", lambda: False)
    predict, init, _ = _nets()
    with pytest.raises(ConfigError, match=r"precision='bf16' needs a CPU with native bfloat16"):
        ProtobufModel(predict, init, precision="bf16")


@needs_bf16
@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "unfused"])
def test_bf16_small_net_matches_torch_in_bf16(fuse):
    predict, init, p = _nets()
    model = ProtobufModel(predict, init, precision="bf16", fuse=fuse)
    x = torch.randn(2, 3, 8, 8)
    r, prob = model([x])
    assert r.dtype == torch.float32 and prob.dtype == torch.float32
    bf = {k: v.bfloat16() for k, v in p.items()}
    r_ref = F.conv2d(x.bfloat16(), bf["w"], bf["b"], stride=2, padding=1).float().relu()
    f_ref = torch.addmm(bf["fb"], r_ref.reshape(2, -1).bfloat16(), bf["fw"].t()).float()
    torch.testing.assert_close(r, r_ref, rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(prob, f_ref.softmax(dim=1), rtol=1e-2, atol=1e-2)
    # and it is not silently fp32: bf16 rounding shows against the fp32 model
    r32, _ = ProtobufModel(predict, init, fuse=fuse)([x])
    assert (r - r32).abs().max() > 1e-4


@needs_bf16
@pytest.mark.slow
def test_shapes_mask_rcnn_bf16_ap_within_budget_of_fp32(tmp_path):
    export_shapes_mask_rcnn(tmp_path)
    cfg = get_cfg()
    cfg.merge_from_file(CONFIG)
    cfg.DATALOADER.NUM_WORKERS = 0
    loader = build_detection_test_loader(cfg, "shapes_val")
    results = {}
    for precision in ("fp32", "bf16"):
        model = Caffe2Model.load_protobuf(str(tmp_path), precision=precision)
        results[precision] = inference_on_dataset(model, loader, COCOEvaluator("shapes_val"), progress=False)
        assert model._predictor.protobuf_model.precision == precision
    logger.info("shapes AP fp32 %s, bf16 %s", results["fp32"], results["bf16"])
    for task in ("bbox", "segm"):
        fp32, bf16 = results["fp32"][task]["AP"], results["bf16"][task]["AP"]
        assert abs(bf16 - fp32) <= AP_BUDGET, f"{task} AP: bf16 {bf16:.3f}, fp32 {fp32:.3f}, budget {AP_BUDGET}"


@needs_bf16
def test_bf16_stays_bf16_between_fused_convolutions_and_matches_torch():
    """Conv+Relu -> Conv+Add+Relu (reading the first output twice) -> FC: the first output is read
    only by fused convolutions, so it stays bfloat16; the second feeds FC, so it is cast back."""
    g = torch.Generator().manual_seed(3)
    p = {"w1": torch.randn(6, 3, 3, 3, generator=g) * 0.3, "b1": torch.randn(6, generator=g),
         "w2": torch.randn(6, 6, 3, 3, generator=g) * 0.2, "b2": torch.randn(6, generator=g),
         "fw": torch.randn(5, 6 * 8 * 8, generator=g) * 0.05, "fb": torch.randn(5, generator=g)}
    predict = caffe2_pb2.NetDef(
        name="chain",
        op=[
            make_op("Conv", ["x", "w1", "b1"], ["c1"], kernel=3, pad=1),
            make_op("Relu", ["c1"], ["r1"]),
            make_op("Conv", ["r1", "w2", "b2"], ["c2"], kernel=3, pad=1),
            make_op("Add", ["c2", "r1"], ["s"]),
            make_op("Relu", ["s"], ["r2"]),
            make_op("FC", ["r2", "fw", "fb"], ["y"]),
        ],
        external_input=["x", *p],
        external_output=["y"],
    )
    model = ProtobufModel(predict, init_net(p), precision="bf16")
    assert [op.op_type for op in model._net.ops] == ["Conv+Relu", "Conv+Add+Relu", "FC"]
    x = torch.randn(2, 3, 8, 8, generator=g)
    (y,) = model([x])
    bf = {k: v.bfloat16() for k, v in p.items()}
    r1 = F.conv2d(x.bfloat16(), bf["w1"], bf["b1"], padding=1).relu()  # kept in bf16
    r2 = (F.conv2d(r1, bf["w2"], bf["b2"], padding=1) + r1).relu().float()
    expected = torch.addmm(bf["fb"], r2.reshape(2, -1).bfloat16(), bf["fw"].t()).float()
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, expected, rtol=2e-2, atol=2e-2)
    first, second = model._net.ops[:2]
    (r1_run,) = first.fn(x, model._ws.blobs["b1"])
    assert r1_run.dtype == torch.bfloat16
    assert second.fn(r1_run, model._ws.blobs["b2"], r1_run)[0].dtype == torch.float32

