"""Low-pass filters F_s in the generator's space (latents or pixels).

Two kernels (``CSOptions.lowpass_kernel``):

* ``"bicubic"`` (the default; every figure in the docs was measured with it): torch's bicubic resize, down
  with the a = -0.5 cubic stretched by the factor (anti-aliased, edge weights renormalised), up with the
  a = -0.75 cubic, edge pixels repeated;
* ``"resizer"``: the filter of the authors' release (duolala1/GESS, ``ldm/models/diffusion/ddim.py``:
  ``up(down(z))`` with ``down = Resizer(shape, 1 / 6)``, ``up = Resizer(shape_d, 6)``), ILVR's ``Resizer``,
  A. Shocher's port of MATLAB's ``imresize``: the a = -0.5 cubic in both directions (stretched by the factor,
  i.e. anti-aliased, when shrinking), each output's weights normalised to sum 1, mirrored edges.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

LOWPASS_KERNELS = ("bicubic", "resizer")


def lowpass(z: torch.Tensor, factor: float, kernel: Literal["bicubic", "resizer"] = "bicubic") -> torch.Tensor:
    """up(down(z)): resize (N, C, H, W) down by ``factor`` (to round(side / factor), at least 1) and back.

    ``kernel`` is one of :data:`LOWPASS_KERNELS` (module docstring); the released F_s uses factor 6 and
    ``"resizer"``. ``factor <= 1`` returns ``z`` unchanged.
    """
    if kernel not in LOWPASS_KERNELS:
        raise ValueError(f"lowpass kernel must be one of {', '.join(LOWPASS_KERNELS)}, got {kernel!r}")
    if factor <= 1:
        return z
    h, w = z.shape[-2:]
    small = (max(1, round(h / factor)), max(1, round(w / factor)))
    if kernel == "resizer":
        return _resizer_lowpass(z, small)
    down = F.interpolate(z, size=small, mode="bicubic", antialias=True, align_corners=False)
    return F.interpolate(down, size=(h, w), mode="bicubic", align_corners=False)


def _cubic(x: np.ndarray) -> np.ndarray:
    """The Resizer's cubic (Keys, a = -0.5)."""
    x = np.abs(x)
    return ((1.5 * x**3 - 2.5 * x**2 + 1) * (x <= 1)
            + (-0.5 * x**3 + 2.5 * x**2 - 4 * x + 2) * ((1 < x) & (x <= 2)))


def resizer_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) float64 matrix of ILVR's ``Resizer`` along one axis, with the output length given
    (scale = n_out / n_in), cubic kernel, anti-aliased when shrinking: ``Resizer.contributions`` written as a
    matrix. Where n_in = factor * n_out exactly (the release's sides), this is ``Resizer(shape, 1 / factor)``
    and, back up, ``Resizer(shape_d, factor)``."""
    return _resizer_matrix(int(n_in), int(n_out)).copy()


@lru_cache(maxsize=64)
def _resizer_matrix(n_in: int, n_out: int) -> np.ndarray:
    if n_in == n_out:  # the Resizer skips an axis whose scale is 1
        return np.eye(n_in)
    scale = n_out / n_in
    antialias = scale < 1
    width = 4.0 / scale if antialias else 4.0
    out = np.arange(1, n_out + 1, dtype=np.float64)
    match = out / scale + 0.5 * (1 - 1 / scale)                         # 1-based source coordinate
    left = np.floor(match - width / 2)
    taps = left[:, None] + np.arange(np.ceil(width) + 2)[None] - 1      # 0-based field of view
    arg = match[:, None] - taps - 1
    weights = scale * _cubic(scale * arg) if antialias else _cubic(arg)
    sums = weights.sum(1, keepdims=True)
    sums[sums == 0] = 1.0
    weights = weights / sums
    mirror = np.concatenate([np.arange(n_in), np.arange(n_in - 1, -1, -1)])
    index = mirror[np.mod(taps.astype(np.int64), 2 * n_in)]
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.repeat(np.arange(n_out), index.shape[1]), index.ravel()), weights.ravel())
    return m


@lru_cache(maxsize=64)
def _resizer_lowpass_matrix(n: int, n_small: int) -> np.ndarray:
    """up @ down along one axis: (n, n)."""
    return _resizer_matrix(n_small, n) @ _resizer_matrix(n, n_small)


def _resizer_lowpass(z: torch.Tensor, small: tuple[int, int]) -> torch.Tensor:
    """Resizer down to ``small`` and back, as one (H, H) and one (W, W) matrix on z's device."""
    h, w = z.shape[-2:]
    dtype = z.dtype if z.dtype in (torch.float32, torch.float64) else torch.float32
    rows = torch.as_tensor(_resizer_lowpass_matrix(h, small[0]), dtype=dtype, device=z.device)
    cols = torch.as_tensor(_resizer_lowpass_matrix(w, small[1]), dtype=dtype, device=z.device)
    return torch.matmul(torch.matmul(rows, z.to(dtype)), cols.T).to(z.dtype)
