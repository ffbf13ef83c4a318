"""Untrusted model files and images for the C++ tools (issue 15), each built from the bundled shapes
export: a malformed file makes caffe2_run_net and caffe2_mask_rcnn exit 1 with one `error:` line
naming the file or the op and what was expected (never a signal, never exit 0 on garbage); the
unmodified export and upstream-style files without pad_value still run."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from detectron2_export.caffe2.arguments import make_argument
from detectron2_export.caffe2.proto import caffe2_pb2
from tests.caffe2.helpers import make_op

from .cpp_runner import run_tool
from .shapes_model import ExportedModel, export_shapes_mask_rcnn

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cpp")]

Mutation = Callable[[caffe2_pb2.NetDef], None]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> ExportedModel:
    model = export_shapes_mask_rcnn(tmp_path_factory.mktemp("shapes_caffe2"))
    np.save(model.directory / "data.npy", model.data.numpy())
    np.save(model.directory / "im_info.npy", model.im_info.numpy())
    return model


def _load(path: Path) -> caffe2_pb2.NetDef:
    net = caffe2_pb2.NetDef()
    net.ParseFromString(path.read_bytes())
    return net


def _write_mutated(exported: ExportedModel, d: Path, predict: Mutation | None = None,
                   init: Mutation | None = None) -> Path:
    """The export's model.pb / model_init.pb copied into ``d``, each changed by its mutation."""
    d.mkdir(parents=True, exist_ok=True)
    for name, mutate in [("model.pb", predict), ("model_init.pb", init)]:
        net = _load(exported.directory / name)
        if mutate:
            mutate(net)
        (d / name).write_bytes(net.SerializeToString())
    return d


def _run_net(tools, exported: ExportedModel, d: Path):
    e = exported.directory
    return run_tool(tools.run_net, f"--predict_net={d / 'model.pb'}", f"--init_net={d / 'model_init.pb'}",
                    f"--inputs={e / 'data.npy'},{e / 'im_info.npy'}", f"--output_dir={d / 'out'}", "--threads=1")


def _mask_rcnn(tools, exported: ExportedModel, d: Path, image: str | Path | None = None):
    return run_tool(tools.mask_rcnn, f"--predict_net={d / 'model.pb'}", f"--init_net={d / 'model_init.pb'}",
                    f"--input={image or exported.image_file}", f"--min_size={exported.min_size}",
                    f"--max_size={exported.max_size}", "--iters=0", "--mask_dir=", "--threads=1")


def assert_clean_failure(proc, *fragments: str) -> str:
    """Exit status 1 (not a signal, not 0) and exactly one `error:` line holding every fragment."""
    assert proc.returncode == 1, f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    lines = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _first_op(net: caffe2_pb2.NetDef, op_type: str) -> int:
    return next(k for k, op in enumerate(net.op) if op.type == op_type)


def _roi_batch_index(batch: float) -> Mutation:
    """The first RoIAlign reads one constant roi of image `batch` (the export runs a batch of 1)."""

    def mutate(net: caffe2_pb2.NetDef) -> None:
        k = _first_op(net, "RoIAlign")
        net.op[k].input[1] = "untrusted_rois"
        fill = make_op("GivenTensorFill", [], ["untrusted_rois"], values=[batch, 0.0, 0.0, 16.0, 16.0], shape=[1, 5])
        net.op.insert(k, fill)

    return mutate


@pytest.mark.parametrize("batch,shown", [(1e6, "1000000"), (1.0, "1")], ids=["huge", "one_past"])
def test_roi_batch_index_beyond_the_batch(cpp_tools, exported, tmp_path, batch, shown):
    d = _write_mutated(exported, tmp_path, predict=_roi_batch_index(batch))
    for proc in (_run_net(cpp_tools, exported, d), _mask_rcnn(cpp_tools, exported, d)):
        assert_clean_failure(proc, "OperatorInputError", "'RoIAlign'",
                             f"rois batch index={shown} at position 0, expected an index in [0, 1)")


