"""Fuzz the Caffe2 runtime with seeded mutations of an exported model (issue 15).

Each case mutates a copy of ``model.pb`` / ``model_init.pb`` (random byte flips, truncation, or a
field-level change: wrong op types, missing or extra inputs/outputs, wrong argument types, negative
or huge dims, shape/value-count mismatches, empty nets, duplicated blobs, use before definition,
missing ``data``, broken meta arguments) or the image fed to it, then runs
``Caffe2Model.load_protobuf(dir)([{"image": image}])`` in a child forked from a warm parent (torch
is imported once), under an address-space limit (``--memory-limit-gib`` more than the parent maps) and a
timeout. A case ends as one of:

- ``ok``: it ran; ``project_error``: a ``detectron2_export.errors`` exception;
- ``uncaught``: any other exception (a bug: the project should have said what was wrong);
- ``memory``: MemoryError or an allocator failure (something allocated before checking a size);
- ``crash``: the child died from a signal; ``hang``: it ran past the timeout.

The summary counts outcomes, errors by type and place (the innermost project frame,
``file:function``) and lists every bad case with its mutation, so one can be replayed with
``--replay N``. ``--cpp`` runs ``cpp/build/caffe2_mask_rcnn`` on each mutated pair instead (exit
status or signal).

    python benchmarks/fuzz_models.py --model-dir DIR [--cases 10000] [--seed 0] [--jobs 2]
    python benchmarks/fuzz_models.py --model-dir DIR --replay 1234   # one case, in-process, traceback
    python benchmarks/fuzz_models.py --export-to DIR                  # export the bundled shapes model
    python benchmarks/fuzz_models.py --model-dir DIR --image-size 0 --validation-cost 20

Without ``--model-dir`` the bundled shapes Mask R-CNN is exported to a temporary directory first.
"""

from __future__ import annotations

import argparse
import collections
import faulthandler
import gc
import json
import os
import random
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from detectron2_export.caffe2.proto import caffe2_pb2  # noqa: E402
from detectron2_export.caffe2.registry import registered_ops  # noqa: E402
from detectron2_export.caffe2.serialization import parse_message  # noqa: E402
from detectron2_export.errors import Detectron2ExportError  # noqa: E402

BAD_OUTCOMES = ("uncaught", "memory", "crash", "hang")
DEFAULT_MEMORY_LIMIT = 6 << 30
SAMPLE_IMAGE = os.path.join(REPO, "datasets", "shapes", "val", "00000.jpg")
_ALLOC_FAILURES = ("can't allocate memory", "not enough memory", "out of memory", "std::bad_alloc")


# ---------------------------------------------------------------------------------------------
# Mutations
# ---------------------------------------------------------------------------------------------


@dataclass
class Case:
    """One case's inputs, mutated in place by the mutators (in the forked child: copy-on-write)."""

    predict: caffe2_pb2.NetDef
    init: caffe2_pb2.NetDef
    image: Any
    predict_bytes: bytes | None = None
    """Raw bytes replacing the serialized predict net (byte-level mutations)."""
    init_bytes: bytes | None = None
    init_changed: bool = False
    notes: list[str] = field(default_factory=list)


def _net(rng: random.Random, case: Case, init_weight: float = 0.3) -> tuple[str, caffe2_pb2.NetDef]:
    if rng.random() < init_weight:
        case.init_changed = True
        return "init", case.init
    return "predict", case.predict


def _target_op(
    rng: random.Random, case: Case, init_weight: float, pred: Callable[[caffe2_pb2.OperatorDef], bool] = lambda o: True
) -> tuple[str, caffe2_pb2.NetDef, int, caffe2_pb2.OperatorDef] | None:
    """A random op (satisfying ``pred``) of the init net (probability ``init_weight``) or the predict net."""
    where, net = _net(rng, case, init_weight)
    candidates = [i for i, op in enumerate(net.op) if pred(op)]
    if not candidates:
        return None
    i = rng.choice(candidates)
    return where, net, i, net.op[i]


def _blob_names(net: caffe2_pb2.NetDef) -> list[str]:
    names = set(net.external_input) | set(net.external_output)
    for op in net.op:
        names.update(op.input)
        names.update(op.output)
    return sorted(names)


