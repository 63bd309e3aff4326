"""Image folders, resizing and the Gaussian pre-smoothing of the method."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from gess.errors import GessInputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".jpeg"}
# Radii of the method at its 768 px working resolution (the paper, Sec. 4; docs/decoding.md)
SEMANTIC_SMOOTHING_RADIUS_768 = 5.0
STRUCTURAL_SMOOTHING_RADIUS_768 = 15.0


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise GessInputError(folder, None, "a directory of images", "no such directory")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise GessInputError(folder, None, f"image files ({', '.join(sorted(IMAGE_SUFFIXES))})", "none")
    return files


def load_image(path: str | Path, size: int | None = None) -> np.ndarray:
    """One image as uint8 (S, S, 3), square: a non-square one (a 4:3 photo) centre-cropped to its shorter side,
    then, with ``size``, resized to ``size`` x ``size`` (docs/reliability.md, "Your data")."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            if im.width < 1 or im.height < 1:
                raise ValueError(f"{im.width}x{im.height} pixels")
            im = _rgb(im)
            side = min(im.size)
            if im.size != (side, side):
                left, top = (im.width - side) // 2, (im.height - side) // 2
                im = im.crop((left, top, left + side, top + side))
            if size is not None and im.size != (size, size):
                im = im.resize((size, size), Image.BICUBIC)
            return np.asarray(im, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise GessInputError(path, None, "a readable image", f"unreadable ({type(exc).__name__}: {exc})") from None


def _rgb(im):
    """An image of any mode as RGB: 16- and 32-bit grey scaled to 8 bits (PIL's own conversion clips them)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        x = np.asarray(im, dtype=np.float64)
        finite = x[np.isfinite(x)]
        hi = float(finite.max()) if finite.size else 0.0
        lo = min(float(finite.min()) if finite.size else 0.0, 0.0)
        x = np.nan_to_num(x, nan=lo, posinf=hi, neginf=lo)
        x = (x - lo) * (255.0 / (hi - lo)) if hi - lo > 255.0 else x - lo
        from PIL import Image

        im = Image.fromarray(np.clip(np.rint(x), 0, 255).astype(np.uint8), "L")
    return im.convert("RGB")


def load_image_folder(folder: str | Path, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All images of a folder, sorted by name: (images (n, H, W, 3) uint8, ids = file stems)."""
    files = list_images(folder)
    first = load_image(files[0], size)
    size = size or first.shape[0]
    images = np.stack([first] + [load_image(f, size) for f in files[1:]])
    return images, np.array([f.stem for f in files])


def center_crop(images: np.ndarray) -> np.ndarray:
    """Images (n, H, W, C) cut to their centre square (the rule of :func:`load_image`); square ones unchanged."""
    h, w = images.shape[1:3]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return images if h == w else images[:, top:top + side, left:left + side]


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Resize uint8 images (n, H, W, C) to ``size`` x ``size`` (bicubic, anti-aliased)."""
    if images.shape[1] == size and images.shape[2] == size:
        return images
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    y = F.interpolate(x, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    return y.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def scaled_radius(radius_at_768: float, side: int) -> float:
    """A smoothing radius of the method (given at 768 px) scaled to an image side."""
    return radius_at_768 * side / 768.0


def gaussian_smooth(images: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur of uint8 images (n, H, W, C) with PIL's radius convention (sigma = radius).

    Returns float32 in [0, 255].
    """
    from scipy.ndimage import gaussian_filter

    x = images.astype(np.float32)
    if radius <= 0:
        return x
    return gaussian_filter(x, sigma=(0, radius, radius, 0), mode="reflect").astype(np.float32)


def to_rgb(images: np.ndarray) -> np.ndarray:
    """(n, H, W, 1|3) -> (n, H, W, 3)."""
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images
