"""M_s, the structural module: its target space and the ridge from voxels to it.

The target space (:class:`StructuralSpace`) blurs each stimulus (Gaussian,
r = 15 at 768 px, scaled to the working side) and keeps either

* ``kind="pixels"``: the blurred image itself (the default; any generator can use it), or
* ``kind="latent"``: the generator's autoencoder latents of the blurred image (the
  paper's choice for Stable unCLIP: 4 x 96 x 96 targets at 768 px). The decoded
  latent is then the structural reference of CS and GG as it is, and the space
  records which generator it belongs to, so that it is never used with another.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import torch

from gess.data.images import STRUCTURAL_SMOOTHING_RADIUS_768, gaussian_smooth, resize_images, scaled_radius, to_rgb
from gess.decoding.ridge import RBFKernelRidge, Ridge
from gess.options import AT_LEAST_1, NON_NEGATIVE, Options
from gess.persistence import Component, config_args


@dataclass
class StructureOptions(Options):
    """How M_s's target space is chosen for a dataset (``gess fit --structure-*``, ``structure:`` in a run config)."""

    kind: Literal["pixels", "latent"] = field(default="pixels", metadata={
        "help": "pixels (blurred images) or latent (the generator's latents of them)"})
    size: int | None = field(default=None, metadata={"help": "side of the blurred target, pixels (default min(side, 64))",
                                                     "range": AT_LEAST_1})
    radius: float | None = field(default=None, metadata={"help": "blur radius in pixels (default r = 15 at 768 px, scaled)",
                                                         "range": NON_NEGATIVE})
    generator: str | None = field(default=None, metadata={"help": "for kind latent: the generator directory or hub id"})


class Autoencoder(Protocol):
    """What a latent structural space needs of a generator: images <-> its space."""

    def from_images(self, images: torch.Tensor) -> torch.Tensor:  # (N,3,H,W) in [0,1] -> latents
        ...

    def to_images(self, latents: torch.Tensor) -> torch.Tensor:  # latents -> (N,3,H,W) in [0,1]
        ...


