"""TorchScript helpers: dump_torchscript_IR (SPEC 2.9), patch_instances / scripting_with_instances on
small modules (SPEC 2.8, 7.2), freeze_training_mode, patch_builtin_len (SPEC 7.3)."""

import os
from typing import Dict, List

import pytest
import torch
from torch import Tensor, nn

from detectron2_export.config import get_cfg
from detectron2_export.export import dump_torchscript_IR, scripting_with_instances
from detectron2_export.export.torchscript_patch import freeze_training_mode, patch_builtin_len, patch_instances
from detectron2_export.layers import ShapeSpec
from detectron2_export.modeling import build_backbone
from detectron2_export.modeling.roi_heads.keypoint_head import KRCNNConvDeconvUpsampleHead
from detectron2_export.structures import Boxes, Instances

IR_FILES = ["model_ts_code.txt", "model_ts_IR.txt", "model_ts_IR_inlined.txt", "model.txt"]


def _r18_backbone() -> nn.Module:
    cfg = get_cfg()
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    return build_backbone(cfg).eval()


class _FeaturesAsTuple(nn.Module):
    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.m = backbone

    def forward(self, x: Tensor) -> List[Tensor]:
        return list(self.m(x).values())


def _read(d, name: str) -> str:
    with open(os.path.join(d, name)) as f:
        return f.read()


def test_dump_ir_of_traced_module(tmp_path):
    model = _FeaturesAsTuple(_r18_backbone())
    with torch.no_grad():
        traced = torch.jit.trace(model, (torch.rand(2, 3, 64, 64),))
    out = tmp_path / "nested" / "dir"
    dump_torchscript_IR(traced, str(out))
    for name in IR_FILES:
        assert os.path.getsize(out / name) > 0, name
    code = _read(out, "model_ts_code.txt")
    assert "Code for root model, type=_FeaturesAsTuple:" in code
    assert "Code for .m, type=ResNet:" in code
    assert "Code for .m.stem.conv1, type=Conv2d:" in code
    assert "-" * 80 in code
    assert "aten::_convolution" in _read(out, "model_ts_IR_inlined.txt")
    assert "ResNet" in _read(out, "model.txt")


def test_dump_ir_of_scripted_module_uses_scriptable_layout(tmp_path):
    backbone = _r18_backbone()
    scripted = scripting_with_instances(backbone, {})
    # ResNet.__prepare_scriptable__ keeps the stages in a ModuleList (upstream's layout)
    assert any(k.startswith("stages.0.") for k in scripted.state_dict())
    dump_torchscript_IR(scripted, str(tmp_path))
    for name in IR_FILES:
        assert os.path.getsize(tmp_path / name) > 0, name
    assert "Code for .stages.0, type=" in _read(tmp_path, "model_ts_code.txt")
    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(scripted(x)["res4"], backbone(x)["res4"], rtol=1e-5, atol=1e-5)


def test_scripting_leaves_the_eager_model_unchanged_and_can_repeat():
    backbone = _r18_backbone()
    keys = list(backbone.state_dict())
    children = dict(backbone.named_children())
    first = scripting_with_instances(backbone, {})
    assert list(backbone.state_dict()) == keys and dict(backbone.named_children()) == children
    second = scripting_with_instances(backbone, {})
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(second(x)["res4"], first(x)["res4"], rtol=0, atol=0)


def test_dump_ir_of_traced_function(tmp_path):
    @torch.jit.script
    def gunc(x, y):
        return x + y

    def func(x, y):
        return x + y + gunc(x, y)

    traced = torch.jit.trace(func, (torch.rand(3), torch.rand(3)))
    dump_torchscript_IR(traced, str(tmp_path))
    for name in IR_FILES[:3]:
        assert os.path.getsize(tmp_path / name) > 0, name
    assert not (tmp_path / "model.txt").exists()


class _UsesInstances(nn.Module):
    """Exercises the generated class: fields, len, has, indexing, cat, get_fields."""

    def forward(self, boxes: Tensor, scores: Tensor) -> Dict[str, Tensor]:
        inst = Instances((10, 20))
        inst.pred_boxes = Boxes(boxes)
        inst.scores = scores
        kept = inst[inst.scores > 0.5]
        both = kept.cat([kept, inst])
        out = both.get_fields()
        out["len"] = torch.tensor([len(both), len(kept)])
        out["has"] = torch.tensor([both.has("scores"), both.has("pred_classes"), both.has("other")])
        return out


FIELDS = {"pred_boxes": Boxes, "scores": Tensor, "pred_classes": Tensor}


def _eager_uses_instances(boxes: Tensor, scores: Tensor) -> Dict[str, Tensor]:
    kept = scores > 0.5
    return {
        "pred_boxes": torch.cat([boxes[kept], boxes]),
        "scores": torch.cat([scores[kept], scores]),
        "len": torch.tensor([int(kept.sum()) + len(scores), int(kept.sum())]),
        "has": torch.tensor([True, False, False]),
    }


