"""Row-wise Pearson correlations: the one implementation that fold tuning (generation) and the metrics
(evaluation) both score with, so a setting chosen on the folds is chosen by the metric the user reads."""
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
