"""``io.batch_inputs`` / ``dynamic_axes``: detectron2's input dicts to the graph's three tensors, and
the dynamic axes they are exported with (a graph traced on two images runs on other batches)."""

import numpy as np
import pytest
import torch
from torch import nn

from detectron2_export.errors import ExportError
from detectron2_export.export.onnx.io import INPUT_NAMES, batch_inputs, dynamic_axes

from .helpers import OnnxFunction


def test_batch_inputs_hand_case():
    first = torch.arange(18.0).reshape(3, 2, 3)
    second = torch.full((3, 4, 1), 7, dtype=torch.uint8)
    feeds = batch_inputs([{"image": first, "height": 20, "width": 30}, {"image": second}])
    assert list(feeds) == INPUT_NAMES == ["images", "image_sizes", "output_sizes"]
    images = feeds["images"]
    assert images.dtype == np.float32 and images.shape == (2, 3, 4, 3)
    np.testing.assert_array_equal(images[0, :, :2, :3], first.numpy())
    np.testing.assert_array_equal(images[1, :, :4, :1], np.full((3, 4, 1), 7.0))
    assert not images[0, :, 2:].any() and not images[1, :, :, 1:].any()  # zero outside each image
    assert feeds["image_sizes"].dtype == np.int64 and feeds["image_sizes"].tolist() == [[2, 3], [4, 1]]
    assert feeds["output_sizes"].dtype == np.int64 and feeds["output_sizes"].tolist() == [[20, 30], [4, 1]]


@pytest.mark.parametrize(
    "inputs, message",
    [
        ([], r"inputs: an empty list, expected one dict per image"),
        ([{"image": torch.zeros(3, 4, 4)}, {"image": torch.zeros(4, 4)}], r"inputs\[1\]\['image'\]: shape \(4, 4\), expected a \(C, H, W\) tensor"),
        ([{"image": np.zeros((3, 4, 4))}], r"inputs\[0\]\['image'\]: ndarray, expected a \(C, H, W\) tensor"),
        ([{"height": 4}], r"inputs\[0\]\['image'\]: NoneType"),
        ([{"image": torch.zeros(3, 0, 4)}], r"shape \(3, 0, 4\), expected a \(C, H, W\) tensor with H, W > 0"),
        ([{"image": torch.zeros(3, 4, 4)}, {"image": torch.zeros(1, 4, 4)}], r"images with \[1, 3\] channels, expected the same for all"),
    ],
    ids=["empty", "2d", "numpy", "missing", "zero-height", "channels"],
)
def test_batch_inputs_bad_input_raises(inputs, message):
    with pytest.raises(ExportError, match=message):
        batch_inputs(inputs)


def test_dynamic_axes_hand_case():
    names = ["pred_boxes", "scores", "num_instances", "pred_masks", "sem_seg"]
    assert dynamic_axes(names, dynamic_batch=True) == {
        "images": {0: "batch", 2: "height", 3: "width"},
        "image_sizes": {0: "batch"},
        "output_sizes": {0: "batch"},
        "pred_boxes": {0: "batch", 1: "detections"},
        "scores": {0: "batch", 1: "detections"},
        "num_instances": {0: "batch"},
        "pred_masks": {0: "batch", 1: "detections", 2: "mask_height", 3: "mask_width"},
        "sem_seg": {0: "batch", 2: "output_height", 3: "output_width"},
    }
    fixed = dynamic_axes(["scores"], dynamic_batch=False)
    assert fixed == {"images": {2: "height", 3: "width"}, "image_sizes": {}, "output_sizes": {}, "scores": {1: "detections"}}


class ColumnSums(nn.Module):
    """Per image, the column sums of its own pixels ("scores", one per column) and the area of its
    output size ("num_instances"): reads every input inside each image's size only."""

    def forward(self, images, image_sizes, output_sizes):
        rows = torch.arange(images.shape[2])
        cols = torch.arange(images.shape[3])
        inside = (rows[None, :, None] < image_sizes[:, 0, None, None]) & (cols[None, None, :] < image_sizes[:, 1, None, None])
        sums = torch.where(inside[:, None], images, torch.zeros_like(images)).sum(dim=(1, 2))
        return sums, output_sizes.prod(dim=1)


def _inputs(shapes, seed: int):
    g = torch.Generator().manual_seed(seed)
    return [{"image": torch.rand(3, h, w, generator=g) * 255, "height": 2 * h, "width": w + 1} for h, w in shapes]


def _expected(inputs):
    """Column sums of each image zero-padded to the batch width, output areas."""
    width = max(x["image"].shape[2] for x in inputs)
    sums = np.zeros((len(inputs), width), dtype=np.float32)
    for i, x in enumerate(inputs):
        sums[i, : x["image"].shape[2]] = x["image"].sum(dim=(0, 1)).numpy()
    return sums, np.array([x["height"] * x["width"] for x in inputs])


@pytest.mark.parametrize("dynamic_batch", [True, False])
def test_exported_with_dynamic_axes_runs_on_other_batches(dynamic_batch):
    traced = _inputs([(5, 7), (6, 4)], seed=0)
    feeds = batch_inputs(traced)
    output_names = ["scores", "num_instances"]
    fn = OnnxFunction(
        ColumnSums(), [torch.from_numpy(feeds[n]) for n in INPUT_NAMES], INPUT_NAMES, output_names,
        dynamic_axes(output_names, dynamic_batch),
    )
    batch_dims = [i.type.tensor_type.shape.dim[0] for i in fn.model.graph.input]
    assert all((d.dim_param == "batch") if dynamic_batch else (d.dim_value == 2) for d in batch_dims)
    others = [[(9, 3), (2, 11), (4, 4)], [(1, 1)]] if dynamic_batch else [[(9, 3), (2, 11)]]
    for shapes in others:
        inputs = _inputs(shapes, seed=len(shapes))
        feeds = batch_inputs(inputs)
        sums, areas = fn(*(feeds[n] for n in INPUT_NAMES))
        expected_sums, expected_areas = _expected(inputs)
        np.testing.assert_allclose(sums, expected_sums, rtol=1e-5, atol=1e-3)
        np.testing.assert_array_equal(areas, expected_areas)