def _bytes_mutation(rng: random.Random, case: Case) -> str:
    target = "init" if rng.random() < 0.3 else "predict"
    data = bytearray((case.init if target == "init" else case.predict).SerializeToString())
    kind = rng.choice(("flip", "truncate", "insert", "delete", "splice")) if data else "insert"
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del data[rng.randrange(len(data)):]
    elif kind == "insert":
        at = rng.randrange(len(data) + 1)
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    elif kind == "delete":
        at = rng.randrange(len(data))
        del data[at:at + rng.randint(1, 8)]
    else:  # copy a chunk of the file over another place
        n = rng.randint(2, 64)
        src, dst = rng.randrange(len(data)), rng.randrange(len(data))
        data[dst:dst + n] = data[src:src + n]
    if target == "init":
        case.init_bytes = bytes(data)
    else:
        case.predict_bytes = bytes(data)
    return f"bytes:{kind}:{target}"


def _op_type(rng: random.Random, case: Case) -> str:
    target = _target_op(rng, case, 0.1)
    if target is None:
        return "op_type:none"
    where, net, i, op = target
    op.type = rng.choice(registered_ops() + ["", "NoSuchOp", "Conv\x00", "\udcff".encode("utf-8", "surrogatepass").decode("latin-1")])
    return f"op_type:{where}#{i}->{op.type!r}"


def _op_io(rng: random.Random, case: Case) -> str:
    target = _target_op(rng, case, 0.1)
    if target is None:
        return "op_io:none"
    where, net, i, op = target
    names = _blob_names(net) + ["no_such_blob", ""]
    kind = rng.choice(("drop_input", "extra_input", "rename_input", "drop_output", "extra_output", "rename_output"))
    fld = op.input if "input" in kind else op.output
    if kind.startswith("drop") and len(fld):
        del fld[rng.randrange(len(fld))]
    elif kind.startswith("extra"):
        fld.append(rng.choice(names))
    elif len(fld):
        fld[rng.randrange(len(fld))] = rng.choice(names)
    return f"op_io:{kind}:{where}#{i}"


def _op_order(rng: random.Random, case: Case) -> str:
    where, net = _net(rng, case, 0.1)
    if len(net.op) < 2:
        return "op_order:none"
    kind = rng.choice(("swap", "delete", "duplicate", "move_last"))
    i, j = rng.randrange(len(net.op)), rng.randrange(len(net.op))
    ops = list(net.op)
    if kind == "swap":
        ops[i], ops[j] = ops[j], ops[i]
    elif kind == "delete":
        del ops[i]
    elif kind == "duplicate":
        ops.insert(j, ops[i])
    else:
        ops.append(ops.pop(i))
    copies = [caffe2_pb2.OperatorDef.FromString(op.SerializeToString()) for op in ops]
    del net.op[:]
    net.op.extend(copies)
    return f"op_order:{kind}:{where}#{i},{j}"


_HUGE_INTS = (-1, -(2**31), 0, 1, 2, 3, 2**31 - 1, 2**31, 2**40, 2**62, 10**6)
_ODD_FLOATS = (float("nan"), float("inf"), -float("inf"), 0.0, -1.0, 1e30, 1e-30, 3.5)


def _set_arg_field(rng: random.Random, arg: caffe2_pb2.Argument) -> str:
    name = arg.name
    arg.Clear()
    arg.name = name
    kind = rng.choice(("i", "f", "s", "ints", "floats", "strings", "t", "n", "none"))
    if kind == "i":
        arg.i = rng.choice(_HUGE_INTS)
    elif kind == "f":
        arg.f = rng.choice(_ODD_FLOATS)
    elif kind == "s":
        arg.s = rng.choice((b"", b"NCHW", b"\xff\xfe", b"CPU", b"x" * 300))
    elif kind == "ints":
        arg.ints.extend(rng.choice(_HUGE_INTS) for _ in range(rng.randint(0, 5)))
    elif kind == "floats":
        arg.floats.extend(rng.choice(_ODD_FLOATS) for _ in range(rng.randint(0, 5)))
    elif kind == "strings":
        arg.strings.extend([b"a", b"\xff"][: rng.randint(1, 2)])
    elif kind == "t":
        arg.t.dims.extend([rng.choice(_HUGE_INTS) for _ in range(2)])
        arg.t.data_type = rng.choice((0, 1, 2, 4, 10, 12))
    elif kind == "n":
        arg.n.name = "nested"
    return kind


