"""Pearson correlations: the one implementation that the metrics (evaluation), fold tuning (generation), the
encoding model, the gates, trust and near-copy detection all score with, so a setting chosen on the folds is
chosen by the metric the user reads, and a constant row means the same thing everywhere."""
from __future__ import annotations

import numpy as np


def standardized_rows(x: np.ndarray, dtype=None) -> np.ndarray:
    """Each row (flattened) centred and scaled to unit norm, so that the product of two rows is their Pearson
    correlation. Computed in ``dtype`` (``x``'s own floating type when None).

    A constant row becomes zeros, so it correlates 0 with everything: its centred values are the rounding
    error of its mean, which would otherwise be scaled up to a unit vector pointing anywhere.
    """
    x = np.asarray(x, dtype)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    x = x.reshape(len(x), -1)
    centred = x - x.mean(1, keepdims=True)
    norm = np.linalg.norm(centred, axis=1, keepdims=True)
    varies = (norm > 0) & (x.max(1, keepdims=True, initial=-np.inf) > x.min(1, keepdims=True, initial=np.inf))
    return np.divide(centred, norm, out=np.zeros_like(centred), where=varies)


def correlation_matrix(a: np.ndarray, b: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Pearson correlation between every row of ``a`` and every row of ``b``: (len(a), len(b))."""
    return standardized_rows(a, dtype) @ standardized_rows(b, dtype).T


def paired_correlation(a: np.ndarray, b: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Pearson correlation between row i of ``a`` and row i of ``b``: (len(a),)."""
    return (standardized_rows(a, dtype) * standardized_rows(b, dtype)).sum(1)


def columnwise_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation between column j of ``a`` and column j of ``b`` (a voxel's prediction and its
    measurement over trials): (a.shape[1],); 0 for a constant column."""
    a = a - a.mean(0)
    b = b - b.mean(0)
    denom = np.sqrt((a ** 2).sum(0) * (b ** 2).sum(0))
    return np.divide((a * b).sum(0), denom, out=np.zeros(a.shape[1]), where=denom > 0)
