"""caffe2/validate.py: one load-time pass that rejects malformed nets with the project's errors before
anything is allocated, and accepts what the exporter (and upstream detectron2) writes."""

from __future__ import annotations

import pytest

from detectron2_export.caffe2.op_args import ResourceLimits, resource_limits, set_resource_limits
from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.caffe2.protobuf_model import ProtobufModel
from detectron2_export.caffe2.validate import read_model_meta, validate_model, validate_nets
from detectron2_export.errors import OperatorArgumentError, OperatorInputError, ProtobufError, UnknownOperatorError
from tests.caffe2.helpers import make_op
from tests.caffe2.small_net import build_nets, make_params


@pytest.fixture
def nets():
    return build_nets(make_params())


def test_valid_nets_pass_and_give_the_graph_inputs(nets):
    predict, init = nets
    assert validate_nets(predict, init) == ("data",)
    ProtobufModel(predict, init)  # the executor agrees


def test_unknown_op_type_names_the_op(nets):
    predict, init = nets
    predict.op[1].type = "Relux"
    with pytest.raises(UnknownOperatorError, match=r"op #1 'Relux' .*'Relux' is not implemented"):
        validate_nets(predict, init)


def test_input_count(nets):
    predict, init = nets
    del predict.op[0].input[2:]
    predict.op[0].input.pop()
    with pytest.raises(OperatorInputError, match=r"op #0 'Conv' .*Conv: 1 inputs, expected 2 to 3"):
        validate_nets(predict, init)


def test_argument_type_and_range(nets):
    predict, init = nets
    predict.op[4].arg[0].Clear()
    predict.op[4].arg[0].name = "axis"
    predict.op[4].arg[0].s = b"one"
    with pytest.raises(OperatorArgumentError, match=r"op #4 'Softmax' .*axis='one', expected int"):
        validate_nets(predict, init)
    predict, init = build_nets(make_params())
    predict.op[0].arg.add(name="bogus", i=1)
    with pytest.raises(OperatorArgumentError, match=r"op #0 'Conv' .*unknown argument\(s\) \['bogus'\]"):
        validate_nets(predict, init)


def test_use_before_definition(nets):
    predict, init = nets
    conv, relu = (caffe2_pb2.OperatorDef.FromString(op.SerializeToString()) for op in predict.op[:2])
    predict.op[0].CopyFrom(relu)
    predict.op[1].CopyFrom(conv)
    with pytest.raises(OperatorInputError, match=r"op #0 'Relu' .*input blob 'conv1' does not exist in the workspace, is not an external input"):
        validate_nets(predict, init)


def test_parameter_missing_from_init(nets):
    predict, init = nets
    del init.op[3]  # fc_b
    predict.external_input.remove("fc_b")
    with pytest.raises(OperatorInputError, match=r"op #3 'FC' .*input blob 'fc_b' does not exist in the workspace, is not an external input"):
        validate_nets(predict, init)


def test_external_output_produced_by_no_op(nets):
    predict, init = nets
    predict.external_output.append("nowhere")
    with pytest.raises(OperatorInputError, match=r"external outputs \['nowhere'\] are produced by no op"):
        validate_nets(predict, init)


def test_duplicated_external_input(nets):
    predict, init = nets
    predict.external_input.append("data")
    with pytest.raises(ProtobufError, match=r"external_input lists \['data'\] more than once"):
        validate_nets(predict, init)


def test_fill_values_count_against_shape(nets):
    predict, init = nets
    del init.op[1].arg[0].floats[-1]  # conv1_b: 3 values for shape [4]
    with pytest.raises(OperatorArgumentError, match=r"init net: .*op #1 'GivenTensorFill' .*shape=\[4\] needs 4 values, the file holds 3"):
        validate_nets(predict, init)
    predict, init = build_nets(make_params())
    init.op[0].arg[1].ints[0] = 2**40  # conv1_w shape (2**40, 3, 3, 3): refused from the lengths alone
    with pytest.raises(OperatorArgumentError, match=r"op #0 'GivenTensorFill' .*needs 29686813949952 values, the file holds 108"):
        validate_nets(predict, init)


def test_constant_fill_size_against_limits(nets):
    predict, init = nets
    init.op.append(make_op("ConstantFill", [], ["big"], shape=[1 << 20, 1 << 20], value=0.0))
    with pytest.raises(OperatorArgumentError, match=r"op #4 'ConstantFill' .*output \['big'\] shape=\(1048576, 1048576\) torch.float32 needs 4398046511104 bytes"):
        validate_nets(predict, init)
    # the load-time ceiling scales with the model: floor + factor x its parameter bytes
    init.op[-1].arg[0].ints[:] = [1024, 1024]  # 4 MiB
    small = ResourceLimits(floor_bytes=1 << 20, file_size_factor=4.0)
    with pytest.raises(OperatorArgumentError, match=r"needs 4194304 bytes, expected at most 1055568"):
        validate_nets(predict, init, limits=small)  # the init net holds 4 * 437 bytes of values
    assert validate_nets(predict, init, limits=small, model_bytes=1 << 20) == ("data",)