def _perturb_arg_value(rng: random.Random, arg: caffe2_pb2.Argument) -> str:
    if arg.HasField("i"):
        arg.i = rng.choice(_HUGE_INTS)
        return f"i={arg.i}"
    if arg.HasField("f"):
        arg.f = rng.choice(_ODD_FLOATS)
        return f"f={arg.f}"
    if arg.HasField("s"):
        arg.s = rng.choice((b"", b"\xff\xfe\xfd", b"CPU", b"cuda:7", b"NHWC", b"Unknown"))
        return f"s={arg.s!r}"
    for name in ("ints", "floats"):
        values = getattr(arg, name)
        if len(values):
            choice = rng.choice(("element", "truncate", "extend", "clear"))
            if choice == "element":
                values[rng.randrange(len(values))] = rng.choice(_HUGE_INTS if name == "ints" else _ODD_FLOATS)
            elif choice == "truncate":
                del values[rng.randrange(len(values)):]
            elif choice == "extend":
                values.extend([values[0]] * rng.randint(1, 4))
            else:
                del values[:]
            return f"{name}:{choice}"
    return _set_arg_field(rng, arg)


def _op_arg(rng: random.Random, case: Case) -> str:
    target = _target_op(rng, case, 0.3, lambda o: len(o.arg) > 0)
    if target is None:
        return "op_arg:none"
    where, net, i, op = target
    kind = rng.choice(("type", "value", "value", "drop", "extra", "duplicate"))
    j = rng.randrange(len(op.arg))
    arg = op.arg[j]
    detail = arg.name
    if kind == "type":
        detail += ":" + _set_arg_field(rng, arg)
    elif kind == "value":
        detail += ":" + _perturb_arg_value(rng, arg)
    elif kind == "drop":
        del op.arg[j]
    elif kind == "extra":
        op.arg.add(name=rng.choice(("bogus", "order", "shape", "values", "kernel")), i=1)
    else:
        op.arg.append(arg)
    return f"op_arg:{kind}:{where}#{i}:{detail}"


def _is_fill(op: caffe2_pb2.OperatorDef) -> bool:
    return op.type.endswith("Fill")


def _fill_shape(rng: random.Random, case: Case) -> str:
    target = _target_op(rng, case, 0.7, _is_fill)
    if target is None:
        return "fill_shape:none"
    where, net, i, op = target
    shape = next((a for a in op.arg if a.name == "shape"), None)
    if shape is None:
        shape = op.arg.add(name="shape")
    kind = rng.choice(("huge", "negative", "zero", "extra_dim", "drop_dim", "swap", "overflow"))
    dims = list(shape.ints)
    if kind == "huge" and dims:
        dims[rng.randrange(len(dims))] = rng.choice((2**20, 2**31 - 1, 2**40, 10**9))
    elif kind == "negative" and dims:
        dims[rng.randrange(len(dims))] = rng.choice((-1, -(2**31)))
    elif kind == "zero" and dims:
        dims[rng.randrange(len(dims))] = 0
    elif kind == "extra_dim":
        dims.append(rng.choice((1, 2, 1000)))
    elif kind == "drop_dim" and dims:
        dims.pop()
    elif kind == "swap":
        rng.shuffle(dims)
    elif kind == "overflow":
        dims = [2**32 + 1, 2**32 + 1, 2**32 + 1]  # wraps to a small product in 64-bit C arithmetic
    del shape.ints[:]
    shape.ints.extend(dims)
    return f"fill_shape:{kind}:{where}#{i}"


def _fill_values(rng: random.Random, case: Case) -> str:
    target = _target_op(rng, case, 0.7, lambda o: _is_fill(o) and any(a.name == "values" for a in o.arg))
    if target is None:
        return "fill_values:none"
    where, net, i, op = target
    values = next(a for a in op.arg if a.name == "values")
    kind = rng.choice(("truncate", "extend", "clear", "as_ints", "as_string"))
    if kind == "truncate" and len(values.floats):
        del values.floats[rng.randrange(len(values.floats)):]
    elif kind == "extend":
        values.floats.extend([0.5] * rng.randint(1, 16))
    elif kind == "clear":
        values.Clear()
        values.name = "values"
    elif kind == "as_ints":
        n = len(values.floats)
        values.Clear()
        values.name = "values"
        values.ints.extend(range(min(n, 1000)))
    else:
        values.Clear()
        values.name = "values"
        values.s = b"\x00\x01"
    return f"fill_values:{kind}:{where}#{i}"


