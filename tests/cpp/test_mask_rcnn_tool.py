"""caffe2_mask_rcnn on a hand-built net with Mask R-CNN's graph inputs and outputs: the image is read as
BGR, resized like ResizeShortestEdge, padded to the net's size_divisibility and fed as data/im_info;
the raw outputs, Prediction lines, mask PNGs, latency and --dump_outputs follow SPEC 8.3."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from detectron2_export.caffe2.arguments import make_argument
from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.data.transforms.augmentation_impl import ResizeShortestEdge
from tests.caffe2.helpers import make_op

from .cpp_runner import run_tool

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cpp")]

BOXES = np.array([[1.5, 2.0, 30.25, 40.0], [0, 0, 5, 5], [10, 11, 12, 13]], np.float32)
SCORES = np.array([0.9, 0.5, 0.75], np.float32)
CLASSES = np.array([1.0, 2.0, 0.0], np.float32)


def _nets(masks: np.ndarray) -> tuple[caffe2_pb2.NetDef, caffe2_pb2.NetDef]:
    init = caffe2_pb2.NetDef(
        op=[make_op("GivenTensorFill", [], ["masks"], values=masks, shape=masks.shape),
            make_op("GivenTensorFill", [], ["boxes"], values=BOXES, shape=BOXES.shape)],
        external_output=["masks", "boxes"],
    )
    predict = caffe2_pb2.NetDef(
        name="fake_mask_rcnn",
        op=[
            make_op("Copy", ["boxes"], ["bbox_nms"]),
            make_op("GivenTensorFill", [], ["score_nms"], values=SCORES, shape=[3]),
            make_op("GivenTensorFill", [], ["class_nms"], values=CLASSES, shape=[3]),
            make_op("Copy", ["masks"], ["mask_fcn_probs"]),
            make_op("ReduceMean", ["data"], ["pixel_mean"], axes=[0, 2, 3], keepdims=0),
            make_op("Copy", ["im_info"], ["im_info_out"]),
        ],
        external_input=["data", "im_info", "masks", "boxes"],
        external_output=["bbox_nms", "score_nms", "class_nms", "mask_fcn_probs", "pixel_mean", "im_info_out"],
        arg=[make_argument("size_divisibility", 32), make_argument("device", "cpu")],
    )
    return predict, init


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("fake_mask_rcnn")
    rng = np.random.default_rng(0)
    masks = rng.random((3, 3, 4, 4)).astype(np.float32)
    predict, init = _nets(masks)
    (d / "model.pb").write_bytes(predict.SerializeToString())
    (d / "model_init.pb").write_bytes(init.SerializeToString())
    rgb = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(d / "input.png")
    return d, masks, rgb


def _run(tools, d, *flags):
    return run_tool(tools.mask_rcnn, f"--predict_net={d / 'model.pb'}", f"--init_net={d / 'model_init.pb'}",
                    f"--input={d / 'input.png'}", "--threads=1", *flags)


def test_inputs_outputs_predictions_and_masks(cpp_tools, model_dir, tmp_path):
    d, masks, rgb = model_dir
    proc = _run(cpp_tools, d, "--min_size=50", "--max_size=1000", f"--dump_outputs={tmp_path / 'dump'}",
                f"--mask_dir={tmp_path / 'masks'}", "--iters=2")
    assert proc.returncode == 0, proc.stderr
    dump = tmp_path / "dump"
    data = np.load(dump / "data.npy")
    # no resize (the short edge is already 50); padded to multiples of 32; BGR, raw pixel values
    assert data.shape == (1, 3, 64, 96) and data.dtype == np.float32
    np.testing.assert_array_equal(data[0, :, :50, :70], rgb[:, :, ::-1].transpose(2, 0, 1).astype(np.float32))
    assert not data[0, :, 50:, :].any() and not data[0, :, :, 70:].any()
    np.testing.assert_array_equal(np.load(dump / "im_info.npy"), [[50.0, 70.0, 1.0]])
    np.testing.assert_array_equal(np.load(dump / "im_info_out.npy"), [[50.0, 70.0, 1.0]])
    np.testing.assert_allclose(np.load(dump / "pixel_mean.npy"), data.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_array_equal(np.load(dump / "bbox_nms.npy"), BOXES)
    np.testing.assert_array_equal(np.load(dump / "mask_fcn_probs.npy"), masks)

    out = proc.stdout
    assert re.search(r"Latency \(should vary with different inputs\): [0-9.e-]+ seconds", out)
    for label, name in [("bbox", "bbox_nms"), ("scores", "score_nms"), ("labels", "class_nms"),
                        ("mask_probs", "mask_fcn_probs")]:
        assert f"{label}: Tensor {name} of type Float." in out
    assert "mask_probs: Tensor mask_fcn_probs of type Float. Dims: (3, 3, 4, 4)" in out
    predictions = [line for line in out.splitlines() if line.startswith("Prediction")]
    assert predictions == [
        "Prediction 0, xyxy=(1.5, 2, 30.25, 40); score=0.9; label=1",
        "Prediction 2, xyxy=(10, 11, 12, 13); score=0.75; label=0",
    ]
    for i, label in [(0, 1), (2, 0)]:
        png = np.asarray(Image.open(tmp_path / "masks" / f"mask{i}.png"))
        np.testing.assert_array_equal(png, (masks[i, label] * 255).astype(np.uint8))
    assert not (tmp_path / "masks" / "mask1.png").exists()


def test_resize_shortest_edge_then_pad(cpp_tools, model_dir, tmp_path):
    d, _, rgb = model_dir
    proc = _run(cpp_tools, d, "--min_size=100", "--max_size=120", f"--dump_outputs={tmp_path}", "--mask_dir=",
                "--iters=0")
    assert proc.returncode == 0, proc.stderr
    h, w = ResizeShortestEdge.get_output_shape(50, 70, 100, 120)
    assert (h, w) == (86, 120)
    np.testing.assert_array_equal(np.load(tmp_path / "im_info.npy"), [[86.0, 120.0, 1.0]])
    data = np.load(tmp_path / "data.npy")
    assert data.shape == (1, 3, 96, 128)
    # bilinear up-sampling: close to PIL's (what detectron2 uses), not bit-exact
    pil = np.asarray(Image.fromarray(rgb).resize((w, h), Image.BILINEAR))[:, :, ::-1].transpose(2, 0, 1)
    diff = np.abs(data[0, :, :h, :w] - pil.astype(np.float32))
    assert diff.mean() < 1.0 and diff.max() <= 3.0
    assert "Latency" not in proc.stdout


def test_missing_image(cpp_tools, model_dir, tmp_path):
    d, *_ = model_dir
    proc = run_tool(cpp_tools.mask_rcnn, f"--predict_net={d / 'model.pb'}", f"--init_net={d / 'model_init.pb'}",
                    f"--input={tmp_path / 'absent.jpg'}")
    assert proc.returncode == 1
    assert "absent.jpg: cannot read the image" in proc.stderr


def test_net_without_mask_rcnn_inputs(cpp_tools, model_dir, tmp_path):
    d, *_ = model_dir
    net = caffe2_pb2.NetDef(
        name="other", op=[make_op("Relu", ["x"], ["y"])], external_input=["x"], external_output=["y"]
    )
    (tmp_path / "other.pb").write_bytes(net.SerializeToString())
    (tmp_path / "init.pb").write_bytes(caffe2_pb2.NetDef().SerializeToString())
    proc = run_tool(cpp_tools.mask_rcnn, f"--predict_net={tmp_path / 'other.pb'}", f"--init_net={tmp_path / 'init.pb'}",
                    f"--input={d / 'input.png'}")
    assert proc.returncode == 1
    assert "graph inputs=['x'], expected ['data', 'im_info']" in proc.stderr
