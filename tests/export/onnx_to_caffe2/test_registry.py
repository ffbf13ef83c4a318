import pytest
from onnx import helper

from detectron2_export.errors import UnsupportedOnnxNodeError
from detectron2_export.export.onnx_to_caffe2.converters import slice as slice_rules
from detectron2_export.export.onnx_to_caffe2.converters import softmax as softmax_rules
from detectron2_export.export.onnx_to_caffe2.registry import converts, domain_key, get_converter, supported_ops


@pytest.mark.parametrize(
    "domain, key",
    [("", ""), ("ai.onnx", ""), ("org.pytorch._caffe2", "_caffe2"), ("_caffe2", "_caffe2"), ("x.y", "x.y")],
)
def test_domain_key(domain, key):
    assert domain_key(domain) == key


@pytest.mark.parametrize(
    "op_type, opset, rule",
    [
        ("Softmax", 11, softmax_rules.convert_softmax_2d),
        ("Softmax", 12, softmax_rules.convert_softmax_2d),
        ("Softmax", 13, softmax_rules.convert_softmax_axis),
        ("Softmax", 17, softmax_rules.convert_softmax_axis),
        ("Slice", 9, slice_rules.convert_slice_attributes),
        ("Slice", 10, slice_rules.convert_slice),
    ],
)
def test_rule_selected_by_opset(op_type, opset, rule):
    assert get_converter(helper.make_node(op_type, ["x"], ["y"]), opset) is rule


def test_opset_older_than_every_rule_is_refused():
    with pytest.raises(UnsupportedOnnxNodeError, match="rules exist only from opset 7"):
        get_converter(helper.make_node("Upsample", ["x"], ["y"]), 6)


def test_registering_twice_is_an_error():
    with pytest.raises(ValueError, match="'Softmax'.*since opset 13.*registered twice"):
        converts("Softmax", since=13)(lambda node, ctx: [])


def test_supported_ops_lists_custom_domain_with_prefix():
    ops = supported_ops()
    assert "Conv" in ops and "_caffe2::GenerateProposals" in ops and "org.pytorch.aten::ATen" in ops
    assert ops == sorted(ops)