def _empty_net(rng: random.Random, case: Case) -> str:
    where, net = _net(rng, case, 0.5)
    kind = rng.choice(("ops", "external_input", "external_output", "all"))
    if kind in ("ops", "all"):
        del net.op[:]
    if kind in ("external_input", "all"):
        del net.external_input[:]
    if kind in ("external_output", "all"):
        del net.external_output[:]
    return f"empty_net:{kind}:{where}"


def _externals(rng: random.Random, case: Case) -> str:
    net = case.predict
    kind = rng.choice(("drop_data", "drop_im_info", "drop_input", "drop_output", "extra_output", "duplicate_output",
                       "duplicate_input", "rename_output"))
    if kind == "drop_data" and "data" in net.external_input:
        net.external_input.remove("data")
    elif kind == "drop_im_info" and "im_info" in net.external_input:
        net.external_input.remove("im_info")
    elif kind == "drop_input" and len(net.external_input):
        del net.external_input[rng.randrange(len(net.external_input))]
    elif kind == "drop_output" and len(net.external_output):
        del net.external_output[rng.randrange(len(net.external_output))]
    elif kind == "extra_output":
        net.external_output.append(rng.choice(_blob_names(net) + ["no_such_output"]))
    elif kind == "duplicate_output" and len(net.external_output):
        net.external_output.append(net.external_output[0])
    elif kind == "duplicate_input" and len(net.external_input):
        net.external_input.append(net.external_input[-1])
    elif kind == "rename_output" and len(net.external_output):
        net.external_output[rng.randrange(len(net.external_output))] = rng.choice(_blob_names(net))
    return f"externals:{kind}"


_META_VALUES: dict[str, tuple] = {
    "size_divisibility": (("i", -1), ("i", 0), ("i", 7), ("i", 2**31 - 1), ("i", 2**40), ("f", 32.0), ("s", b"32")),
    "device": (("s", b"CPU"), ("s", b"cuda:9"), ("s", b"\xff\xfe"), ("s", b""), ("i", 0), ("s", b"tpu")),
    "pad_value": (("floats", [1.0, 2.0]), ("floats", []), ("floats", [1.0] * 4), ("floats", [float("nan")] * 3),
                  ("floats", [1.0]), ("ints", [1, 2, 3]), ("s", b"mean")),
    "meta_architecture": (("s", b"NoSuchArch"), ("s", b"\xc3\x28"), ("i", 1), ("s", b"RetinaNet"),
                          ("s", b"PanopticFPN"), ("s", b"")),
}


def _meta_arg(rng: random.Random, case: Case) -> str:
    net = case.predict
    name = rng.choice(sorted(_META_VALUES))
    existing = [j for j, a in enumerate(net.arg) if a.name == name]
    if existing and rng.random() < 0.25:
        del net.arg[existing[0]]
        return f"meta_arg:drop:{name}"
    fld, value = rng.choice(_META_VALUES[name])
    arg = net.arg[existing[0]] if existing else net.arg.add()
    arg.Clear()
    arg.name = name
    if isinstance(value, list):
        getattr(arg, fld).extend(value)
    else:
        setattr(arg, fld, value)
    return f"meta_arg:{name}:{fld}={value!r}"[:120]


def _device_option(rng: random.Random, case: Case) -> str:
    target = _target_op(rng, case, 0.3)
    if target is None:
        return "device_option:none"
    where, net, i, op = target
    op.device_option.device_type = rng.choice((0, 1, 6, 99))
    op.device_option.device_id = rng.choice((0, 1, -1, 2**30))
    return f"device_option:{where}#{i}:{op.device_option.device_type}"


def _image(rng: random.Random, case: Case) -> str:
    image = case.image
    if not isinstance(image, torch.Tensor) or image.dim() != 3:
        return "image:again"  # one image mutation per case: the mutators expect (C, H, W)
    kind = rng.choice(("gray", "rgba", "hwc", "rank2", "rank4", "empty", "zero_width", "numpy", "float64", "int64",
                       "tiny", "nan"))
    if kind == "gray":
        case.image = image[:1]
    elif kind == "rgba":
        case.image = torch.cat([image, image[:1]])
    elif kind == "hwc":
        case.image = image.permute(1, 2, 0)
    elif kind == "rank2":
        case.image = image[0]
    elif kind == "rank4":
        case.image = image[None]
    elif kind == "empty":
        case.image = image[:, :0, :0]
    elif kind == "zero_width":
        case.image = image[:, :, :0]
    elif kind == "numpy":
        case.image = image.numpy()
    elif kind == "float64":
        case.image = image.double()
    elif kind == "int64":
        case.image = image.long()
    elif kind == "tiny":
        case.image = image[:, :3, :5]
    else:
        case.image = image.float().fill_(float("nan"))
    return f"image:{kind}"


