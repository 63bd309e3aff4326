"""The structural space: what the structural decoder predicts and the generator is guided by.

Before a generator exists this is blurred pixels; with a latent generator it is
the generator's own autoencoder applied to the blurred images (the hook below).
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from gess.data.images import STRUCTURAL_SMOOTHING_RADIUS_768, gaussian_smooth, resize_images, scaled_radius, to_rgb


class Autoencoder(Protocol):
    """What a generator's autoencoder offers M_s: images <-> latents."""

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:  # (N,3,H,W) in [0,1] -> latents
        ...

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:  # latents -> (N,3,H,W) in [0,1]
        ...


class StructuralSpace:
    """Blur images (Gaussian, r = 15 at 768 px, scaled), then map them to the structural target.

    Parameters
    ----------
    size : side of the images the target is computed at.
    radius : blur radius in pixels at ``size``; default scales the paper's r = 15 at 768 px.
    grey : work on one channel (digits, letters) instead of RGB.
    autoencoder : a generator's autoencoder; targets become its latents of the blurred images.
    """

    def __init__(self, size: int, radius: float | None = None, grey: bool = False, autoencoder: Autoencoder | None = None, name: str = "pixels"):
        self.size = int(size)
        self.radius = float(radius if radius is not None else scaled_radius(STRUCTURAL_SMOOTHING_RADIUS_768, size))
        self.grey = grey
        self.autoencoder = autoencoder
        self.name = name

    def config(self) -> dict:
        return {"size": self.size, "radius": self.radius, "grey": self.grey, "name": self.name}

    def blurred(self, images: np.ndarray) -> np.ndarray:
        """Blurred images, float32 in [0, 1], (n, size, size, C)."""
        imgs = resize_images(images, self.size)
        if self.grey:
            imgs = imgs.mean(axis=-1, keepdims=True).astype(np.uint8) if imgs.shape[-1] == 3 else imgs
        else:
            imgs = to_rgb(imgs)
        return gaussian_smooth(imgs, self.radius) / 255.0

    def targets(self, images: np.ndarray) -> np.ndarray:
        """Flattenable structural targets (n, ...) of uint8 images."""
        blurred = self.blurred(images)
        if self.autoencoder is None:
            return blurred.astype(np.float32)
        x = torch.from_numpy(to_rgb(blurred) if blurred.shape[-1] == 1 else blurred).permute(0, 3, 1, 2)
        with torch.no_grad():
            return self.autoencoder.encode_images(x).cpu().numpy().astype(np.float32)

    def to_images(self, targets: np.ndarray) -> np.ndarray:
        """Structural predictions back to float images in [0, 1] (n, size, size, C)."""
        if self.autoencoder is None:
            return np.clip(targets, 0.0, 1.0)
        with torch.no_grad():
            x = self.autoencoder.decode_latents(torch.from_numpy(targets))
        return x.clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
