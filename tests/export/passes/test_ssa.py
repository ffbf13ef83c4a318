import pytest

from detectron2_export.errors import IllegalGraphTransformError
from detectron2_export.export.passes.ssa import (
    get_consumer_map,
    get_producer_map,
    get_ssa,
    get_sub_graph_external_input_output,
    rename_op_input,
    rename_op_output,
)
from tests.export.passes.helpers import io, net, op


def _chain():
    # x -> Relu -> a ; a -> Relu (in place) -> a ; (a, w) -> Mul -> y
    return net(
        [op("Relu", ["x"], ["a"]), op("Relu", ["a"], ["a"]), op("Mul", ["a", "w"], ["y"])],
        external_input=["x", "w"],
        external_output=["y"],
    )


def test_versions_bump_on_every_write():
    ssa, versions = get_ssa(_chain())
    assert ssa == [
        ([("x", 0)], [("a", 1)]),
        ([("a", 1)], [("a", 2)]),
        ([("a", 2), ("w", 0)], [("y", 1)]),
    ]
    assert versions == {"x": 0, "w": 0, "a": 2, "y": 1}


def test_seeded_versions_are_not_modified():
    seed = {"w": 1}
    ssa, versions = get_ssa(_chain(), seed)
    assert ssa[2][0] == [("a", 2), ("w", 1)] and seed == {"w": 1}


def test_producer_and_consumer_maps():
    ssa, _ = get_ssa(_chain())
    assert get_producer_map(ssa) == {("a", 1): (0, 0), ("a", 2): (1, 0), ("y", 1): (2, 0)}
    consumers = get_consumer_map(ssa)
    assert consumers[("a", 1)] == [(1, 0)] and consumers[("w", 0)] == [(2, 1)] and consumers[("y", 1)] == []


def test_rename_op_output_renames_only_that_version():
    n = _chain()
    rename_op_output(n, 0, 0, "b")
    assert io(n) == [("Relu", ["x"], ["b"]), ("Relu", ["b"], ["a"]), ("Mul", ["a", "w"], ["y"])]


def test_rename_op_output_of_final_version_follows_to_external_output():
    n = _chain()
    rename_op_output(n, 2, 0, "scores")
    assert n.op[2].output[0] == "scores" and list(n.external_output) == ["scores"]


def test_rename_op_input_renames_a_graph_input_in_both_nets():
    predict = _chain()
    init = net([op("GivenTensorFill", [], ["w"], values=[2.0], shape=[1])], external_output=["w"])
    rename_op_input(predict, init, 0, 0, "data")
    assert list(predict.external_input) == ["data", "w"] and predict.op[0].input[0] == "data"


def test_rename_op_input_of_shared_blob_is_illegal():
    n = net([op("Relu", ["x"], ["a"]), op("Sigmoid", ["a"], ["b"]), op("Tanh", ["a"], ["c"])], ["x"], ["b", "c"])
    with pytest.raises(IllegalGraphTransformError, match="consumed by other ops, please use rename_op_output"):
        rename_op_input(n, net([]), 1, 0, "renamed")


def test_rename_op_input_from_producer():
    n = net([op("Relu", ["x"], ["a"]), op("Sigmoid", ["a"], ["b"]), op("Tanh", ["a"], ["c"])], ["x"], ["b", "c"])
    rename_op_input(n, net([]), 1, 0, "renamed", from_producer=True)
    assert io(n) == [("Relu", ["x"], ["renamed"]), ("Sigmoid", ["renamed"], ["b"]), ("Tanh", ["renamed"], ["c"])]


def test_rename_op_input_from_producer_needs_a_producer():
    with pytest.raises(NotImplementedError, match="no producer"):
        rename_op_input(_chain(), net([]), 2, 1, "weights", from_producer=True)


def test_sub_graph_external_inputs_and_outputs():
    n = _chain()
    assert get_sub_graph_external_input_output(n, [1, 2]) == ([("a", 1), ("w", 0)], [("y", 1)])
    assert get_sub_graph_external_input_output(n, [0, 1]) == ([("x", 0)], [("a", 2)])
