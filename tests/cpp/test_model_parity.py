"""Model-level parity on the exported shapes Mask R-CNN: the C++ runtime's raw outputs equal the Python
runtime's on the same input tensors (boxes and scores atol 1e-3, classes equal, masks atol 1e-3), both
through caffe2_run_net (Caffe2Model's data/im_info) and through caffe2_mask_rcnn on the image file
(the tensors it builds and dumps, fed to Python)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detectron2_export.caffe2.protobuf_model import ProtobufModel
from detectron2_export.caffe2.serialization import load_net

from .cpp_runner import run_tool
from .shapes_model import export_shapes_mask_rcnn

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cpp")]

OUTPUTS = ["bbox_nms", "score_nms", "class_nms", "mask_fcn_probs"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_shapes_mask_rcnn(tmp_path_factory.mktemp("shapes_caffe2"))


@pytest.fixture(scope="module")
def python_model(exported):
    d = exported.directory
    return ProtobufModel(load_net(d / "model.pb"), load_net(d / "model_init.pb"))


def assert_outputs_match(cpp: dict[str, np.ndarray], python: dict[str, np.ndarray]) -> None:
    assert cpp["score_nms"].shape == python["score_nms"].shape
    assert python["score_nms"].shape[0] > 0, "the sample should have detections"
    np.testing.assert_allclose(cpp["bbox_nms"], python["bbox_nms"], rtol=0, atol=1e-3)
    np.testing.assert_allclose(cpp["score_nms"], python["score_nms"], rtol=0, atol=1e-3)
    np.testing.assert_array_equal(cpp["class_nms"], python["class_nms"])
    np.testing.assert_allclose(cpp["mask_fcn_probs"], python["mask_fcn_probs"], rtol=0, atol=1e-3)


def run_python(model: ProtobufModel, data: np.ndarray, im_info: np.ndarray) -> dict[str, np.ndarray]:
    torch.set_num_threads(1)
    outputs = model([torch.from_numpy(data), torch.from_numpy(im_info)])
    return {name: t.numpy() for name, t in zip(model.output_names, outputs)}


def test_exported_outputs_are_mask_rcnn(exported):
    net = load_net(exported.directory / "model.pb")
    assert list(net.external_output) == OUTPUTS


def test_run_net_matches_python_runtime(cpp_tools, exported, python_model, tmp_path):
    d = exported.directory
    np.save(tmp_path / "data.npy", exported.data.numpy())
    np.save(tmp_path / "im_info.npy", exported.im_info.numpy())
    proc = run_tool(cpp_tools.run_net, f"--predict_net={d / 'model.pb'}", f"--init_net={d / 'model_init.pb'}",
                    f"--inputs={tmp_path / 'data.npy'},{tmp_path / 'im_info.npy'}", f"--output_dir={tmp_path / 'out'}")
    assert proc.returncode == 0, proc.stderr
    names = (tmp_path / "out" / "outputs.txt").read_text().split()
    cpp = {name: np.load(tmp_path / "out" / f"output_{k}.npy") for k, name in enumerate(names)}
    assert_outputs_match(cpp, run_python(python_model, exported.data.numpy(), exported.im_info.numpy()))


def test_mask_rcnn_tool_matches_python_runtime(cpp_tools, exported, python_model, tmp_path):
    d = exported.directory
    proc = run_tool(cpp_tools.mask_rcnn, f"--predict_net={d / 'model.pb'}", f"--init_net={d / 'model_init.pb'}",
                    f"--input={exported.image_file}", f"--min_size={exported.min_size}",
                    f"--max_size={exported.max_size}", f"--dump_outputs={tmp_path}", f"--mask_dir={tmp_path / 'masks'}",
                    "--iters=1")
    assert proc.returncode == 0, proc.stderr
    data, im_info = np.load(tmp_path / "data.npy"), np.load(tmp_path / "im_info.npy")
    assert data.shape[2] % 32 == 0 and data.shape[3] % 32 == 0
    assert min(im_info[0, :2]) == exported.min_size or max(im_info[0, :2]) == exported.max_size
    cpp = {name: np.load(tmp_path / f"{name}.npy") for name in OUTPUTS}
    assert_outputs_match(cpp, run_python(python_model, data, im_info))
    n_confident = int((cpp["score_nms"] >= 0.6).sum())
    assert sum(line.startswith("Prediction ") for line in proc.stdout.splitlines()) == n_confident
    assert len(list((tmp_path / "masks").glob("mask*.png"))) == n_confident
