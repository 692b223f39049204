"""Image loading at the boundary: bad files become one clear FaceGateError, odd modes become upright RGB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gate.errors import FaceGateError
from gate.vision.detection import Detector
from gate.vision.imageio import image_files, load_image

RED, BLUE = (255, 0, 0), (0, 0, 255)
ORIENTATION = 0x0112  # the EXIF tag


def _noise_jpeg(path: Path, size: int = 200) -> Path:
    pixels = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=95)
    return path


def test_load_image_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FaceGateError, match="no such file"):
        load_image(tmp_path / "absent.jpg")


def test_load_image_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(FaceGateError, match="no such file"):
        load_image(tmp_path)


def test_load_image_zero_bytes_raises(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.touch()
    with pytest.raises(FaceGateError, match=r"empty file \(0 bytes\)"):
        load_image(path)


def test_load_image_text_named_jpg_raises(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("not a photo, just some words\n", encoding="utf-8")
    with pytest.raises(FaceGateError, match="notes.jpg: not an image file"):
        load_image(path)


def test_load_image_truncated_jpeg_raises(tmp_path: Path) -> None:
    path = _noise_jpeg(tmp_path / "cut.jpg")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(FaceGateError, match="cut.jpg: unreadable image"):
        load_image(path)


def test_load_image_one_pixel_loads_and_holds_no_face(tmp_path: Path) -> None:
    path = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (10, 20, 30)).save(path)
    image = load_image(path)
    assert image.shape == (1, 1, 3) and image.dtype == np.uint8
    assert image[0, 0].tolist() == [10, 20, 30]
    assert Detector().detect(image) == []


def test_load_image_100_megapixels_refused_as_too_large(tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    Image.new("1", (10_000, 10_000), 1).save(path)  # 1 bit a pixel: 12.5 MB in memory, tiny on disk
    assert path.stat().st_size < 200_000
    with pytest.raises(FaceGateError, match="huge.png: image too large"):
        load_image(path)


def test_load_image_48_megapixels_refused_naming_size(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("1", (8_000, 6_000), 1).save(path)  # above the gate's 40 MP, below PIL's own bomb limit
    with pytest.raises(FaceGateError, match=r"big.png: image too large \(8000x6000\)"):
        load_image(path)


def test_load_image_grayscale_becomes_three_equal_channels(tmp_path: Path) -> None:
    path = tmp_path / "gray.png"
    Image.new("L", (4, 3), 77).save(path)
    image = load_image(path)
    assert image.shape == (3, 4, 3)
    assert np.all(image == 77)


def test_load_image_rgba_transparent_on_white(tmp_path: Path) -> None:
    path = tmp_path / "alpha.png"
    rgba = Image.new("RGBA", (2, 1), (255, 0, 0, 255))
    rgba.putpixel((1, 0), (0, 0, 0, 0))
    rgba.save(path)
    image = load_image(path)
    assert image.shape == (1, 2, 3)
    assert image[0, 0].tolist() == list(RED)
    assert image[0, 1].tolist() == [255, 255, 255]


def test_load_image_cmyk_jpeg_gives_rgb_colour(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=95)  # pure red in CMYK
    image = load_image(path)
    assert image.shape == (16, 16, 3)
    assert np.abs(image[8, 8].astype(int) - RED).max() <= 12


def test_load_image_16bit_png_rescaled_to_full_8bit_range(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    ramp = np.linspace(1000, 60000, 64, dtype=np.uint16).reshape(1, 64).repeat(4, axis=0)
    Image.fromarray(ramp).save(path)
    image = load_image(path)
    assert image.shape == (4, 64, 3) and image.dtype == np.uint8
    row = image[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255
    assert np.all(np.diff(row) >= 0)  # order kept, not clipped to 255


def test_load_image_exif_orientation_6_returned_upright(tmp_path: Path) -> None:
    stored = Image.new("RGB", (40, 20), BLUE)  # 40 wide, 20 tall as stored
    stored.paste(Image.new("RGB", (10, 10), RED), (0, 0))  # mark the stored top-left corner
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "rotated.jpg"
    stored.save(path, exif=exif, quality=95)
    image = load_image(path)
    assert image.shape == (40, 20, 3)  # now 20 wide, 40 tall
    top_right, top_left = image[2:8, 12:18].mean(axis=(0, 1)), image[2:8, 2:8].mean(axis=(0, 1))
    assert top_right[0] > 200 and top_right[2] < 60  # the marked corner turned clockwise to the top right
    assert top_left[2] > 200 and top_left[0] < 60


def test_image_files_lists_images_sorted_only(tmp_path: Path) -> None:
    for name in ("b.JPG", "a.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.jpg").mkdir()
    assert [p.name for p in image_files(tmp_path)] == ["a.png", "b.JPG"]


def test_image_files_not_a_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(FaceGateError, match="not a folder"):
        image_files(tmp_path / "missing")
