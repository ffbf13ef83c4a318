import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from detectron2_export.data import transforms as T


@pytest.mark.parametrize(
    "hw, short, max_size, expected",
    [
        ((480, 640), 288, 384, (288, 384)),  # scale 0.6 exactly, long side just at the cap
        ((640, 480), 288, 384, (384, 288)),
        ((100, 1000), 288, 384, (38, 384)),  # 288 x 2880 capped: scale 384/2880 -> 38.4 x 384
        ((374, 281), 288, 384, (383, 288)),  # shapes image 00000: 374 * 288 / 281 = 383.32
        ((4, 6), 3, 1000, (3, 5)),  # 4.5 rounds half up (int(x + 0.5)), not to even
        ((800, 800), 800, 1333, (800, 800)),
        ((480, 640), 800, 1333, (800, 1067)),  # 1066.67
    ],
)
def test_resize_shortest_edge_output_shape(hw, short, max_size, expected):
    assert T.ResizeShortestEdge.get_output_shape(*hw, short, max_size) == expected


def test_get_transform_choice_and_noop():
    image = np.zeros((480, 640, 3), np.uint8)
    tfm = T.ResizeShortestEdge([288, 288], 384, "choice").get_transform(image)
    assert isinstance(tfm, T.ResizeTransform)
    assert (tfm.h, tfm.w, tfm.new_h, tfm.new_w, tfm.interp) == (480, 640, 288, 384, Image.BILINEAR)
    assert isinstance(T.ResizeShortestEdge(0, 384).get_transform(image), T.NoOpTransform)
    tfm = T.ResizeShortestEdge((200, 300), 1000, "range").get_transform(image)
    assert 200 <= min(tfm.new_h, tfm.new_w) <= 300
    with pytest.raises(ValueError, match="sample_style='bad', expected 'range' or 'choice'"):
        T.ResizeShortestEdge(288, 384, "bad")


def test_resize_uint8_is_pil_bilinear():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(37, 51, 3), dtype=np.uint8)
    out = T.ResizeTransform(37, 51, 20, 64).apply_image(image)
    expected = np.asarray(Image.fromarray(image).resize((64, 20), Image.BILINEAR))
    assert out.dtype == np.uint8 and out.shape == (20, 64, 3)
    np.testing.assert_array_equal(out, expected)
    gray = image[:, :, :1]
    out = T.ResizeTransform(37, 51, 20, 64).apply_image(gray)
    expected = np.asarray(Image.fromarray(gray[:, :, 0], mode="L").resize((64, 20), Image.BILINEAR))
    np.testing.assert_array_equal(out, expected[:, :, None])


def test_resize_float_uses_interpolate_without_align_corners():
    rng = np.random.default_rng(1)
    image = rng.random((9, 7, 2)).astype(np.float32)
    out = T.ResizeTransform(9, 7, 5, 11).apply_image(image)
    ref = F.interpolate(torch.from_numpy(image).permute(2, 0, 1)[None], (5, 11), mode="bilinear", align_corners=False)
    np.testing.assert_allclose(out, ref[0].permute(1, 2, 0).numpy(), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="image shape=\\(9, 7\\), expected \\(8, 7\\)"):
        T.ResizeTransform(8, 7, 5, 11).apply_image(image)


def test_resize_coords_boxes_and_inverse():
    tfm = T.ResizeTransform(100, 200, 50, 400)
    coords = tfm.apply_coords(np.array([[10.0, 20.0], [200.0, 100.0]]))
    np.testing.assert_allclose(coords, [[20.0, 10.0], [400.0, 50.0]])
    np.testing.assert_allclose(tfm.apply_box(np.array([[10.0, 20.0, 30.0, 40.0]])), [[20.0, 10.0, 60.0, 20.0]])
    inv = tfm.inverse()
    assert (inv.h, inv.w, inv.new_h, inv.new_w) == (50, 400, 100, 200)
    seg = np.array([[0, 1], [2, 3]], np.uint8)
    np.testing.assert_array_equal(T.ResizeTransform(2, 2, 4, 4).apply_segmentation(seg), seg.repeat(2, 0).repeat(2, 1))


def test_apply_augmentations_on_image_and_auginput():
    image = np.zeros((480, 640, 3), np.uint8)
    out, tfms = T.apply_augmentations([T.ResizeShortestEdge(288, 384, "choice")], image)
    assert out.shape == (288, 384, 3) and isinstance(tfms, T.TransformList) and len(tfms) == 1
    aug_input = T.AugInput(image, sem_seg=np.zeros((480, 640), np.uint8), boxes=np.array([[0.0, 0.0, 64.0, 48.0]]))
    tfms = T.AugmentationList([T.ResizeShortestEdge(240, 1000, "choice")])(aug_input)
    assert aug_input.image.shape == (240, 320, 3) and aug_input.sem_seg.shape == (240, 320)
    np.testing.assert_allclose(aug_input.boxes, [[0.0, 0.0, 32.0, 24.0]])
    np.testing.assert_allclose(tfms.inverse().apply_coords(np.array([[32.0, 24.0]])), [[64.0, 48.0]])


