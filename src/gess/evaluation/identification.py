"""Two-way identification: the paper's random-draw protocol and the all-pairs protocol of the NSD papers."""
from __future__ import annotations

import numpy as np


def _unit_centred_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    x = x - x.mean(1, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def correlation_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation between every row of ``a`` and every row of ``b``: (len(a), len(b))."""
    return _unit_centred_rows(a) @ _unit_centred_rows(b).T


def paired_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation between row i of ``a`` and row i of ``b``: (len(a),)."""
    return (_unit_centred_rows(a) * _unit_centred_rows(b)).sum(1)


def two_way_all_pairs(ground_truth_features: np.ndarray, reconstruction_features: np.ndarray) -> np.ndarray:
    """Per-sample all-pairs 2-way identification (MindEye): for reconstruction j, the fraction
    of other ground truths i != j with r(gt_i, rec_j) < r(gt_j, rec_j)."""
    r = correlation_matrix(ground_truth_features, reconstruction_features)  # r[i, j] = r(gt_i, rec_j)
    n = len(r)
    if n < 2:
        return np.full(n, np.nan)
    own = np.diag(r)
    wins = (r < own[None, :]).sum(0)  # own entry is never < itself
    return wins / (n - 1)


def two_way_random(distances: np.ndarray, trials: int = 10, seed: int = 0) -> np.ndarray:
    """The GESS paper's protocol on a distance matrix d[i, j] = d(rec_i, gt_j).

    For each reconstruction i draw ``trials`` other stimuli j != i (seeded);
    correct when d(rec_i, gt_i) < d(rec_i, gt_j). Returns the per-sample rate.
    """
    d = np.asarray(distances, np.float64)
    n = len(d)
    if n < 2:
        return np.full(n, np.nan)
    rng = np.random.default_rng(seed)
    out = np.empty(n)
    for i in range(n):
        others = rng.integers(0, n - 1, size=trials)
        others[others >= i] += 1
        out[i] = np.mean(d[i, i] < d[i, others])
    return out
