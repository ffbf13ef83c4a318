"""Tracing export (SPEC 7.1, 7.5 "tracing"): Mask R-CNN and RetinaNet R50-FPN traced through
TracingAdapter on one image, saved, loaded in a fresh Python process that imports only torch and
torchvision, and compared with eager on the trace image and on an image of another size."""

import pytest
import torch

from detectron2_export.export import TracingAdapter, dump_torchscript_IR

from .test_torchscript_models import (
    MASK_RCNN,
    RETINANET,
    assert_instances_close,
    detection_model,
    all_nodes,
    rcnn_inference,
    run_in_fresh_python,
    sample_images,
)

pytestmark = pytest.mark.slow

# Loads the model with torch + torchvision only (torchvision registers nms / roi_align), runs it on
# every saved image and saves the flat outputs.
FRESH_PROCESS_RUN = """
import sys
import torch, torchvision
model_path, images_path, outputs_path = sys.argv[1:]
model = torch.jit.load(model_path)
images = torch.load(images_path)
with torch.no_grad():
    outputs = [model(image) for image in images]
torch.save(outputs, outputs_path)
leaked = sorted(m for m in sys.modules if m.startswith("detectron2_export"))
assert not leaked, leaked
"""


def retinanet_inference(model, inputs):
    """export_model.py calls models other than GeneralizedRCNN directly (post-processed outputs)."""
    return model(inputs)


@pytest.fixture(scope="module", params=[MASK_RCNN, RETINANET], ids=["mask_rcnn", "retinanet"])
def traced(request, tmp_path_factory):
    """(eager model, inference function, adapter, traced module, path of the saved model)."""
    model = detection_model(request.param)
    inference = rcnn_inference if request.param == MASK_RCNN else retinanet_inference
    image = sample_images()[0]
    adapter = TracingAdapter(model, [{"image": image}], inference)
    with torch.no_grad():
        ts_model = torch.jit.trace(adapter, (image,))
    path = tmp_path_factory.mktemp("traced") / "model.ts"
    ts_model.save(str(path))
    return model, inference, adapter, ts_model, path


def test_traced_graph_uses_only_torch_and_torchvision_ops(traced):
    model, *_, ts_model, _ = traced
    kinds = {node.kind() for node in all_nodes(ts_model.inlined_graph)}
    others = sorted(k for k in kinds if k.split("::")[0] not in ("aten", "prim"))
    # nothing that only this package registers (e.g. _caffe2::)
    expected = ["torchvision::nms", "torchvision::roi_align"] if hasattr(model, "roi_heads") else ["torchvision::nms"]
    assert others == expected


def test_no_device_is_hard_coded(traced):
    """Tensors made on a constant device (aranges on the CPU) are moved at once to the device of
    an input (move_device_like), so the traced model keeps working after ``.to(other_device)``."""
    *_, ts_model, _ = traced
    device_constants = [
        node for node in all_nodes(ts_model.inlined_graph)
        if node.kind() == "prim::Constant" and node.output().type().kind() == "DeviceObjType"
    ]
    for constant in device_constants:
        for use in constant.output().uses():
            created = use.user.output()
            for later in created.uses():
                device_source = list(later.user.inputs())[1].node()
                assert later.user.kind() == "aten::to" and device_source.kind() == "prim::device", (
                    f"a tensor made on a hard-coded device is used by {later.user}"
                )


def test_outputs_are_instances_fields_in_name_order(traced):
    model, inference, adapter, ts_model, _ = traced
    image = sample_images()[0]
    flat = ts_model(image)
    expected = inference(model, [{"image": image}])[0]["instances"]
    names = sorted(expected.get_fields())
    assert len(flat) == len(names) + 1  # + the image size
    torch.testing.assert_close(flat[names.index("scores")], expected.scores, rtol=0, atol=1e-3)
    assert flat[-1].tolist() == list(expected.image_size)


def test_reloaded_in_fresh_process_matches_eager_on_two_sizes(traced, tmp_path):
    model, inference, adapter, _, path = traced
    images = list(sample_images())
    torch.save(images, tmp_path / "images.pt")
    run_in_fresh_python(FRESH_PROCESS_RUN, str(path), str(tmp_path / "images.pt"), str(tmp_path / "out.pt"))
    outputs = torch.load(tmp_path / "out.pt")
    for image, flat in zip(images, outputs):
        with torch.no_grad():
            expected = inference(model, [{"image": image}])[0]["instances"]
        assert len(expected) > 0
        actual = adapter.outputs_schema(flat)[0]["instances"]
        assert_instances_close(actual, expected, atol=1e-3)


def test_dump_ir_of_traced_model(traced, tmp_path):
    *_, ts_model, _ = traced
    dump_torchscript_IR(ts_model, str(tmp_path))
    for name in ["model_ts_code.txt", "model_ts_IR.txt", "model_ts_IR_inlined.txt", "model.txt"]:
        assert (tmp_path / name).stat().st_size > 0, name
    assert "torchvision::nms" in (tmp_path / "model_ts_IR_inlined.txt").read_text()
