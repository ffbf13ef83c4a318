"""The standard-ONNX export of the bundled (trained) shapes Mask R-CNN: batches, sizes, options,
errors. Reference: the eager model, and the same export's single-image runs."""

from __future__ import annotations

import copy
import json

import numpy as np
import onnx
import pytest
import torch

from detectron2_export.errors import ExportError
from detectron2_export.export import OnnxRuntimeModel, export_onnx
from detectron2_export.export.onnx.export import METADATA_KEY

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runtime(shapes_onnx):
    return OnnxRuntimeModel(shapes_onnx)


def _assert_same_instances(got, want, box_atol=1e-3, score_atol=1e-4):
    assert got.image_size == want.image_size
    assert len(got) == len(want)
    torch.testing.assert_close(got.pred_boxes.tensor, want.pred_boxes.tensor, atol=box_atol, rtol=0)
    torch.testing.assert_close(got.scores, want.scores, atol=score_atol, rtol=0)
    assert torch.equal(got.pred_classes, want.pred_classes)


def test_single_images_equal_eager(shapes_model, shapes_inputs, runtime):
    _, model = shapes_model
    for inputs in shapes_inputs:
        with torch.no_grad():
            want = model([inputs])[0]["instances"]
        got = runtime([inputs])[0]["instances"]
        assert len(want) > 0
        _assert_same_instances(got, want)
        assert float((got.pred_masks == want.pred_masks).float().mean()) >= 0.999


def test_batch_of_four_sizes_equals_single_runs(shapes_inputs, runtime):
    """Four images of four sizes in one run: each gets exactly its single-run detections (eager
    detectron2 would not: the padding of the batch leaks into the borders of smaller images)."""
    assert len({tuple(x["image"].shape) for x in shapes_inputs}) == 4
    batch = runtime(shapes_inputs)
    for inputs, got in zip(shapes_inputs, batch):
        want = runtime([inputs])[0]["instances"]
        _assert_same_instances(got["instances"], want, box_atol=1e-4, score_atol=1e-5)
        assert torch.equal(got["instances"].pred_masks, want.pred_masks)


def test_blank_tiny_and_large_images(shapes_model, runtime):
    _, model = shapes_model
    mean = model.pixel_mean.view(3, 1, 1)
    blank = mean.expand(3, 288, 384).clone()
    assert len(runtime([{"image": blank}])[0]["instances"]) == 0
    tiny = runtime([{"image": torch.full((3, 1, 1), 128.0)}, {"image": blank[:, :17, :23]}])
    assert [len(x["instances"]) for x in tiny] == [0, 0]
    large = torch.rand(3, 1333, 1000, generator=torch.Generator().manual_seed(0)) * 255
    got = runtime([{"image": large}])[0]["instances"]
    with torch.no_grad():
        want = model([{"image": large}])[0]["instances"]
    _assert_same_instances(got, want)


def test_paste_masks_in_graph(shapes_model, shapes_inputs, runtime):
    cfg, model = shapes_model
    pasted = OnnxRuntimeModel(export_onnx(cfg, model, shapes_inputs[:1], paste_masks=True))
    raw = pasted.run(shapes_inputs[:2])
    assert raw["pred_masks"].dtype == bool and raw["pred_masks"].ndim == 4
    for got, want in zip(pasted(shapes_inputs[:2]), runtime(shapes_inputs[:2])):
        _assert_same_instances(got["instances"], want["instances"])
        agree = (got["instances"].pred_masks == want["instances"].pred_masks).float().mean()
        assert float(agree) >= 0.9999


def test_raw_outputs(shapes_onnx, shapes_inputs, runtime):
    raw = runtime.run(shapes_inputs[:2])
    n = raw["num_instances"]
    assert raw["pred_boxes"].shape[:2] == raw["scores"].shape == raw["pred_classes"].shape
    assert raw["pred_masks"].shape[2:] == (28, 28) and n.shape == (2,)
    for i in range(2):
        assert (raw["scores"][i, : n[i]] > 0).all() and (raw["scores"][i, n[i]:] == float("-inf")).all()
    assert shapes_onnx.ir_version <= 10


def test_fixed_batch(shapes_model, shapes_inputs):
    cfg, model = shapes_model
    fixed = export_onnx(cfg, model, shapes_inputs[:1], dynamic_batch=False)
    assert fixed.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    with pytest.raises(ExportError, match="onnxruntime failed"):
        OnnxRuntimeModel(fixed)(shapes_inputs[:2])