MUTATORS: tuple[tuple[Callable[[random.Random, Case], str], float], ...] = (
    (_bytes_mutation, 3.0),
    (_op_type, 1.0),
    (_op_io, 2.0),
    (_op_order, 1.0),
    (_op_arg, 3.0),
    (_fill_shape, 2.0),
    (_fill_values, 1.5),
    (_empty_net, 0.5),
    (_externals, 1.0),
    (_meta_arg, 1.5),
    (_device_option, 0.3),
    (_image, 0.7),
)


def mutate(case: Case, seed: int, index: int) -> None:
    """Apply 1-3 seeded mutations to ``case`` (byte-level ones last: they replace the serialized net)."""
    rng = random.Random(f"{seed}:{index}")
    funcs, weights = zip(*MUTATORS)
    chosen = rng.choices(funcs, weights, k=rng.choice((1, 1, 1, 2, 3)))
    chosen.sort(key=lambda f: f is _bytes_mutation)
    for fn in chosen:
        if fn is _bytes_mutation and (case.predict_bytes is not None or case.init_bytes is not None):
            continue
        case.notes.append(fn(rng, case))


# ---------------------------------------------------------------------------------------------
# Running one case
# ---------------------------------------------------------------------------------------------


@dataclass
class Base:
    """The unmutated model, parsed once in the parent and shared with every forked child."""

    model_dir: str
    predict: caffe2_pb2.NetDef
    init: caffe2_pb2.NetDef
    image: torch.Tensor


def load_base(model_dir: str, image_size: int) -> Base:
    from detectron2_export.data.detection_utils import read_image

    def read(name: str) -> caffe2_pb2.NetDef:
        path = os.path.join(model_dir, name)
        with open(path, "rb") as f:
            return parse_message(f.read(), where=path)

    image = torch.from_numpy(np.ascontiguousarray(read_image(SAMPLE_IMAGE, format="BGR").transpose(2, 0, 1)))
    if image_size and max(image.shape[1:]) > image_size:
        scale = image_size / max(image.shape[1:])
        size = [max(1, round(s * scale)) for s in image.shape[1:]]
        image = torch.nn.functional.interpolate(image[None].float(), size=size, mode="bilinear")[0].round().to(torch.uint8)
    return Base(model_dir, read("model.pb"), read("model_init.pb"), image)