def test_runtime_ceiling_is_configurable(nets):
    from tests.caffe2.helpers import run_single_op

    previous = set_resource_limits(ResourceLimits(max_tensor_bytes=1000))
    try:
        with pytest.raises(OperatorArgumentError, match=r"ConstantFill: output shape=\(251,\) torch.float32 needs 1004 bytes, expected at most 1000"):
            run_single_op("ConstantFill", [], shape=[251], value=1.0)
        (y,) = run_single_op("ConstantFill", [], shape=[250], value=1.0)
        assert y.shape == (250,)
    finally:
        set_resource_limits(previous)
    assert resource_limits() == previous


def _detection_predict(**args) -> caffe2_pb2.NetDef:
    net = caffe2_pb2.NetDef(name="p", external_input=["data", "im_info"], external_output=["bbox_nms", "score_nms", "class_nms"])
    for name, (field, value) in args.items():
        arg = net.arg.add(name=name)
        if isinstance(value, list):
            getattr(arg, field).extend(value)
        else:
            setattr(arg, field, value)
    return net


EXPORTED_META = {
    "size_divisibility": ("i", 32),
    "device": ("s", b"cpu"),
    "meta_architecture": ("s", b"GeneralizedRCNN"),
    "pad_value": ("floats", [103.53, 116.28, 123.675]),
}


def test_meta_of_an_export_and_of_an_upstream_file():
    meta = read_model_meta(_detection_predict(**EXPORTED_META), ("data", "im_info"))
    assert (meta.meta_architecture, meta.size_divisibility, meta.device) == ("GeneralizedRCNN", 32, "cpu")
    assert meta.pad_value == pytest.approx([103.53, 116.28, 123.675])
    upstream = {k: v for k, v in EXPORTED_META.items() if k != "pad_value"}
    assert read_model_meta(_detection_predict(**upstream)).pad_value is None
    assert read_model_meta(_detection_predict()).device == "cpu"  # nothing stored: upstream's defaults
    assert read_model_meta(_detection_predict(device=("s", b"cuda:1"))).device == "cuda:1"


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("device", ("s", b"CPU"), r"'device'='CPU', expected 'cpu', 'cuda' or 'cuda:<index>'"),
        ("device", ("s", b"\xff\xfe"), r"'device'=b'\\xff\\xfe', expected a UTF-8 string"),
        ("device", ("i", 0), r"'device' sets fields \['i'\], expected the 's' field"),
        ("pad_value", ("floats", [1.0, 2.0]), r"'pad_value'=\[1.0, 2.0\], expected 1 or 3 finite floats"),
        ("pad_value", ("floats", [float("nan")] * 3), r"'pad_value'=\[nan, nan, nan\], expected 1 or 3 finite"),
        ("size_divisibility", ("i", 2**31 - 1), r"'size_divisibility'=2147483647, expected in \[0, 4096\]"),
        ("size_divisibility", ("i", -1), r"'size_divisibility'=-1, expected in \[0, 4096\]"),
        ("size_divisibility", ("f", 32.0), r"'size_divisibility' sets fields \['f'\], expected the 'i' field"),
        ("meta_architecture", ("s", b"Nope"), r"'meta_architecture'='Nope', expected one of \['GeneralizedRCNN'"),
    ],
)
def test_bad_meta_argument(name, value, message):
    args = dict(EXPORTED_META, **{name: value})
    with pytest.raises(ProtobufError, match=rf"predict net 'p': argument {message}"):
        read_model_meta(_detection_predict(**args))


def test_meta_architecture_needs_its_outputs_and_arguments():
    net = _detection_predict(meta_architecture=("s", b"PanopticFPN"))
    with pytest.raises(ProtobufError, match=r"argument 'combine_on' missing"):
        read_model_meta(net)
    for name, field in (("combine_on", "i"), ("combine_overlap_threshold", "f"), ("combine_stuff_area_limit", "i"),
                        ("combine_instances_confidence_threshold", "f")):
        setattr(net.arg.add(name=name), field, 1)
    with pytest.raises(ProtobufError, match=r"lack \['sem_seg'\], which meta_architecture 'PanopticFPN' needs"):
        read_model_meta(net)
    net.external_output.append("sem_seg")
    assert read_model_meta(net).meta_architecture == "PanopticFPN"
    del net.external_output[0]
    assert read_model_meta(net, check_outputs=False).meta_architecture == "PanopticFPN"


def test_graph_inputs_must_be_data_then_im_info():
    net = _detection_predict()
    with pytest.raises(ProtobufError, match=r"graph inputs .*\['im_info', 'data'\], expected \['data', 'im_info'\] in this order"):
        read_model_meta(net, ("im_info", "data"))
    with pytest.raises(ProtobufError, match=r"graph inputs .*\['im_info'\]"):
        read_model_meta(net, ("im_info",))


def test_validate_model_combines_both(nets):
    predict, init = nets
    with pytest.raises(ProtobufError, match=r"lack \['bbox_nms', 'score_nms', 'class_nms'\]"):
        validate_model(predict, init)
    with pytest.raises(ProtobufError, match=r"graph inputs .*\['data'\], expected \['data', 'im_info'\]"):
        validate_model(predict, init, check_outputs=False)