def _flatten_output(name: str) -> Mutation:
    """`name` (an external output) reshaped to 1-D after the net computed it."""

    def mutate(net: caffe2_pb2.NetDef) -> None:
        inner = f"untrusted_{name}"
        for op in net.op:
            op.input[:] = [inner if b == name else b for b in op.input]
            op.output[:] = [inner if b == name else b for b in op.output]
        net.op.append(make_op("Reshape", [inner], [name, "untrusted_old_shape"], shape=[-1]))

    return mutate


def test_mask_rcnn_refuses_1d_bbox_nms(cpp_tools, exported, tmp_path):
    d = _write_mutated(exported, tmp_path, predict=_flatten_output("bbox_nms"))
    assert_clean_failure(_mask_rcnn(cpp_tools, exported, d), "OperatorInputError", "predict net output bbox_nms shape=(",
                         ", 4) (N rows of score_nms)")


def test_mask_rcnn_refuses_flat_masks(cpp_tools, exported, tmp_path):
    d = _write_mutated(exported, tmp_path, predict=_flatten_output("mask_fcn_probs"))
    assert_clean_failure(_mask_rcnn(cpp_tools, exported, d), "predict net output mask_fcn_probs shape=(",
                         ", C, M, M) with C >= 1")


def _set_arg(name: str, value) -> Mutation:
    def mutate(net: caffe2_pb2.NetDef) -> None:
        kept = [a for a in net.arg if a.name != name]
        del net.arg[:]
        net.arg.extend(kept + ([make_argument(name, value)] if value is not None else []))

    return mutate


@pytest.mark.parametrize("name,value,expected", [
    ("size_divisibility", 2**31 - 1, "size_divisibility=2147483647, expected an int in [0, 65536]"),
    ("size_divisibility", -32, "size_divisibility=-32, expected an int in [0, 65536]"),
    ("size_divisibility", "32", "size_divisibility='32', expected an int"),
    ("device", "CPU", "device='CPU', expected 'cpu', 'cuda' or 'cuda:N'"),
    ("device", 1, "device=1, expected 'cpu'"),
    ("meta_architecture", 7, "meta_architecture=7, expected a non-empty string"),
    ("pad_value", [103.5, 116.3], "pad_value=[103.5, 116.3], expected 3 finite numbers"),
    ("pad_value", [float("nan"), 1.0, 2.0], "pad_value=[nan, 1, 2], expected 3 finite numbers"),
], ids=["divisibility_2^31", "divisibility_negative", "divisibility_string", "device_upper", "device_int",
        "meta_arch_int", "pad_value_2", "pad_value_nan"])
def test_meta_arguments_checked_at_load(cpp_tools, exported, tmp_path, name, value, expected):
    d = _write_mutated(exported, tmp_path, predict=_set_arg(name, value))
    assert_clean_failure(_mask_rcnn(cpp_tools, exported, d), "OperatorArgumentError", str(d / "model.pb"),
                         f"predict net argument {expected}")


def test_size_divisibility_at_the_bound_is_refused_by_size(cpp_tools, exported, tmp_path):
    # 65536 is accepted as a value, but the padded image (3 x 65536 x 65536) exceeds the tensor ceiling
    d = _write_mutated(exported, tmp_path, predict=_set_arg("size_divisibility", 65536))
    assert_clean_failure(_mask_rcnn(cpp_tools, exported, d), "the padded image 65536x65536 would exceed 268435456")


def test_upstream_style_meta_defaults_run(cpp_tools, exported, tmp_path):
    # upstream files have no pad_value; meta_architecture and device default as in upstream's Caffe2Model
    def strip(net: caffe2_pb2.NetDef) -> None:
        for name in ("pad_value", "meta_architecture", "device"):
            _set_arg(name, None)(net)

    d = _write_mutated(exported, tmp_path, predict=strip)
    proc = _mask_rcnn(cpp_tools, exported, d)
    assert proc.returncode == 0, proc.stderr
    assert "Prediction 0" in proc.stdout