def _write_case(base: Base, case: Case, out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    predict = case.predict_bytes if case.predict_bytes is not None else case.predict.SerializeToString()
    with open(os.path.join(out_dir, "model.pb"), "wb") as f:
        f.write(predict)
    init_path = os.path.join(out_dir, "model_init.pb")
    if case.init_bytes is None and not case.init_changed:
        os.symlink(os.path.join(os.path.abspath(base.model_dir), "model_init.pb"), init_path)
        return
    with open(init_path, "wb") as f:
        f.write(case.init_bytes if case.init_bytes is not None else case.init.SerializeToString())


def make_case(base: Base, seed: int, index: int) -> Case:
    """The mutated case ``index``: the predict net copied (small), the init net shared (mutated in a child)."""
    case = Case(caffe2_pb2.NetDef.FromString(base.predict.SerializeToString()), base.init, base.image)
    mutate(case, seed, index)
    return case


def _place(tb: traceback.StackSummary) -> str:
    """``file:function`` of the innermost frame in the project (else the innermost frame)."""
    frames = [f for f in tb if os.path.abspath(f.filename).startswith(os.path.join(REPO, "detectron2_export"))]
    frame = (frames or list(tb) or [None])[-1]
    if frame is None:
        return "?"
    return f"{os.path.relpath(frame.filename, REPO) if frame.filename.startswith(REPO) else os.path.basename(frame.filename)}:{frame.name}"


def classify(error: BaseException) -> str:
    """An allocator failure counts as a memory blow-up even when the executor wrapped it in a project error."""
    if isinstance(error, MemoryError) or any(s in str(error) for s in _ALLOC_FAILURES):
        return "memory"
    if isinstance(error, Detectron2ExportError):
        return "project_error"
    return "uncaught"


def run_python_case(base: Base, case: Case, work_dir: str) -> dict[str, Any]:
    """Write the case's files, load them with ``Caffe2Model.load_protobuf`` and run one image."""
    from detectron2_export.export import Caffe2Model

    _write_case(base, case, work_dir)
    try:
        Caffe2Model.load_protobuf(work_dir)([{"image": case.image}])
    except Exception as e:  # noqa: BLE001 - the harness records every exception
        return {
            "outcome": classify(e),
            "type": type(e).__name__,
            "place": _place(traceback.extract_tb(e.__traceback__)),
            "message": str(e)[:600],
        }
    return {"outcome": "ok"}


def run_cpp_case(base: Base, case: Case, work_dir: str, binary: str, timeout: float, memory_limit: int) -> dict[str, Any]:
    """Run ``caffe2_mask_rcnn`` on the mutated pair: exit 0 (ok), 1 with an error line, or a signal."""
    _write_case(base, case, work_dir)
    image_path = os.path.join(work_dir, "image.png")
    from PIL import Image

    image = case.image if isinstance(case.image, np.ndarray) else case.image.numpy()
    if image.ndim != 3 or image.shape[0] != 3 or image.shape[1] == 0 or image.shape[2] == 0:
        image = base.image.numpy()  # the binary reads a file: image mutations keep the sample
    rgb = np.nan_to_num(image.transpose(1, 2, 0)[..., ::-1]).clip(0, 255).astype(np.uint8)  # BGR (C, H, W) -> RGB
    Image.fromarray(np.ascontiguousarray(rgb)).save(image_path)
    cmd = [binary, f"-predict_net={work_dir}/model.pb", f"-init_net={work_dir}/model_init.pb", f"-input={image_path}",
           "-iters=0", "-mask_dir=", "-threads=1", "-min_size=128", "-max_size=256"]

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, preexec_fn=limit)
    except subprocess.TimeoutExpired:
        return {"outcome": "hang"}
    err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    last = err[-1] if err else ""
    if proc.returncode < 0:
        return {"outcome": "crash", "type": signal.Signals(-proc.returncode).name, "place": "caffe2_mask_rcnn", "message": last[:600]}
    if proc.returncode == 0:
        return {"outcome": "ok"}
    outcome = "memory" if any(s in last for s in _ALLOC_FAILURES) else "project_error"
    return {"outcome": outcome, "type": f"exit {proc.returncode}", "place": "caffe2_mask_rcnn", "message": last[:600]}


# ---------------------------------------------------------------------------------------------
# Forking runner
# ---------------------------------------------------------------------------------------------


@dataclass
class Options:
    seed: int = 0
    cases: int = 300
    start: int = 0
    jobs: int = 1
    timeout: float = 60.0
    memory_limit: int = DEFAULT_MEMORY_LIMIT
    cpp: str | None = None
    """Path to ``caffe2_mask_rcnn``: run it on each pair instead of the Python runtime."""


Runner = Callable[[Base, Case, str], dict[str, Any]]
"""Runs one mutated case written under a work directory; returns its outcome record."""


