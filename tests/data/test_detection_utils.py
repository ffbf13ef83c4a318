import numpy as np
import pytest
from PIL import Image

from detectron2_export.data.detection_utils import SizeMismatchError, check_image_size, read_image

PIXELS = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]], [[10, 20, 30], [40, 50, 60], [70, 80, 90]]], np.uint8)


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "rgb.png"
    Image.fromarray(PIXELS, "RGB").save(path)
    return str(path)


def test_read_image_formats(png):
    bgr = read_image(png, format="BGR")
    assert bgr.shape == (2, 3, 3) and bgr.dtype == np.uint8
    np.testing.assert_array_equal(bgr[0, 0], [0, 0, 255])  # red pixel, channels B, G, R
    np.testing.assert_array_equal(bgr, PIXELS[:, :, ::-1])
    np.testing.assert_array_equal(read_image(png, format="RGB"), PIXELS)
    np.testing.assert_array_equal(read_image(png), PIXELS)
    gray = read_image(png, format="L")
    expected = np.asarray(Image.fromarray(PIXELS).convert("L"))[:, :, None]
    np.testing.assert_array_equal(gray, expected)
    yuv = read_image(png, format="YUV-BT.601")
    np.testing.assert_allclose(yuv[0, 0], [0.299, -0.14713, 0.615], atol=1e-12)  # pure red


def test_read_image_applies_exif_orientation(tmp_path):
    path = tmp_path / "rotated.png"
    exif = Image.Exif()
    exif[274] = 6  # camera rotated: display rotated 90 degrees clockwise
    Image.fromarray(PIXELS, "RGB").save(path, exif=exif)
    np.testing.assert_array_equal(read_image(str(path), format="RGB"), np.rot90(PIXELS, k=-1))


def test_shapes_jpeg_bgr_matches_pil(tmp_path):
    from .helpers import SHAPES_IMAGES

    path = f"{SHAPES_IMAGES}/00000.jpg"
    expected = np.asarray(Image.open(path).convert("RGB"))[:, :, ::-1]
    image = read_image(path, format="BGR")
    assert image.shape == (374, 281, 3)
    np.testing.assert_array_equal(image, expected)


def test_check_image_size():
    image = np.zeros((4, 6, 3), np.uint8)
    d = {"file_name": "x.jpg"}
    check_image_size(d, image)
    assert (d["height"], d["width"]) == (4, 6)
    with pytest.raises(SizeMismatchError, match="x.jpg: \\(width, height\\)=\\(6, 4\\), expected \\(5, 4\\)"):
        check_image_size({"file_name": "x.jpg", "height": 4, "width": 5}, image)


@pytest.mark.parametrize("content", ["truncated", "garbage", "empty"])
def test_unreadable_image_names_the_file(tmp_path, content):
    """Issue 15: a truncated JPEG gave PIL's OSError naming no file."""
    from detectron2_export.data.detection_utils import ImageFileError

    path = tmp_path / "bad.jpg"
    buf = tmp_path / "good.jpg"
    Image.fromarray(np.tile(PIXELS, (40, 40, 1)), "RGB").save(buf, quality=90)
    data = buf.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"\xff\xd8not a jpeg", "empty": b""}[content])
    with pytest.raises(ImageFileError, match=r"bad\.jpg: cannot read the image") as e:
        read_image(str(path), format="BGR")
    assert isinstance(e.value, OSError)
    assert read_image(str(buf), format="RGB").shape == (80, 120, 3)
