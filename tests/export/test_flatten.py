"""flatten_to_tuple / schemas / TracingAdapter (SPEC 2.6, 2.7), and schema serialisation with
dump_dataclass / instantiate."""

import json

import pytest
import torch
from torch import nn

from detectron2_export.config.instantiate import convert_target_to_string, dump_dataclass, instantiate
from detectron2_export.export import TracingAdapter
from detectron2_export.export.flatten import (
    DictSchema,
    IdentitySchema,
    InstancesSchema,
    ListSchema,
    TensorWrapSchema,
    TupleSchema,
    flatten_to_tuple,
)
from detectron2_export.structures import Boxes, Instances, ROIMasks

NESTED = [3, ([5, 6], {"name": [7, 9], "name2": 3})]


def _instances() -> Instances:
    inst = Instances((20, 30))
    inst.scores = torch.tensor([0.9, 0.4])
    inst.pred_boxes = Boxes(torch.tensor([[1.0, 2.0, 5.0, 6.0], [0.0, 0.0, 10.0, 10.0]]))
    inst.pred_masks = torch.rand(2, 1, 4, 4)
    return inst


def _assert_same_instances(a: Instances, b: Instances) -> None:
    assert tuple(a.image_size) == tuple(b.image_size)
    assert a.get_fields().keys() == b.get_fields().keys()
    for name, value in a.get_fields().items():
        other = b.get(name)
        assert type(value) is type(other), name
        if isinstance(value, Boxes):
            value, other = value.tensor, other.tensor
        torch.testing.assert_close(value, other, rtol=0, atol=0)


def test_nested_round_trip():
    values, schema = flatten_to_tuple(NESTED)
    assert values == (3, 5, 6, 7, 9, 3)
    rebuilt = schema(values)
    assert rebuilt == NESTED
    assert isinstance(rebuilt[1], tuple) and isinstance(rebuilt[1][1], dict)
    _, schema2 = flatten_to_tuple(rebuilt)
    assert schema2 == schema


def test_nested_schema_structure():
    _, schema = flatten_to_tuple(NESTED)
    assert schema == ListSchema(
        schemas=[
            IdentitySchema(),
            TupleSchema(
                schemas=[
                    ListSchema([IdentitySchema(), IdentitySchema()], [1, 1]),
                    DictSchema(
                        schemas=[ListSchema([IdentitySchema(), IdentitySchema()], [1, 1]), IdentitySchema()],
                        sizes=[2, 1],
                        keys=["name", "name2"],
                    ),
                ],
                sizes=[2, 3],
            ),
        ],
        sizes=[1, 5],
    )


def test_strings_are_leaves_and_dict_values_are_in_sorted_key_order():
    values, schema = flatten_to_tuple({"b": "xy", "a": b"z", "c": None})
    assert values == (b"z", "xy", None)
    assert schema.keys == ["a", "b", "c"]
    assert schema(values) == {"a": b"z", "b": "xy", "c": None}


def test_dict_keys_must_be_str():
    with pytest.raises(KeyError, match="Only support flattening dictionaries if keys are str."):
        flatten_to_tuple({1: torch.zeros(1)})


def test_rebuild_checks_lengths():
    _, schema = flatten_to_tuple([1, [2, 3]])
    with pytest.raises(AssertionError, match="Values has length 2"):
        schema((1, 2))
    with pytest.raises(ValueError, match="Values has length 2 but schemas has length 1"):
        ListSchema([IdentitySchema()], [1, 1])((1, 2))


def test_instances_flatten_returns_the_same_tensors_in_field_name_order():
    inst = _instances()
    values, schema = flatten_to_tuple(inst)
    # pred_boxes, pred_masks, scores (sorted field names), then the image size
    assert len(values) == 4
    assert values[0] is inst.pred_boxes.tensor
    assert values[1] is inst.pred_masks
    assert values[2] is inst.scores
    assert values[3].tolist() == [20, 30]
    assert isinstance(schema, InstancesSchema)
    assert schema.keys == ["pred_boxes", "pred_masks", "scores"]
    assert schema.schemas[0] == TensorWrapSchema("detectron2_export.structures.Boxes")

    rebuilt = schema(values)
    assert isinstance(rebuilt, Instances) and isinstance(rebuilt.pred_boxes, Boxes)
    _assert_same_instances(rebuilt, inst)
    assert flatten_to_tuple(rebuilt)[1] == schema


def test_instances_with_tensor_image_size_keeps_it():
    size = torch.tensor([20, 30])
    inst = Instances(size, scores=torch.ones(3))
    values, _ = flatten_to_tuple(inst)
    assert values[-1] is size


def test_instances_inside_outputs_round_trip():
    outputs = [{"instances": _instances()}, {"instances": _instances()[:1]}]
    values, schema = flatten_to_tuple(outputs)
    assert len(values) == 8 and all(isinstance(v, torch.Tensor) for v in values)
    rebuilt = schema(values)
    for a, b in zip(rebuilt, outputs):
        _assert_same_instances(a["instances"], b["instances"])


def test_roi_masks_use_tensor_wrap_schema():
    masks = ROIMasks(torch.rand(2, 7, 7))
    values, schema = flatten_to_tuple(masks)
    assert values[0] is masks.tensor
    assert schema == TensorWrapSchema("detectron2_export.structures.ROIMasks")
    rebuilt = schema(values)
    assert isinstance(rebuilt, ROIMasks) and rebuilt.tensor is masks.tensor