class StructuralSpace(Component):
    """What M_s predicts: blurred images, or a generator's latents of them.

    Parameters
    ----------
    size : side of the images the target is computed at.
    radius : blur radius in pixels at ``size``; default scales the paper's r = 15 at 768 px.
    grey : work on one channel (digits, letters) instead of RGB.
    kind : ``"pixels"`` or ``"latent"``.
    generator : for ``kind="latent"``, the generator directory or hub id the latents belong to.
    autoencoder : for ``kind="latent"``, the loaded generator backend (``from_images``/``to_images``).

    Examples
    --------
    >>> space = StructuralSpace(16, grey=True)
    >>> space.targets(np.zeros((2, 28, 28, 1), np.uint8)).shape
    (2, 16, 16, 1)
    """

    not_config = ("autoencoder",)  # a loaded generator, passed again to from_config

    def __init__(self, size: int, radius: float | None = None, grey: bool = False,
                 kind: Literal["pixels", "latent"] = "pixels", generator: str | None = None,
                 autoencoder: Autoencoder | None = None):
        self.size = int(size)
        self.radius = float(radius if radius is not None else scaled_radius(STRUCTURAL_SMOOTHING_RADIUS_768, size))
        self.grey = grey
        self.kind = kind
        self.generator = generator
        self.autoencoder = autoencoder

    @classmethod
    def from_config(cls, config: dict, autoencoder: Autoencoder | None = None) -> "StructuralSpace":
        kind = config.get("kind", config.get("name", "pixels"))  # gess 0.1 wrote "name": "pixels"
        return cls(**{**config_args(cls, config), "kind": kind, "autoencoder": autoencoder})

    def blurred(self, images: np.ndarray) -> np.ndarray:
        """Blurred images, float32 in [0, 1], (n, size, size, C)."""
        imgs = resize_images(images, self.size)
        if self.grey:
            imgs = imgs.mean(axis=-1, keepdims=True).astype(np.uint8) if imgs.shape[-1] == 3 else imgs
        else:
            imgs = to_rgb(imgs)
        return (gaussian_smooth(imgs, self.radius) / 255.0).astype(np.float32)

    def targets(self, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """The structural targets (n, ...) of uint8 images."""
        blurred = self.blurred(images)
        if self.kind == "pixels":
            return blurred
        parts = []
        for start in range(0, len(blurred), batch_size):
            x = torch.from_numpy(to_rgb_float(blurred[start:start + batch_size])).permute(0, 3, 1, 2)
            with torch.no_grad():
                parts.append(self.autoencoder.from_images(x).float().cpu().numpy())
        return np.concatenate(parts).astype(np.float32)

    def to_images(self, targets: np.ndarray) -> np.ndarray:
        """Structural predictions as float images in [0, 1] (n, H, W, C)."""
        if self.kind == "pixels":
            return np.clip(targets, 0.0, 1.0)
        with torch.no_grad():
            x = self.autoencoder.to_images(torch.as_tensor(targets, device=getattr(self.autoencoder, "device", "cpu")))
        return x.clamp(0, 1).permute(0, 2, 3, 1).float().cpu().numpy()


def to_rgb_float(images: np.ndarray) -> np.ndarray:
    """(n, H, W, 1|3) float images as RGB."""
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


class StructuralDecoder:
    """M_s: a ridge (or an RBF kernel ridge) from z-scored voxels to the flattened structural target.

    Parameters
    ----------
    alpha, alphas : as in :class:`~gess.decoding.ridge.Ridge`.

    Attributes
    ----------
    ridge_ : the fitted linear ridge (over every voxel: those left out of a selection weigh 0), or None when
    kernel_ : the fitted :class:`~gess.decoding.ridge.RBFKernelRidge` on the selected voxels decodes instead;
    target_shape_ : shape of one target; voxels_ : the voxels it reads (None: all).
    """

    def __init__(self, alpha: float = 1000.0, alphas=None):
        self.alpha = alpha
        self.alphas = alphas

    def fit(self, fmri: np.ndarray, targets: np.ndarray, ridge: Ridge | RBFKernelRidge | None = None,
            voxels: np.ndarray | None = None) -> "StructuralDecoder":
        """Fit on z-scored fMRI; ``ridge``, when given, is an already fitted ridge (or RBF kernel ridge) from the
        ``voxels`` (sorted indices; None: all) to the targets."""
        targets = np.asarray(targets, np.float32)
        self.target_shape_ = tuple(targets.shape[1:])
        flat = targets.reshape(len(targets), -1)
        self.voxels_ = None if voxels is None else np.asarray(voxels, np.int64)
        self.ridge_, self.kernel_ = None, None
        if isinstance(ridge, RBFKernelRidge):
            self.kernel_ = ridge
            return self
        if ridge is None:
            ridge = Ridge(self.alpha, self.alphas).fit(fmri if voxels is None else fmri[:, self.voxels_], flat)
        if self.voxels_ is not None:  # one coefficient per voxel, as without a selection: M_s reads every trial alike
            coef = np.zeros((fmri.shape[1], flat.shape[1]), np.float32)
            coef[self.voxels_] = ridge.coef_
            ridge = Ridge.from_arrays(coef, ridge.intercept_, ridge.alpha_)
        self.ridge_ = ridge
        return self

    @property
    def alpha_used_(self):
        return (self.kernel_ or self.ridge_).alpha_

    def state(self) -> dict[str, np.ndarray]:
        voxels = {} if self.voxels_ is None else {"voxels": self.voxels_}
        if self.kernel_ is not None:
            return {"kernel_samples": self.kernel_.samples_, "kernel_dual_coef": self.kernel_.dual_coef_,
                    "kernel_gamma": np.asarray([self.kernel_.gamma], np.float64), "intercept": self.kernel_.intercept_,
                    **voxels}
        return {"coef": self.ridge_.coef_, "intercept": self.ridge_.intercept_, **voxels}

    def load_state(self, arrays: dict[str, np.ndarray], alpha, target_shape) -> "StructuralDecoder":
        """The fitted decoder from :meth:`state`, the alpha it used and the shape of one target."""
        self.ridge_, self.kernel_ = None, None
        if "kernel_dual_coef" in arrays:
            self.kernel_ = RBFKernelRidge.from_arrays(arrays["kernel_samples"], arrays["kernel_dual_coef"],
                                                      arrays["intercept"], alpha, float(arrays["kernel_gamma"][0]))
        else:
            self.ridge_ = Ridge.from_arrays(arrays["coef"], arrays["intercept"], alpha)
        self.target_shape_ = tuple(target_shape)
        self.voxels_ = np.asarray(arrays["voxels"], np.int64) if "voxels" in arrays else None
        return self

    def predict(self, fmri: np.ndarray) -> np.ndarray:
        if self.kernel_ is not None:
            read = fmri if self.voxels_ is None else np.asarray(fmri)[:, self.voxels_]
            return self.kernel_.predict(read).reshape((-1,) + self.target_shape_)
        return self.ridge_.predict(fmri).reshape((-1,) + self.target_shape_)
