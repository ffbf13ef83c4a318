from detectron2_export.export.passes import fuse_copy_between_cpu_and_gpu
from tests.export.passes.helpers import io, net, op


def test_round_trip_is_removed_and_readers_rewired():
    predict = net(
        [
            op("Relu", ["x"], ["a"]),
            op("CopyCPUToGPU", ["a"], ["a_gpu"]),
            op("CopyGPUToCPU", ["a_gpu"], ["a_cpu"]),
            op("CopyGPUToCPU", ["a_gpu"], ["a_cpu2"]),
            op("Sigmoid", ["a_cpu"], ["s"]),
            op("Tanh", ["a_cpu2"], ["t"]),
            op("Add", ["a_cpu2", "s"], ["y"]),
        ],
        ["x"],
        ["t", "y"],
    )
    fuse_copy_between_cpu_and_gpu(predict)
    assert io(predict) == [
        ("Relu", ["x"], ["a"]),
        ("Sigmoid", ["a"], ["s"]),
        ("Tanh", ["a"], ["t"]),
        ("Add", ["a", "s"], ["y"]),
    ]


def test_nested_round_trips_are_all_removed():
    predict = net(
        [
            op("CopyGPUToCPU", ["x"], ["c1"]),
            op("CopyCPUToGPU", ["c1"], ["g1"]),
            op("CopyGPUToCPU", ["g1"], ["c2"]),
            op("CopyCPUToGPU", ["c2"], ["g2"]),
            op("Relu", ["g2"], ["y"]),
        ],
        ["x"],
        ["y"],
    )
    fuse_copy_between_cpu_and_gpu(predict)
    assert io(predict) == [("Relu", ["x"], ["y"])]


def test_copy_read_by_another_op_or_output_is_kept():
    ops = [
        op("CopyCPUToGPU", ["x"], ["g"]),
        op("Relu", ["g"], ["r"]),
        op("CopyGPUToCPU", ["g"], ["c"]),
        op("Sigmoid", ["c"], ["s"]),
    ]
    predict = net(ops, ["x"], ["r", "s"])
    before = io(predict)
    fuse_copy_between_cpu_and_gpu(predict)
    assert io(predict) == before

    predict = net([op("CopyCPUToGPU", ["x"], ["g"]), op("CopyGPUToCPU", ["g"], ["c"])], ["x"], ["c"])
    fuse_copy_between_cpu_and_gpu(predict)
    assert len(predict.op) == 2