def mapped_bytes() -> int:
    """This process's address space now (VmSize). A forked case may map ``memory_limit`` more: the warm
    parent already maps several GiB (torch, the model), more inside a long-lived test worker, so an
    absolute limit would leave a case nothing to allocate."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise OSError("/proc/self/status has no VmSize line: the memory limit needs Linux")


def _child(base: Base, opts: Options, index: int, write_fd: int, work_root: str, runner: Runner | None) -> None:
    """In the forked child: limit memory, mutate, run, send one JSON line, exit without cleanup."""
    result: dict[str, Any]
    try:
        faulthandler.disable()  # a crash is the outcome to record, not a traceback on the parent's terminal
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        import logging

        logging.disable(logging.CRITICAL)
        if opts.cpp is None:
            limit = mapped_bytes() + opts.memory_limit
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        case = make_case(base, opts.seed, index)
        work_dir = os.path.join(work_root, f"case{index}")
        if runner is not None:
            result = runner(base, case, work_dir)
        elif opts.cpp is None:
            result = run_python_case(base, case, work_dir)
        else:
            result = run_cpp_case(base, case, work_dir, opts.cpp, opts.timeout, opts.memory_limit)
        result["mutation"] = case.notes
    except BaseException as e:  # noqa: BLE001 - a failure in the harness itself is reported too
        result = {"outcome": classify(e) if isinstance(e, Exception) else "uncaught", "type": type(e).__name__,
                  "place": "harness:" + _place(traceback.extract_tb(e.__traceback__)), "message": str(e)[:600]}
    try:
        os.write(write_fd, (json.dumps(result) + "\n").encode("utf-8"))
    finally:
        os._exit(0)


@dataclass
class _Running:
    index: int
    pid: int
    read_fd: int
    started: float
    data: bytearray = field(default_factory=bytearray)


def _finish(run: _Running, status: int, timed_out: bool) -> dict[str, Any]:
    os.close(run.read_fd)
    if timed_out:
        return {"case": run.index, "outcome": "hang"}
    if os.WIFSIGNALED(status):
        sig = signal.Signals(os.WTERMSIG(status)).name
        return {"case": run.index, "outcome": "crash", "type": sig, "place": "signal"}
    try:
        result = json.loads(bytes(run.data).decode("utf-8").splitlines()[0])
    except (IndexError, ValueError):
        return {"case": run.index, "outcome": "crash", "type": f"exit {os.WEXITSTATUS(status)} without a result", "place": "?"}
    result["case"] = run.index
    return result


def run_cases(base: Base, opts: Options, runner: Runner | None = None) -> Iterator[dict[str, Any]]:
    """Yield one result per case, forking up to ``opts.jobs`` children at a time; ``runner``
    replaces the default (``run_python_case``, or ``run_cpp_case`` with ``opts.cpp``)."""
    work_root = tempfile.mkdtemp(prefix="fuzz_models_", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    pending = iter(range(opts.start, opts.start + opts.cases))
    running: dict[int, _Running] = {}
    try:
        while True:
            while len(running) < opts.jobs:
                index = next(pending, None)
                if index is None:
                    break
                read_fd, write_fd = os.pipe()
                pid = os.fork()
                if pid == 0:
                    os.close(read_fd)
                    _child(base, opts, index, write_fd, work_root, runner)
                os.close(write_fd)
                running[read_fd] = _Running(index, pid, read_fd, time.monotonic())
            if not running:
                return
            ready, _, _ = select.select(list(running), [], [], 0.2)
            for fd in ready:
                chunk = os.read(fd, 65536)
                run = running[fd]
                if chunk:
                    run.data.extend(chunk)
                    continue
                _, status = os.waitpid(run.pid, 0)
                del running[fd]
                shutil.rmtree(os.path.join(work_root, f"case{run.index}"), ignore_errors=True)
                yield _finish(run, status, False)
            now = time.monotonic()
            for fd, run in list(running.items()):
                if now - run.started > opts.timeout:
                    os.kill(run.pid, signal.SIGKILL)
                    os.waitpid(run.pid, 0)
                    del running[fd]
                    shutil.rmtree(os.path.join(work_root, f"case{run.index}"), ignore_errors=True)
                    yield _finish(run, 0, True)
    finally:
        for run in running.values():
            os.kill(run.pid, signal.SIGKILL)
            os.waitpid(run.pid, 0)
        shutil.rmtree(work_root, ignore_errors=True)


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Outcome counts, error counts by (outcome, type, place) and the bad cases."""
    outcomes = collections.Counter(r["outcome"] for r in results)
    by_place = collections.Counter(
        f"{r['outcome']} {r.get('type', '')} at {r.get('place', '')}" for r in results if r["outcome"] != "ok"
    )
    bad = [r for r in results if r["outcome"] in BAD_OUTCOMES]
    return {"cases": len(results), "outcomes": dict(outcomes), "errors": dict(by_place.most_common()), "bad": bad}


def print_summary(summary: dict[str, Any], elapsed: float) -> None:
    print(f"{summary['cases']} cases in {elapsed:.1f} s")
    for outcome in ("ok", "project_error", *BAD_OUTCOMES):
        print(f"  {outcome:14s} {summary['outcomes'].get(outcome, 0)}")
    print("errors by type and place:")
    for key, n in summary["errors"].items():
        print(f"  {n:6d}  {key}")
    if summary["bad"]:
        print("bad cases (replay with --replay N):")
        for r in summary["bad"][:50]:
            print(f"  case {r['case']}: {r['outcome']} {r.get('type', '')} at {r.get('place', '')}: "
                  f"{r.get('mutation')} {r.get('message', '')[:300]!r}")