def test_fill_claiming_more_elements_than_values(cpp_tools, exported, tmp_path):
    def inflate(net: caffe2_pb2.NetDef) -> None:
        shape = next(a for a in net.op[0].arg if a.name == "shape")
        shape.ints[:] = [1 << 31, 1 << 31, 1 << 31]

    d = _write_mutated(exported, tmp_path, init=inflate)
    blob = _load(exported.directory / "model_init.pb").op[0].output[0]
    for proc in (_run_net(cpp_tools, exported, d), _mask_rcnn(cpp_tools, exported, d)):
        assert_clean_failure(proc, "'GivenTensorFill'", f"outputs ['{blob}']",
                             "output shape=(2147483648, 2147483648, 2147483648) would have more than")


def test_blob_used_before_definition(cpp_tools, exported, tmp_path):
    def swap(net: caffe2_pb2.NetDef) -> None:
        k = _first_op(net, "BatchPermutation")
        op = caffe2_pb2.OperatorDef()
        op.CopyFrom(net.op[k])
        del net.op[k]
        net.op.insert(0, op)

    d = _write_mutated(exported, tmp_path, predict=swap)
    for proc in (_run_net(cpp_tools, exported, d), _mask_rcnn(cpp_tools, exported, d)):
        assert_clean_failure(proc, "op #0 'BatchPermutation'", "does not exist in the workspace",
                             "no earlier op produces it")


def test_truncated_jpeg_exits_non_zero_naming_the_file(cpp_tools, exported, tmp_path):
    d = _write_mutated(exported, tmp_path / "model")
    data = Path(exported.image_file).read_bytes()
    assert data[:2] == b"\xff\xd8"
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(data[: len(data) * 2 // 3])
    assert_clean_failure(_mask_rcnn(cpp_tools, exported, d, truncated),
                         f"{truncated}: truncated or corrupt JPEG: the data ends at byte")
    header_only = tmp_path / "header_only.jpg"
    header_only.write_bytes(data[:200])
    assert_clean_failure(_mask_rcnn(cpp_tools, exported, d, header_only), f"{header_only}: truncated or corrupt JPEG")
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4 + b"\xff\xd9")
    assert_clean_failure(_mask_rcnn(cpp_tools, exported, d, garbage), f"{garbage}:")
    # the intact file decodes and runs
    intact = tmp_path / "intact.jpg"
    shutil.copy(exported.image_file, intact)
    proc = _mask_rcnn(cpp_tools, exported, d, intact)
    assert proc.returncode == 0, proc.stderr


def test_truncated_png_exits_non_zero_naming_the_file(cpp_tools, exported, tmp_path):
    from PIL import Image

    d = _write_mutated(exported, tmp_path / "model")
    png = tmp_path / "image.png"
    Image.open(exported.image_file).save(png)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(png.read_bytes()[: png.stat().st_size // 2])
    # libpng would print its own "libpng error:" line: the structure is checked before decoding
    assert_clean_failure(_mask_rcnn(cpp_tools, exported, d, truncated),
                         f"{truncated}: truncated or corrupt PNG: chunk 'IDAT'")
    assert _mask_rcnn(cpp_tools, exported, d, png).returncode == 0


@pytest.mark.parametrize("flags,expected", [
    (["--min_size=0"], "min_size=0, max_size=1333: expected all >= 1 (--min_size, --max_size)"),
    (["--min_size=1000000000", "--max_size=2000000000"], "x1000000000 would exceed 268435456 elements (3 channels)"),
], ids=["zero", "huge"])
def test_resize_flags_checked(cpp_tools, exported, tmp_path, flags, expected):
    d = _write_mutated(exported, tmp_path)
    e = exported
    proc = run_tool(cpp_tools.mask_rcnn, f"--predict_net={d / 'model.pb'}", f"--init_net={d / 'model_init.pb'}",
                    f"--input={e.image_file}", "--iters=0", "--mask_dir=", *flags)
    assert_clean_failure(proc, "Caffe2Error", expected)
