"""Does a score predict which reconstructions are good? Spearman's rho against per-sample accuracy.

Per-sample accuracy is exact all-pairs 2-way identification of each reconstruction
among the test set, on image embeddings (:func:`identification_per_sample`): the share
of other test stimuli j for which the reconstruction correlates more with its own
stimulus than with stimulus j (0.5 chance, 1 best).
"""
from __future__ import annotations

import numpy as np

from gess.evaluation.identification import distinct_stimuli, two_way_all_pairs


def identification_per_sample(ground_truth_embeddings: np.ndarray, reconstruction_embeddings: np.ndarray,
                              ground_truth_images: np.ndarray | None = None) -> np.ndarray:
    """(n,) all-pairs 2-way identification of each reconstruction among the n test stimuli."""
    distinct = distinct_stimuli(ground_truth_images) if ground_truth_images is not None else None
    return two_way_all_pairs(ground_truth_embeddings, reconstruction_embeddings, distinct)


def spearman(score: np.ndarray, accuracy: np.ndarray) -> dict:
    """Spearman's rho, its two-sided p-value and n (NaN where undefined)."""
    from scipy.stats import spearmanr

    score, accuracy = np.asarray(score, float), np.asarray(accuracy, float)
    ok = np.isfinite(score) & np.isfinite(accuracy)
    if ok.sum() < 3 or np.ptp(score[ok]) == 0 or np.ptp(accuracy[ok]) == 0:
        return {"rho": float("nan"), "p": float("nan"), "n": int(ok.sum())}
    result = spearmanr(score[ok], accuracy[ok])
    return {"rho": float(result[0]), "p": float(result[1]), "n": int(ok.sum())}


def describe(name: str, score_name: str, stats: dict, alpha: float = 0.05) -> str:
    """One sentence: does ``score_name`` predict the per-sample accuracy of ``name``'s reconstructions?"""
    rho, p, n = stats["rho"], stats["p"], stats["n"]
    if not np.isfinite(rho):
        return f"{name}: {score_name} vs accuracy undefined (n = {n} or a constant)."
    if p < alpha and rho > 0:
        verdict = "a higher score means a better reconstruction (significant)"
    elif p < alpha:
        verdict = "a higher score means a WORSE reconstruction (significant)"
    else:
        verdict = "no significant relation: the score does not tell good from bad reconstructions here"
    return f"{name}: Spearman's rho of {score_name} with accuracy {rho:+.2f} (p = {p:.2g}, n = {n}); {verdict}."
