"""A trust score per reconstruction: does the reconstruction explain the brain response it came from?

pi_c is a gating weight (how far a sample lies from the training semantics), not a
promise that its reconstruction is good. :class:`BrainConsistency` scores a finished
reconstruction against the fMRI it was decoded from, with an encoding model fitted on
the training trials (image embedding -> voxels, ridge with per-voxel alpha):

    trust = share of training trials j for which corr(E(rec), fMRI) > corr(E(rec), fMRI_j)

over the voxels the encoding model predicts best on held-out folds. 1 means the
reconstruction's predicted response matches its own trial better than every training
trial's; 0.5 is chance (a reconstruction unrelated to the response). Needs no ground
truth, works for every method (and for a user's own reconstructions), and is checked
against per-sample accuracy in ``benchmarks/digit69_trust.py`` and in the demo's report.
"""
from __future__ import annotations

import numpy as np

from gess.decoding.ridge import Ridge, cv_folds
from gess.persistence import Component

DEFAULT_ALPHAS = (1e1, 1e2, 1e3, 1e4, 1e5)


class BrainConsistency(Component):
    """Encoding-model trust score of reconstructions (see the module docstring).

    Parameters
    ----------
    alphas : ridge grid (one alpha per voxel by leave-one-out error).
    n_voxels : at most this many voxels, the best predicted on held-out folds (and only those above 0).
    max_reference : at most this many training trials as the comparison set (a seeded subset).
    folds : folds of the held-out voxel selection.

    Attributes
    ----------
    voxels_ : indices of the voxels used; coef_, intercept_ : embedding -> those voxels;
    reference_ : (m, k) z-scored training responses compared against; voxel_r_ : their held-out correlations
    """

    def __init__(self, alphas=DEFAULT_ALPHAS, n_voxels: int = 1000, max_reference: int = 2000, folds: int = 5, seed: int = 0):
        self.alphas = alphas
        self.n_voxels = n_voxels
        self.max_reference = max_reference
        self.folds = folds
        self.seed = seed

    def fit(self, z: np.ndarray, embeddings: np.ndarray, groups=None) -> "BrainConsistency":
        """Fit on z-scored training voxels (n, v) and the embeddings (n, d) of each trial's image."""
        ridge = Ridge(alphas=list(self.alphas), device="cpu")  # on the CPU, whatever the process device
        ridge.fit(np.asarray(embeddings, np.float32), z, chunk=max(8192, z.shape[1]))
        held_out = ridge.cross_fitted(cv_folds(len(z), self.folds, groups))
        r = _columnwise_correlation(held_out, z)
        order = np.argsort(-r)[: self.n_voxels]
        self.voxels_ = np.sort(order[r[order] > 0]) if (r[order] > 0).any() else np.sort(order)
        self.voxel_r_ = r[self.voxels_].astype(np.float32)
        self.coef_ = ridge.coef_[:, self.voxels_].astype(np.float32)
        self.intercept_ = ridge.intercept_[self.voxels_].astype(np.float32)
        rows = np.arange(len(z))
        if len(rows) > self.max_reference:
            rows = np.sort(np.random.default_rng(self.seed).choice(len(z), self.max_reference, replace=False))
        self.reference_ = np.asarray(z[rows][:, self.voxels_], np.float32)
        return self

    def score(self, embeddings: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Trust in [0, 1] of reconstructions with these embeddings (n, d), decoded from z-scored voxels (n, v)."""
        predicted = _standardized_rows(np.asarray(embeddings, np.float32) @ self.coef_ + self.intercept_)
        own = (predicted * _standardized_rows(np.asarray(z, np.float32)[:, self.voxels_])).sum(1)
        others = predicted @ _standardized_rows(self.reference_).T
        return (others < own[:, None]).mean(1).astype(np.float32)

    def state(self) -> dict[str, np.ndarray]:
        return {"voxels": self.voxels_.astype(np.int64), "voxel_r": self.voxel_r_, "coef": self.coef_,
                "intercept": self.intercept_, "reference": self.reference_}

    def load_state(self, arrays: dict[str, np.ndarray]) -> "BrainConsistency":
        self.voxels_, self.voxel_r_ = np.asarray(arrays["voxels"]), arrays["voxel_r"]
        self.coef_, self.intercept_, self.reference_ = arrays["coef"], arrays["intercept"], arrays["reference"]
        return self



def _standardized_rows(x: np.ndarray) -> np.ndarray:
    """Rows centred and scaled so that a row product is a Pearson correlation."""
    x = x - x.mean(1, keepdims=True)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def _columnwise_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(0)
    b = b - b.mean(0)
    denom = np.sqrt((a ** 2).sum(0) * (b ** 2).sum(0))
    return np.divide((a * b).sum(0), denom, out=np.zeros(a.shape[1]), where=denom > 0)
