import pytest

from detectron2_export.errors import IllegalGraphTransformError
from detectron2_export.export.passes import fuse_alias_placeholder
from tests.export.passes.helpers import io, net, op


def _alias(src, dst, name, is_backward=0):
    return op("AliasWithName", [src], [dst], name=name, is_backward=is_backward)


def test_forward_alias_names_graph_input_and_output():
    predict = net(
        [
            _alias("input.1", "t0", "data"),
            op("Conv", ["t0", "w"], ["t1"], kernels=[1, 1]),
            op("Relu", ["t1"], ["t2"]),
            _alias("t2", "t3", "feature"),
        ],
        external_input=["input.1", "w"],
        external_output=["t3"],
    )
    fuse_alias_placeholder(predict, net([]))
    assert io(predict) == [("Conv", ["data", "w"], ["t1"]), ("Relu", ["t1"], ["feature"])]
    assert list(predict.external_input) == ["data", "w"] and list(predict.external_output) == ["feature"]


def test_backward_alias_renames_the_producer_output_for_all_readers():
    predict = net(
        [
            op("Relu", ["x"], ["a"]),
            op("Sigmoid", ["a"], ["s"]),
            _alias("a", "a_alias", "normalized", is_backward=1),
            op("Tanh", ["a_alias"], ["t"]),
        ],
        external_input=["x"],
        external_output=["s", "t"],
    )
    fuse_alias_placeholder(predict, net([]))
    assert io(predict) == [
        ("Relu", ["x"], ["normalized"]),
        ("Sigmoid", ["normalized"], ["s"]),
        ("Tanh", ["normalized"], ["t"]),
    ]


def test_forward_alias_of_a_shared_blob_is_illegal():
    predict = net([op("Relu", ["x"], ["a"]), op("Sigmoid", ["a"], ["s"]), _alias("a", "b", "named")], ["x"], ["s", "b"])
    with pytest.raises(IllegalGraphTransformError, match="consumed by other ops"):
        fuse_alias_placeholder(predict, net([]))


def test_backward_alias_of_a_parameter_is_not_supported():
    init = net([op("GivenTensorFill", [], ["w"], values=[1.0], shape=[1])], external_output=["w"])
    predict = net([_alias("w", "w2", "weight", is_backward=1), op("Mul", ["x", "w2"], ["y"])], ["x", "w"], ["y"])
    with pytest.raises(NotImplementedError, match="no producer"):
        fuse_alias_placeholder(predict, init)


def test_alias_renames_parameter_in_the_init_net_too():
    init = net([op("GivenTensorFill", [], ["w"], values=[1.0], shape=[1])], external_output=["w"])
    predict = net([_alias("w", "w2", "weight"), op("Mul", ["x", "w2"], ["y"])], ["x", "w"], ["y"])
    fuse_alias_placeholder(predict, init)
    assert io(predict) == [("Mul", ["x", "weight"], ["y"])]
    assert list(predict.external_input) == ["x", "weight"]
    assert io(init) == [("GivenTensorFill", [], ["weight"])] and list(init.external_output) == ["weight"]


def test_alias_without_name_is_rejected():
    predict = net([op("AliasWithName", ["x"], ["y"])], ["x"], ["y"])
    with pytest.raises(IllegalGraphTransformError, match="name is missing"):
        fuse_alias_placeholder(predict, net([]))