def test_batch_one_graph_leaves_out_isolation(shapes_model, shapes_inputs, shapes_onnx):
    # a graph of fixed batch 1 has no batch-isolation masks, and gives the dynamic graph's outputs
    cfg, model = shapes_model
    fixed = export_onnx(cfg, model, shapes_inputs[:1], dynamic_batch=False)
    meta = {p.key: json.loads(p.value) for p in fixed.metadata_props}[METADATA_KEY]
    assert meta["batch_isolation"] is False
    wheres = [sum(n.op_type == "Where" for n in m.graph.node) for m in (fixed, shapes_onnx)]
    assert wheres[0] < wheres[1] - 20, wheres
    for image in shapes_inputs[1:3]:
        got, want = OnnxRuntimeModel(fixed).run([image]), OnnxRuntimeModel(shapes_onnx).run([image])
        assert got["num_instances"] == want["num_instances"]
        n = int(want["num_instances"][0])
        for name in ("pred_boxes", "scores", "pred_masks"):
            np.testing.assert_allclose(got[name][0, :n], want[name][0, :n], rtol=0, atol=1e-4, err_msg=name)
        np.testing.assert_array_equal(got["pred_classes"][0, :n], want["pred_classes"][0, :n])


def test_caller_model_unchanged(shapes_model, shapes_inputs):
    cfg, model = shapes_model
    training = copy.deepcopy(model).train()
    state = {k: v.clone() for k, v in training.state_dict().items()}
    export_onnx(cfg, training, shapes_inputs[:1])
    assert training.training
    assert all(torch.equal(v, training.state_dict()[k]) for k, v in state.items())


def test_errors(shapes_model, shapes_inputs, tmp_path):
    cfg, model = shapes_model
    with pytest.raises(ExportError, match="opset=11, expected >= 16"):
        export_onnx(cfg, model, shapes_inputs[:1], opset=11)
    with pytest.raises(ExportError, match=r"inputs\[0\]\['image'\]"):
        export_onnx(cfg, model, [{"image": torch.zeros(3, 0, 4)}])
    with pytest.raises(ExportError, match="no such file"):
        OnnxRuntimeModel(str(tmp_path / "missing.onnx"))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(ExportError, match="bad.onnx: onnxruntime could not load it"):
        OnnxRuntimeModel(str(bad))
    plain = onnx.helper.make_model(
        onnx.helper.make_graph(
            [onnx.helper.make_node("Identity", ["x"], ["y"])], "g",
            [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
            [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
        ),
        opset_imports=[onnx.helper.make_opsetid("", 17)],
    )
    plain.ir_version = 8
    with pytest.raises(ExportError, match="no 'detectron2_export' metadata"):
        OnnxRuntimeModel(plain)


def test_mutated_files_get_the_projects_error_naming_the_file(shapes_onnx, tmp_path):
    """Issue 15: a truncated or byte-flipped model.onnx, or one with broken metadata, fails with
    ExportError naming the file (onnxruntime's own message inside), never a raw onnxruntime error."""
    data = shapes_onnx.SerializeToString()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(data[: len(data) // 3])
    with pytest.raises(ExportError, match=r"truncated\.onnx: onnxruntime could not load it"):
        OnnxRuntimeModel(str(truncated))
    broken = copy.deepcopy(shapes_onnx)
    next(e for e in broken.metadata_props if e.key == METADATA_KEY).value = "{not json"
    with pytest.raises(ExportError, match="metadata is not JSON"):
        OnnxRuntimeModel(broken)
    broken.graph.node[0].op_type = "NoSuchOp"
    with pytest.raises(ExportError, match="onnxruntime could not load it"):
        OnnxRuntimeModel(broken)


def test_one_model_called_from_four_threads_equals_sequential_calls(shapes_inputs, runtime):
    """Issue 15: onnxruntime sessions are thread-safe and the wrapper keeps no per-call state."""
    import concurrent.futures

    work = [shapes_inputs[i % len(shapes_inputs)] for i in range(4 * 5)]
    sequential = [runtime([x])[0]["instances"] for x in work]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda x: runtime([x])[0]["instances"], work))
    for got, want in zip(threaded, sequential):
        _assert_same_instances(got, want, box_atol=0, score_atol=0)
        assert torch.equal(got.pred_masks, want.pred_masks)
