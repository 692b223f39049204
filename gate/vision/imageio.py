"""Image loading at the boundary: any photo file becomes an upright RGB uint8 array, or a clear error."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from gate.errors import FaceGateError

LOSSLESS = 101  # OpenCV's WebP quality above 100 means lossless
MAX_PIXELS = 40_000_000  # refuse larger photos before decoding them (a 10000x10000 image is 100 MP)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")


def _to_rgb(image: Image.Image) -> np.ndarray:
    """Convert any PIL mode (L, LA, P, RGBA, CMYK, I;16, I, F) to RGB uint8."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float grayscale: rescale to 8 bits from the image's own range instead of clipping.
        values = np.asarray(image, dtype=np.float32)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
        gray = scaled.round().astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read a photo as an upright (EXIF-rotated) RGB uint8 array of shape (H, W, 3).

    Raises FaceGateError with a one-line reason for a missing, empty, unreadable, non-image or huge file.
    """
    path = Path(path)
    if not path.is_file():
        raise FaceGateError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise FaceGateError(f"{path}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise FaceGateError(
                        f"{path}: image too large ({width}x{height}); at most {MAX_PIXELS // 1_000_000} megapixels"
                    )
                image.load()
                upright = ImageOps.exif_transpose(image) or image
                return _to_rgb(upright)
    except FaceGateError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # Image.open's own size check
        raise FaceGateError(f"{path}: image too large; at most {MAX_PIXELS // 1_000_000} megapixels") from None
    except UnidentifiedImageError:
        raise FaceGateError(f"{path}: not an image file PIL can read") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise FaceGateError(f"{path}: unreadable image ({error})") from None


def encode_crop(crop: np.ndarray, quality: int = LOSSLESS) -> bytes:
    """An RGB uint8 face crop as WebP bytes: lossless by default (pixels kept exactly), lossy below 101."""
    ok, data = cv2.imencode(".webp", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_WEBP_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {crop.shape} crop as WebP")
    return data.tobytes()


def decode_crop(data: bytes | np.ndarray) -> np.ndarray:
    """WebP bytes from encode_crop back to an RGB uint8 crop."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise FaceGateError("a stored face crop is damaged and cannot be decoded")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The image files directly inside a folder, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FaceGateError(f"{folder}: not a folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
