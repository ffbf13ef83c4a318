import numpy as np

from detectron2_export.caffe2.workspace import Workspace
from detectron2_export.export.passes import (
    construct_init_net_from_params,
    identify_reshape_sub_graph,
    remove_reshape_for_fc,
)
from tests.export.passes.helpers import io, net, op

RNG = np.random.default_rng(0)
PARAMS = {
    "idx": np.array([0], np.int64),
    "minus_one": np.array([-1], np.int64),
    "fc_w": RNG.standard_normal((3, 2 * 2 * 2)).astype(np.float32),
    "fc_b": RNG.standard_normal(3).astype(np.float32),
}


def _view_then_fc(reader="FC", extra_ops=()):
    """x -> Relu -> feat; Shape -> Gather -> Concat(-1) -> Reshape(feat) -> FC."""
    ops = [
        op("Relu", ["x"], ["feat"]),
        op("Shape", ["feat"], ["shape"]),
        op("Gather", ["shape", "idx"], ["n"]),
        op("Concat", ["n", "minus_one"], ["new_shape", "split_info"], axis=0),
        op("Reshape", ["feat", "new_shape"], ["flat", "old_shape"]),
        op(reader, ["flat", "fc_w", "fc_b"] if reader == "FC" else ["flat"], ["out"]),
        *extra_ops,
    ]
    outputs = ["out"] + [o.output[0] for o in extra_ops]
    return net(ops, external_input=["x", *PARAMS], external_output=outputs)


def _run(predict, params, x):
    ws = Workspace("remove_reshape_for_fc")
    ws.RunNetOnce(construct_init_net_from_params(params))
    ws.FeedBlob("x", x)
    ws.RunNetOnce(predict)
    return [ws.FetchBlob(name) for name in predict.external_output]


def test_identifies_the_shape_computing_ops():
    assert identify_reshape_sub_graph(_view_then_fc()) == [[1, 2, 3, 4]]


def test_reshape_sub_graph_before_fc_is_removed_with_its_params():
    before = _view_then_fc()
    after, params = remove_reshape_for_fc(before, PARAMS)
    assert io(after) == [("Relu", ["x"], ["feat"]), ("FC", ["feat", "fc_w", "fc_b"], ["out"])]
    assert list(params) == ["fc_w", "fc_b"] and list(after.external_input) == ["x", "fc_w", "fc_b"]
    assert len(before.op) == 6 and list(PARAMS) == ["idx", "minus_one", "fc_w", "fc_b"]  # inputs untouched
    x = RNG.standard_normal((2, 2, 2, 2)).astype(np.float32)
    np.testing.assert_allclose(_run(after, params, x)[0], _run(before, PARAMS, x)[0], rtol=1e-6)


def test_reshape_read_by_another_op_type_is_kept():
    before = _view_then_fc(reader="Relu")
    after, params = remove_reshape_for_fc(before, PARAMS)
    assert io(after) == io(before) and params == PARAMS


def test_parameter_also_read_elsewhere_is_kept():
    before = _view_then_fc(extra_ops=[op("Add", ["minus_one", "minus_one"], ["minus_two"])])
    after, params = remove_reshape_for_fc(before, PARAMS)
    assert [o.type for o in after.op] == ["Relu", "FC", "Add"]
    assert list(params) == ["minus_one", "fc_w", "fc_b"] and "idx" not in after.external_input


def test_constant_target_shape_from_the_predict_net_is_removed_too():
    # what current PyTorch exports for a static .view(): the target shape is an ONNX Constant
    before = net(
        [
            op("Relu", ["x"], ["feat"]),
            op("GivenTensorInt64Fill", [], ["target"], values=[2, -1], shape=[2]),
            op("Reshape", ["feat", "target"], ["flat", "old_shape"]),
            op("FC", ["flat", "fc_w", "fc_b"], ["out"]),
        ],
        external_input=["x", "fc_w", "fc_b"],
        external_output=["out"],
    )
    params = {k: PARAMS[k] for k in ("fc_w", "fc_b")}
    after, after_params = remove_reshape_for_fc(before, params)
    assert io(after) == [("Relu", ["x"], ["feat"]), ("FC", ["feat", "fc_w", "fc_b"], ["out"])]
    x = RNG.standard_normal((2, 2, 2, 2)).astype(np.float32)
    np.testing.assert_allclose(_run(after, after_params, x)[0], _run(before, params, x)[0], rtol=1e-6)
