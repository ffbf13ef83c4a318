"""C++ vs Python Caffe2 runtime latency on the same exported Mask R-CNN, side by side.

Exports a Mask R-CNN with Caffe2Tracer for an 800x1216 input (a shapes validation image scaled up),
then runs the same ``data``/``im_info`` through the Python runtime (``ProtobufModel``) and the C++ one
(``caffe2_run_net``, built from cpp/ when missing; $DETECTRON2_EXPORT_CPP_BUILD picks another build
directory) with the same number of threads, checks that their outputs agree, and prints both
latencies (mean of --iters runs after one warm-up) and the ratio. Each runtime also runs without the
load-time convolution fusion (``ProtobufModel(fuse=False)``, ``caffe2_run_net --nofuse``) in the
same process, alternating with the fused one, for a before/after comparison.

    python benchmarks/cpp_vs_python_runtime.py [--model shapes|r50] [--iters 3] [--threads N]

``shapes``: the bundled mask_rcnn_R_18_FPN_shapes model with its trained weights (default).
``r50``: mask_rcnn_R_50_FPN_3x with fixed random weights (seed 0).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image

from detectron2_export.caffe2.protobuf_model import ProtobufModel
from detectron2_export.caffe2.serialization import load_net
from detectron2_export.checkpoint import DetectionCheckpointer
from detectron2_export.config import get_cfg
from detectron2_export.export import Caffe2Tracer, add_export_config
from detectron2_export.export.caffe2_modeling import convert_batched_inputs_to_c2_format
from detectron2_export.modeling import build_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD_DIR = os.environ.get("DETECTRON2_EXPORT_CPP_BUILD", os.path.join(REPO, "cpp", "build"))
HEIGHT, WIDTH = 800, 1216
MODELS = {
    "shapes": ("configs/shapes/mask_rcnn_R_18_FPN_shapes.yaml", "models/mask_rcnn_R_18_FPN_shapes.pkl"),
    "r50": ("configs/COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml", None),
}


def ensure_cpp_built() -> str:
    binary = os.path.join(BUILD_DIR, "caffe2_run_net")
    if not os.path.exists(binary):
        print("building cpp/ (cmake, -j2) ...", flush=True)
        subprocess.run(["cmake", "-S", os.path.join(REPO, "cpp"), "-B", BUILD_DIR, "-DCMAKE_BUILD_TYPE=Release",
                        f"-DPython3_EXECUTABLE={sys.executable}"], check=True, capture_output=True)
        subprocess.run(["cmake", "--build", BUILD_DIR, "-j2"], check=True, capture_output=True)
    return binary


def sample_inputs() -> list[dict]:
    """The first shapes validation image as BGR, scaled to HEIGHT x WIDTH (so that it has detections)."""
    path = os.path.join(REPO, "datasets", "shapes", "val", "00000.jpg")
    rgb = Image.open(path).convert("RGB").resize((WIDTH, HEIGHT), Image.BILINEAR)
    bgr = torch.from_numpy(np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1]))
    return [{"image": bgr.permute(2, 0, 1), "height": HEIGHT, "width": WIDTH}]


def export(model_name: str, out_dir: str) -> tuple[torch.Tensor, torch.Tensor]:
    config, weights = MODELS[model_name]
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(REPO, config))
    cfg.merge_from_list(["MODEL.DEVICE", "cpu"])
    cfg = add_export_config(cfg)
    torch.manual_seed(0)
    model = build_model(cfg)
    if weights:
        DetectionCheckpointer(model).load(os.path.join(REPO, weights))
    model.eval()
    inputs = sample_inputs()
    Caffe2Tracer(cfg, model, inputs).export_caffe2().save_protobuf(out_dir)
    return convert_batched_inputs_to_c2_format(inputs, model.backbone.size_divisibility, "cpu")


def time_python(model_dir: str, data: torch.Tensor, im_info: torch.Tensor, iters: int) -> tuple[dict[bool, float], tuple]:
    """Mean seconds per run of the fused (True) and unfused (False) model, runs alternating."""
    predict_net = load_net(os.path.join(model_dir, "model.pb"))
    init_net = load_net(os.path.join(model_dir, "model_init.pb"))
    models = {fuse: ProtobufModel(predict_net, init_net, fuse=fuse) for fuse in (True, False)}
    for model in models.values():
        model([data, im_info])  # warm-up
    seconds = {fuse: 0.0 for fuse in models}
    for _ in range(iters):
        for fuse, model in models.items():
            start = time.perf_counter()
            model([data, im_info])
            seconds[fuse] += time.perf_counter() - start
    return {fuse: total / iters for fuse, total in seconds.items()}, models[True]([data, im_info])


def time_cpp(binary: str, model_dir: str, data: torch.Tensor, im_info: torch.Tensor, iters: int,
             threads: int, work: str, fuse: bool = True) -> tuple[float, list[np.ndarray]]:
    np.save(os.path.join(work, "data.npy"), data.numpy())
    np.save(os.path.join(work, "im_info.npy"), im_info.numpy())
    out_dir = os.path.join(work, "cpp_out")
    proc = subprocess.run(
        [binary, f"--predict_net={model_dir}/model.pb", f"--init_net={model_dir}/model_init.pb",
         f"--inputs={work}/data.npy,{work}/im_info.npy", f"--output_dir={out_dir}", f"--iters={iters}",
         f"--threads={threads}", f"--fuse={str(fuse).lower()}"],
        check=True, capture_output=True, text=True,
    )
    seconds = float(re.search(r"Latency: ([0-9.e+-]+) seconds per run", proc.stdout).group(1))
    names = open(os.path.join(out_dir, "outputs.txt")).read().split()
    return seconds, [np.load(os.path.join(out_dir, f"output_{k}.npy")) for k in range(len(names))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="shapes")
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    binary = ensure_cpp_built()
    with tempfile.TemporaryDirectory(prefix="cpp_vs_python_") as work:
        model_dir = os.path.join(work, "model")
        print(f"exporting {args.model} for a {HEIGHT}x{WIDTH} input ...", flush=True)
        data, im_info = export(args.model, model_dir)
        t_pythons, py_out = time_python(model_dir, data, im_info, args.iters)
        t_cpp_nofuse, _ = time_cpp(binary, model_dir, data, im_info, args.iters, args.threads, work, fuse=False)
        t_cpp, cpp_out = time_cpp(binary, model_dir, data, im_info, args.iters, args.threads, work)
    t_python = t_pythons[True]
    n_det = py_out[1].shape[0]
    same = n_det == cpp_out[1].shape[0] and all(
        np.allclose(c, p.numpy(), rtol=0, atol=1e-3) for c, p in zip(cpp_out, py_out)
    )
    print(f"model {args.model}, input {tuple(data.shape)}, {n_det} detections, {args.threads} threads, "
          f"outputs {'agree (atol 1e-3)' if same else 'DIFFER'}")
    rows = [
        ("Python runtime, unfused", t_pythons[False]),
        ("Python runtime (ProtobufModel)", t_python),
        ("C++ runtime, --nofuse", t_cpp_nofuse),
        ("C++ runtime (caffe2_run_net)", t_cpp),
    ]
    for name, seconds in rows:
        print(f"{name:<34} {seconds * 1000:9.1f} ms/run (mean of {args.iters})")
    print(f"fused / unfused latency: Python {t_python / t_pythons[False]:.2f}x, C++ {t_cpp / t_cpp_nofuse:.2f}x")
    print(f"C++ / Python latency: {t_cpp / t_python:.2f}x (target <= 1.0)")


if __name__ == "__main__":
    main()
