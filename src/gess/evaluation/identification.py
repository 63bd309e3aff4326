"""Two-way identification: the paper's random-draw protocol and the all-pairs protocol of the NSD papers."""
from __future__ import annotations

import numpy as np

from gess.correlation import correlation_matrix, paired_correlation

__all__ = ["correlation_matrix", "paired_correlation", "distinct_stimuli", "two_way_all_pairs", "two_way_random"]


def distinct_stimuli(images: np.ndarray) -> np.ndarray:
    """(n, n) bool: True where two ground-truth images differ. An identical image is never an "other" candidate."""
    import hashlib

    keys = [hashlib.sha256(np.ascontiguousarray(im).tobytes()).digest() for im in images]
    return np.array([[a != b for b in keys] for a in keys])


def two_way_all_pairs(ground_truth_features: np.ndarray, reconstruction_features: np.ndarray,
                      distinct: np.ndarray | None = None) -> np.ndarray:
    """Per-sample all-pairs 2-way identification (MindEye): for reconstruction j, the fraction
    of other ground truths i != j with r(gt_i, rec_j) < r(gt_j, rec_j).

    ``distinct`` (from :func:`distinct_stimuli`) restricts the others to different images.
    """
    r = correlation_matrix(ground_truth_features, reconstruction_features)  # r[i, j] = r(gt_i, rec_j)
    n = len(r)
    others = ~np.eye(n, dtype=bool) if distinct is None else np.asarray(distinct, bool) & ~np.eye(n, dtype=bool)
    count = others.sum(0)
    wins = ((r < np.diag(r)[None, :]) & others).sum(0)
    return np.where(count > 0, wins / np.maximum(count, 1), np.nan)


def two_way_random(distances: np.ndarray, trials: int = 10, seed: int = 0, distinct: np.ndarray | None = None) -> np.ndarray:
    """The GESS paper's protocol on a distance matrix d[i, j] = d(rec_i, gt_j).

    For each reconstruction i draw ``trials`` other stimuli j != i (seeded; with
    ``distinct``, only stimuli whose image differs from i's); correct when
    d(rec_i, gt_i) < d(rec_i, gt_j). Returns the per-sample rate.
    """
    d = np.asarray(distances, np.float64)
    n = len(d)
    rng = np.random.default_rng(seed)
    out = np.full(n, np.nan)
    for i in range(n):
        pool = np.flatnonzero((np.arange(n) != i) & (True if distinct is None else np.asarray(distinct[i], bool)))
        if len(pool) == 0:
            continue
        if distinct is None:  # the historical draw, kept so that results do not move
            others = rng.integers(0, n - 1, size=trials)
            others[others >= i] += 1
        else:
            others = pool[rng.integers(0, len(pool), size=trials)]
        out[i] = np.mean(d[i, i] < d[i, others])
    return out
