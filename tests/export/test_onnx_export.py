import pytest
import torch
import torch.nn.functional as F
from torch import nn

from detectron2_export.errors import ExportError
from detectron2_export.export.onnx_export import ONNX_OPSET_VERSION, export_onnx_model


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Dropout(0.5))

    def forward(self, inputs):
        data, scale = inputs  # called as model((data, scale)), like detectron2's traceable models
        return F.relu(self.head(data)) * scale


def test_exports_with_a_tuple_argument():
    inputs = (torch.rand(1, 3, 4, 4), torch.rand(1, 4, 4, 4))
    model = export_onnx_model(TwoInputs().eval(), inputs)
    params = {t.name for t in model.graph.initializer}
    data_inputs = [i for i in model.graph.input if i.name not in params]
    assert [list(d.dim_value for d in i.type.tensor_type.shape.dim) for i in data_inputs] == [
        [1, 3, 4, 4],
        [1, 4, 4, 4],
    ]
    assert {o.domain: o.version for o in model.opset_import}[""] == ONNX_OPSET_VERSION
    op_types = [n.op_type for n in model.graph.node]
    assert "Dropout" not in op_types and "Conv" in op_types  # eval mode: dropout gone


def test_training_mode_submodule_is_refused():
    model = TwoInputs().eval()
    model.head[1].train()
    with pytest.raises(ExportError, match=r"module 'head.1' training=True, expected eval mode"):
        export_onnx_model(model, (torch.rand(1, 3, 4, 4), torch.rand(1, 4, 4, 4)))


def test_export_hides_the_exporter_deprecation_warnings(recwarn):
    export_onnx_model(TwoInputs().eval(), (torch.rand(1, 3, 4, 4), torch.rand(1, 4, 4, 4)))
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]