def warm_up(base: Base) -> None:
    """Run the unmutated model once in the parent: imports done, and a broken base model is caught."""
    from detectron2_export.export import Caffe2Model

    with tempfile.TemporaryDirectory() as d:
        _write_case(base, Case(base.predict, base.init, base.image), d)
        Caffe2Model.load_protobuf(d)([{"image": base.image}])


def measure_validation_cost(base: Base, repeats: int) -> dict[str, float]:
    """Median seconds of parsing both files, of ``validate_model`` and of one inference, alternated in
    one process (the machine's load shifts all three alike)."""
    import statistics

    from detectron2_export.caffe2.validate import validate_model
    from detectron2_export.export import Caffe2Model

    model = Caffe2Model.load_protobuf(base.model_dir)
    model([{"image": base.image}])
    times: dict[str, list[float]] = {"parse": [], "validate": [], "inference": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        loaded = Caffe2Model.load_protobuf(base.model_dir)
        t1 = time.perf_counter()
        validate_model(loaded.predict_net, loaded.init_net)
        t2 = time.perf_counter()
        model([{"image": base.image}])
        t3 = time.perf_counter()
        for key, value in zip(times, (t1 - t0, t2 - t1, t3 - t2)):
            times[key].append(value)
    return {key: statistics.median(values) for key, values in times.items()}


def export_shapes_model(out_dir: str) -> None:
    """Export the bundled shapes Mask R-CNN (the model tests/cpp uses) to ``out_dir``."""
    from pathlib import Path

    from tests.cpp.shapes_model import export_shapes_mask_rcnn

    export_shapes_mask_rcnn(Path(out_dir))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", help="directory with model.pb and model_init.pb (default: export the shapes model)")
    parser.add_argument("--export-to", help="export the bundled shapes model to this directory and exit")
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--start", type=int, default=0, help="first case index")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per case")
    parser.add_argument("--memory-limit-gib", type=float, default=DEFAULT_MEMORY_LIMIT / 2**30,
                        help="address space a case may map beyond the warm parent's")
    parser.add_argument("--image-size", type=int, default=160, help="longest side of the sample image (0: as stored)")
    parser.add_argument("--cpp", nargs="?", const=os.path.join(REPO, "cpp", "build", "caffe2_mask_rcnn"),
                        help="run this caffe2_mask_rcnn binary on each pair instead of the Python runtime")
    parser.add_argument("--replay", type=int, help="run this one case in-process and print its traceback")
    parser.add_argument("--json", help="write the summary (and every bad case) here")
    parser.add_argument("--validation-cost", type=int, metavar="N",
                        help="time parsing, validate_model and one inference N times, alternated, and exit")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.export_to:
        export_shapes_model(args.export_to)
        return 0
    tmp = None
    if args.model_dir is None:
        tmp = tempfile.mkdtemp(prefix="fuzz_shapes_")
        export_shapes_model(tmp)
        args.model_dir = tmp
    try:
        base = load_base(args.model_dir, args.image_size)
        if args.validation_cost:
            cost = measure_validation_cost(base, args.validation_cost)
            print(", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in cost.items()) + " (medians); validate / inference = "
                  f"{cost['validate'] / cost['inference']:.1%}")
            return 0
        if args.replay is not None:
            case = make_case(base, args.seed, args.replay)
            print("mutation:", case.notes)
            with tempfile.TemporaryDirectory() as d:
                from detectron2_export.export import Caffe2Model

                _write_case(base, case, d)
                Caffe2Model.load_protobuf(d)([{"image": case.image}])
            print("ran without an error")
            return 0
        warm_up(base)
        gc.freeze()  # children touch no refcount pages of what the parent built: less copy-on-write
        opts = Options(args.seed, args.cases, args.start, args.jobs, args.timeout,
                       int(args.memory_limit_gib * 2**30), args.cpp)
        start = time.monotonic()
        results = list(run_cases(base, opts))
        summary = summarize(results)
        print_summary(summary, time.monotonic() - start)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(summary, f, indent=1)
        return 1 if summary["bad"] else 0
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
