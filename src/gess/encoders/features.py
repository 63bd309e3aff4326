"""Features of stimulus images as the method computes them (pre-smoothing, then encoding)."""
from __future__ import annotations

import numpy as np

from gess.data.images import SEMANTIC_SMOOTHING_RADIUS_768, gaussian_smooth, scaled_radius
from gess.encoders.base import ImageEncoder


def semantic_features(encoder: ImageEncoder, images: np.ndarray, radius: float | None = None,
                      progress: bool | None = None) -> np.ndarray:
    """C = f_phi(smooth(Y, r)): Gaussian r = 5 at 768 px scaled to the image side, then the encoder."""
    r = scaled_radius(SEMANTIC_SMOOTHING_RADIUS_768, images.shape[1]) if radius is None else radius
    smoothed = np.clip(np.rint(gaussian_smooth(images, r)), 0, 255).astype(np.uint8)
    return encoder.encode(smoothed, progress=progress, description="semantic features")