def test_scripting_with_instances_generated_class():
    scripted = scripting_with_instances(_UsesInstances().eval(), FIELDS)
    boxes, scores = torch.rand(6, 4), torch.tensor([0.1, 0.9, 0.6, 0.2, 0.7, 0.3])
    out = scripted(boxes, scores)
    expected = _eager_uses_instances(boxes, scores)
    assert out.keys() == expected.keys()  # pred_classes is unset, so get_fields leaves it out
    for k in expected:
        torch.testing.assert_close(out[k], expected[k], msg=k)
    # another size: nothing is specialised to the first call
    out = scripted(torch.rand(2, 4), torch.tensor([0.8, 0.9]))
    assert out["len"].tolist() == [4, 2]


def test_patch_is_reverted_and_can_be_applied_again_with_other_fields():
    scripting_with_instances(_UsesInstances().eval(), FIELDS)
    assert "__torch_script_class__" not in Instances.__dict__
    assert "_jit_override_qualname" not in Instances.__dict__
    # eager Instances still works dynamically
    inst = Instances((1, 1), anything=torch.ones(2))
    assert len(inst) == 2
    # fields missing a name the model uses: the compiler cannot find the attribute
    with pytest.raises(RuntimeError, match="scores"):
        scripting_with_instances(_UsesInstances().eval(), {"pred_boxes": Boxes})
    scripted = scripting_with_instances(_UsesInstances().eval(), {"scores": Tensor, "pred_boxes": Boxes})
    assert scripted(torch.rand(1, 4), torch.tensor([0.7]))["len"].tolist() == [2, 1]


def test_generated_class_from_instances_and_errors():
    with patch_instances(FIELDS) as new_cls:
        inst = Instances((3, 4), scores=torch.tensor([1.0, 2.0]), pred_boxes=Boxes(torch.zeros(2, 4)))
        converted = new_cls.from_instances(inst)
        assert converted.image_size == (3, 4)
        torch.testing.assert_close(converted.scores, inst.scores)
        assert converted.scores is not inst.scores  # deep copy
        assert len(converted) == 2 and converted.has("pred_boxes") and not converted.has("pred_classes")
        with pytest.raises(AssertionError, match="pred_classes is None and cannot be accessed!"):
            converted.pred_classes
        with pytest.raises(NotImplementedError, match="Empty Instances does not support __len__!"):
            len(new_cls((1, 1)))
        with pytest.raises(AttributeError, match="'masks' was not declared"):
            new_cls.from_instances(Instances((1, 1), masks=torch.ones(1)))
    with pytest.raises(ValueError, match="expected a Python identifier"):
        with patch_instances({"not valid": Tensor}):
            pass


class _TrainingBranch(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            return x.unscriptable_method_that_does_not_exist()
        return x + 1


def test_freeze_training_mode_compiles_away_training_branches_and_restores():
    model = _TrainingBranch().eval()
    before = _TrainingBranch.__dict__.get("__annotations__")
    with freeze_training_mode(model):
        assert _TrainingBranch.__annotations__["training"] == torch.jit.Final[bool]
        scripted = torch.jit.script(model)
    assert _TrainingBranch.__dict__.get("__annotations__") == before
    with pytest.raises(Exception, match="unscriptable_method_that_does_not_exist"):
        torch.jit.script(model)
    torch.testing.assert_close(scripted(torch.ones(2)), torch.full((2,), 2.0))


class _KeypointHeadOnBoxes(nn.Module):
    """Upstream's test: a keypoint head called with two images' boxes."""

    def __init__(self):
        super().__init__()
        self.model = KRCNNConvDeconvUpsampleHead(
            ShapeSpec(channels=4, height=14, width=14), num_keypoints=17, conv_dims=(4,)
        )

    def forward(self, x, boxes1, boxes2):
        inst = [
            Instances((100, 100), pred_boxes=Boxes(boxes1)),
            Instances((100, 100), pred_boxes=Boxes(boxes2)),
        ]
        ret = self.model(x, inst)
        return tuple(i.pred_keypoints for i in ret)


def _keypoint_inputs(num1: int, num2: int, g: torch.Generator):
    def boxes(n):
        xy = torch.rand(n, 2, generator=g) * 80
        return torch.cat([xy, xy + 1 + torch.rand(n, 2, generator=g) * 20], dim=1)

    return torch.randn(num1 + num2, 4, 14, 14, generator=g), boxes(num1), boxes(num2)


def test_patch_builtin_len_keeps_instance_counts_dynamic():
    torch.manual_seed(0)
    model = _KeypointHeadOnBoxes().eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad(), patch_builtin_len():
        traced = torch.jit.trace(model, _keypoint_inputs(15, 15, g), check_trace=False)
        inputs = _keypoint_inputs(12, 10, g)
        traced_out = traced(*inputs)
        eager_out = model(*inputs)
    assert [t.shape[0] for t in traced_out] == [12, 10]
    for a, b in zip(traced_out, eager_out):
        torch.testing.assert_close(a, b)


def test_without_patch_builtin_len_the_trace_bakes_in_counts():
    """The control for the test above: the split sizes become constants."""
    torch.manual_seed(0)
    model = _KeypointHeadOnBoxes().eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        traced = torch.jit.trace(model, _keypoint_inputs(15, 15, g), check_trace=False)
        with pytest.raises(RuntimeError):
            traced(*_keypoint_inputs(12, 10, g))