@pytest.mark.parametrize(
    "obj",
    [NESTED, [{"instances": _instances()}], (Boxes(torch.zeros(0, 4)), {"x": [torch.ones(1)]})],
    ids=["nested", "instances", "boxes"],
)
def test_schema_json_round_trip(obj):
    _, schema = flatten_to_tuple(obj)
    dumped = dump_dataclass(schema)
    text = json.dumps(dumped)
    restored = instantiate(json.loads(text))
    assert restored == schema
    assert type(restored) is type(schema)


def test_dump_dataclass_uses_shortest_importable_path():
    dumped = dump_dataclass(TensorWrapSchema("detectron2_export.structures.Boxes"))
    assert dumped == {
        "_target_": "detectron2_export.export.flatten.TensorWrapSchema",
        "class_name": "detectron2_export.structures.Boxes",
    }
    assert convert_target_to_string(Boxes) == "detectron2_export.structures.Boxes"
    with pytest.raises(TypeError, match="expected an instance of a dataclass"):
        dump_dataclass(TensorWrapSchema)


def test_instantiate_leaves_plain_values():
    assert instantiate({"a": [1, {"b": 2}]}) == {"a": [1, {"b": 2}]}
    assert instantiate([{"_target_": "builtins.dict", "x": 1}, (2,)]) == [{"x": 1}, (2,)]
    with pytest.raises(ImportError, match="no_such_module.Thing"):
        instantiate({"_target_": "no_such_module.Thing"})


class _BoxesToInstances(nn.Module):
    """A model with rich inputs and outputs: a list of dicts in, Instances out."""

    def forward(self, inputs):
        boxes = inputs[0]["boxes"] * inputs[0]["scale"]
        inst = Instances((100, 100))
        inst.pred_boxes = Boxes(boxes)
        inst.scores = boxes.sum(dim=1)
        return [{"instances": inst}]


def test_tracing_adapter_traces_rich_model_and_generalizes():
    model = _BoxesToInstances()
    boxes, scale = torch.rand(5, 4), torch.tensor(2.0)
    adapter = TracingAdapter(model, [{"boxes": boxes, "scale": scale}])
    assert len(adapter.flattened_inputs) == 2
    assert adapter.flattened_inputs[0] is boxes and adapter.flattened_inputs[1] is scale

    traced = torch.jit.trace(adapter, adapter.flattened_inputs)
    other_boxes, other_scale = torch.rand(3, 4), torch.tensor(0.5)
    outputs = adapter.outputs_schema(traced(other_boxes, other_scale))
    expected = model([{"boxes": other_boxes, "scale": other_scale}])
    _assert_same_instances(outputs[0]["instances"], expected[0]["instances"])

    wrapper = adapter._create_wrapper(traced)
    wrapped = wrapper([{"boxes": other_boxes, "scale": other_scale}])
    _assert_same_instances(wrapped[0]["instances"], expected[0]["instances"])


def test_tracing_adapter_custom_inference_func_and_unwraps_data_parallel():
    model = nn.Linear(3, 2)
    x = torch.rand(4, 3)
    adapter = TracingAdapter(nn.DataParallel(model), x, inference_func=lambda m, t: {"y": m(t)})
    assert adapter.model is model
    assert adapter.inputs == (x,)
    (y,) = adapter(x)
    torch.testing.assert_close(y, model(x))
    assert adapter.outputs_schema == DictSchema([IdentitySchema()], [1], ["y"])


def test_tracing_adapter_rejects_non_tensor_inputs():
    with pytest.raises(ValueError, match=r"Inputs for tracing must only contain tensors. Got a <class 'str'> instead."):
        TracingAdapter(nn.Identity(), ("text", torch.ones(1)))


def test_tracing_adapter_allow_non_tensor_inputs_only_replays_the_traced_inputs():
    x = torch.rand(2)
    adapter = TracingAdapter(lambda_module(lambda s, t: t * len(s)), ("abc", x), allow_non_tensor=True)
    assert adapter.flattened_inputs == (x,) and adapter.flattened_inputs[0] is x
    assert adapter.inputs_schema is None
    (y,) = adapter(*adapter.flattened_inputs)
    torch.testing.assert_close(y, x * 3)
    with pytest.raises(ValueError, match="cannot generalize"):
        adapter(torch.rand(2))


def test_tracing_adapter_non_tensor_outputs():
    model = lambda_module(lambda t: (t + 1, "label"))
    x = torch.rand(2)
    message = "Model cannot be traced because some model outputs cannot flatten to tensors."
    with pytest.raises(ValueError, match=message):
        TracingAdapter(model, x)(x)
    adapter = TracingAdapter(model, x, allow_non_tensor=True)
    (y,) = adapter(x)
    torch.testing.assert_close(y, x + 1)
    assert adapter.outputs_schema is None


def test_tracing_adapter_requires_a_stable_output_structure():
    calls = []

    def inference(model, t):
        calls.append(1)
        return [t] * len(calls)

    x = torch.rand(2)
    adapter = TracingAdapter(nn.Identity(), x, inference_func=inference)
    adapter(x)
    with pytest.raises(AssertionError, match="same structure"):
        adapter(x)


class lambda_module(nn.Module):  # noqa: N801 (reads as a function)
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)
