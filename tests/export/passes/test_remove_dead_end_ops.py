from detectron2_export.export.passes import remove_dead_end_ops
from tests.export.passes.helpers import io, net, op


def test_unused_chains_are_removed_backwards():
    init = net(
        [
            op("GivenTensorFill", [], ["w"], values=[1.0], shape=[1]),
            op("GivenTensorFill", [], ["unused"], values=[2.0], shape=[1]),
            op("GivenTensorFill", [], ["tmp"], values=[3.0], shape=[1]),
            op("Relu", ["tmp"], ["tmp2"]),  # only feeds nothing
            op("Copy", ["w"], ["b"]),
        ],
        external_output=["w", "b"],
    )
    remove_dead_end_ops(init)
    assert io(init) == [("GivenTensorFill", [], ["w"]), ("Copy", ["w"], ["b"])]


def test_overwritten_version_counts_as_dead():
    n = net(
        [
            op("GivenTensorFill", [], ["a"], values=[1.0], shape=[1]),
            op("GivenTensorFill", [], ["a"], values=[2.0], shape=[1]),
        ],
        external_output=["a"],
    )
    remove_dead_end_ops(n)
    assert len(n.op) == 1 and n.op[0].arg[0].floats[0] == 2.0