def _resize_to_short_edge_80_max_133(image: torch.Tensor) -> torch.Tensor:
    newh, neww = T.ResizeShortestEdge.get_output_shape(image.shape[-2], image.shape[-1], 80, 133)
    return F.interpolate(image.unsqueeze(0), size=(newh, neww))


@pytest.mark.parametrize("hw, expected", [((10, 10), (80, 80)), ((8, 100), (11, 133)), ((30, 20), (120, 80))])
def test_get_output_shape_callable_from_scripted_function(hw, expected):
    # 8 x 100: 80 x 1000 capped at 133 -> scale 0.133: 10.64 -> 11 (rounded half up) x 133
    scripted = torch.jit.script(_resize_to_short_edge_80_max_133)
    image = torch.randn(3, *hw, generator=torch.Generator().manual_seed(0))
    out = scripted(image)
    assert tuple(out.shape[-2:]) == expected
    torch.testing.assert_close(out, _resize_to_short_edge_80_max_133(image), rtol=0, atol=0)


def test_resize_to_fixed_shape():
    image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    tfm = T.Resize((8, 3)).get_transform(image)
    assert isinstance(tfm, T.ResizeTransform)
    assert (tfm.h, tfm.w, tfm.new_h, tfm.new_w, tfm.interp) == (4, 6, 8, 3, Image.BILINEAR)
    out, tfms = T.apply_augmentations([T.Resize(5, Image.NEAREST)], image)
    assert out.shape == (5, 5, 3)
    # nearest from 4x6 to 5x5 samples source pixel floor((i + 0.5) * src / dst), as PIL does
    rows = [int((i + 0.5) * 4 / 5) for i in range(5)]
    cols = [int((j + 0.5) * 6 / 5) for j in range(5)]
    np.testing.assert_array_equal(out, image[rows][:, cols])
    boxes = tfms.apply_box(np.array([[0.0, 0.0, 6.0, 4.0]]))
    np.testing.assert_allclose(boxes, [[0.0, 0.0, 5.0, 5.0]])
    with pytest.raises(ValueError, match=r"Resize: shape=\(3, 0\), expected an int or \(h, w\) of positive ints"):
        T.Resize((3, 0))


def test_flip_transforms_hand():
    image = np.arange(6, dtype=np.uint8).reshape(2, 3)
    hflip, vflip = T.HFlipTransform(3), T.VFlipTransform(2)
    np.testing.assert_array_equal(hflip.apply_image(image), [[2, 1, 0], [5, 4, 3]])
    np.testing.assert_array_equal(vflip.apply_image(image), [[3, 4, 5], [0, 1, 2]])
    # a box [0, 1] x [0, 2] of a 3-wide image becomes [2, 3] x [0, 2]; pixel edges, not centres
    np.testing.assert_allclose(hflip.apply_box(np.array([[0.0, 0.0, 1.0, 2.0]])), [[2.0, 0.0, 3.0, 2.0]])
    np.testing.assert_allclose(vflip.apply_box(np.array([[0.0, 0.0, 1.0, 0.5]])), [[0.0, 1.5, 1.0, 2.0]])
    np.testing.assert_array_equal(hflip.inverse().apply_image(hflip.apply_image(image)), image)
    batch = np.stack([image, image + 10])[..., None]  # N x H x W x C: the width axis is 2
    np.testing.assert_array_equal(hflip.apply_image(batch)[1, :, :, 0], [[12, 11, 10], [15, 14, 13]])


def test_random_flip():
    image = np.zeros((4, 6, 3), np.uint8)
    tfm = T.RandomFlip(prob=1.0).get_transform(image)
    assert isinstance(tfm, T.HFlipTransform) and tfm.width == 6
    tfm = T.RandomFlip(prob=1.0, horizontal=False, vertical=True).get_transform(image)
    assert isinstance(tfm, T.VFlipTransform) and tfm.height == 4
    assert isinstance(T.RandomFlip(prob=0.0).get_transform(image), T.NoOpTransform)
    with pytest.raises(ValueError, match="horizontal=True, vertical=True, expected exactly one of them True"):
        T.RandomFlip(vertical=True)


@pytest.mark.parametrize("name", ["RandomCrop", "RandomRotation", "ResizeScale", "RandomBrightness", "FixedSizeCrop"])
def test_training_augmentations_import_and_raise(name):
    from detectron2_export.utils.training_only import TrainingOnlyError

    cls = getattr(T, name)
    assert issubclass(cls, T.Augmentation)
    with pytest.raises(TrainingOnlyError, match=rf"augmentation_impl\.{name} is training-only"):
        cls("absolute", (10, 10))


@pytest.mark.parametrize("name", ["CropTransform", "PadTransform", "RotationTransform", "BlendTransform"])
def test_training_transforms_import_and_raise(name):
    from detectron2_export.utils.training_only import TrainingOnlyError

    assert issubclass(getattr(T, name), T.Transform)
    with pytest.raises(TrainingOnlyError, match=rf"transform\.{name} is training-only"):
        getattr(T, name)(0, 0, 1, 1)


def test_upstream_aliases():
    assert T.TransformGen is T.Augmentation and T.StandardAugInput is T.AugInput
