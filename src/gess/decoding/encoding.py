"""Encoding models (image features -> voxels) and the voxels they predict well, shared by the gate (M_g),
the trust score and M_s's voxel selection.

Every encoding model here is a ridge with one alpha per voxel (leave-one-out error over ``DEFAULT_ALPHAS``),
and a voxel is judged by the correlation of its cross-fitted prediction (each fold predicted by a ridge that
never saw it) with its measured z-scored response.
"""
from __future__ import annotations

import numpy as np

from gess.decoding.ridge import Ridge, cv_folds

DEFAULT_ALPHAS = (1e1, 1e2, 1e3, 1e4, 1e5)
STRUCTURE_SIDE = 16  # the structural features are pooled to at most this side (early visual cortex is coarse in fMRI)


def held_out_voxel_correlation(x: np.ndarray, z: np.ndarray, alphas=DEFAULT_ALPHAS, folds: int = 5,
                               groups=None) -> tuple[Ridge, np.ndarray]:
    """Ridge from features ``x`` (n, f) to every z-scored voxel of ``z`` (n, v), fitted on all n, and each voxel's
    held-out correlation (v,) over ``folds`` folds that never split a group (one stimulus's repeats)."""
    ridge = Ridge(alphas=list(alphas), device="cpu").fit(x, z, chunk=max(8192, z.shape[1]))  # CPU, whatever the process device
    return ridge, columnwise_correlation(ridge.cross_fitted(cv_folds(len(z), folds, groups)), z)


def structural_voxels(z: np.ndarray, structure: np.ndarray, n_voxels: int, folds: int = 5, groups=None,
                      ranked: bool = False) -> np.ndarray:
    """The ``n_voxels`` voxels (sorted indices; ``ranked``: best first) whose response an encoding model of the
    structural targets (pooled as :func:`pooled_structure`) predicts best on held-out folds of these trials."""
    features = pooled_structure(structure)
    mean, scale = block_standardization([features])
    _, r = held_out_voxel_correlation((features - mean) / scale, z, folds=folds, groups=groups)
    best = np.argsort(-r, kind="stable")[:n_voxels]
    return best if ranked else np.sort(best)


def pooled_structure(structure: np.ndarray) -> np.ndarray:
    """Structural targets (n, S, S, C) as features: block means at most STRUCTURE_SIDE px a side, flattened."""
    x = np.asarray(structure, np.float32)
    if x.ndim != 4:
        return x.reshape(len(x), -1)
    side = x.shape[1]
    factor = max(1, -(-side // STRUCTURE_SIDE))
    if factor > 1:
        crop = side - side % factor
        x = x[:, :crop, :crop].reshape(len(x), crop // factor, factor, crop // factor, factor, x.shape[-1]).mean((2, 4))
    return x.reshape(len(x), -1)


def block_standardization(blocks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature means and per-block scales that give every block the same total variance (one alpha fits all)."""
    means, scales = [], []
    for block in blocks:
        mean = block.mean(0)
        total = float(((block - mean) ** 2).sum(1).mean())
        means.append(mean)
        scales.append(np.full(block.shape[1], max(np.sqrt(total), 1e-6), np.float32))
    return np.concatenate(means).astype(np.float32), np.concatenate(scales)


def standardized_rows(x: np.ndarray) -> np.ndarray:
    """Rows centred and scaled so that a row product is a Pearson correlation."""
    x = x - x.mean(1, keepdims=True)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def columnwise_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(0)
    b = b - b.mean(0)
    denom = np.sqrt((a ** 2).sum(0) * (b ** 2).sum(0))
    return np.divide((a * b).sum(0), denom, out=np.zeros(a.shape[1]), where=denom > 0)
