"""A trust score per reconstruction: does the reconstruction explain the brain response it came from?

pi_c is a gating weight (how far a sample lies from the training semantics), not a
promise that its reconstruction is good. :class:`BrainConsistency` scores a finished
reconstruction against the fMRI it was decoded from, with an encoding model fitted on
the training trials (image features -> voxels, ridge with per-voxel alpha). Over the voxels
the encoding model predicts best on held-out folds, with r_j = corr(E(rec), fMRI_j) for the
training trials j and r = corr(E(rec), fMRI) for its own response:

    trust = Phi((r - mean_j r_j) / std_j r_j)

the share of training responses it explains worse than its own, read from a normal fit to
the r_j. 0.5 is chance (a reconstruction unrelated to the response); near 1 it matches its
own trial far better than any other. Unlike the empirical share of the r_j below r it has no
ceiling at 1, so reconstructions that beat every training trial are still ranked. Needs no
ground truth, works for every method (and for a user's own reconstructions), and is checked
against per-sample accuracy in ``benchmarks/digit69_trust.py`` and in the demo's report.
"""
from __future__ import annotations

import numpy as np
from scipy import special

from gess.correlation import paired_correlation, standardized_rows
from gess.decoding.encoding import DEFAULT_ALPHAS, block_standardization, held_out_voxel_correlation, pooled_structure
from gess.persistence import Component


FEATURES = ("auto", "embedding", "embedding+structure")
# written beside each trust score in a manifest: a re-run re-scores entries of an earlier definition (the
# empirical share, before 2026-12-03) instead of mixing the two in one folder
TRUST_DEFINITION = "normal-margin"


class BrainConsistency(Component):
    """Encoding-model trust score of reconstructions (see the module docstring).

    Parameters
    ----------
    alphas : ridge grid (one alpha per voxel by leave-one-out error).
    n_voxels : at most this many voxels, the best predicted on held-out folds (and only those above 0).
    max_reference : at most this many training trials as the comparison set (a seeded subset).
    folds : folds of the held-out voxel selection.
    features : what the encoding model sees: the image embedding, the embedding and the
        image's blurred pixels (early visual cortex answers to local structure), or
        ``auto``, the one whose best voxels are better predicted on held-out folds.

    Attributes
    ----------
    voxels_ : indices of the voxels used; coef_, intercept_ : features -> those voxels;
    feature_mean_, feature_scale_ : the standardisation of the features (each block weighs the same);
    uses_structure_ : whether the pixels are among the features;
    reference_ : (m, k) z-scored training responses compared against; voxel_r_ : their held-out correlations;
    feature_scores_ : the held-out accuracy of each feature set tried (mean r of its best voxels)
    """

    def __init__(self, alphas=DEFAULT_ALPHAS, n_voxels: int = 1000, max_reference: int = 2000, folds: int = 5,
                 seed: int = 0, features: str = "auto"):
        self.alphas = alphas
        self.n_voxels = n_voxels
        self.max_reference = max_reference
        self.folds = folds
        self.seed = seed
        self.features = features

    def fit(self, z: np.ndarray, embeddings: np.ndarray, groups=None, structure: np.ndarray | None = None) -> "BrainConsistency":
        """Fit on z-scored training voxels (n, v), the embeddings (n, d) of each trial's image and, optionally,
        its structural targets (n, S, S, C) (blurred pixels)."""
        if self.features not in FEATURES:
            raise ValueError(f"features must be one of {FEATURES}, got {self.features!r}")
        sets = {"embedding": (embeddings, None)}
        if structure is not None and self.features != "embedding":
            sets["embedding+structure"] = (embeddings, structure)
        if self.features != "auto":
            if self.features not in sets:
                raise ValueError(f"features={self.features!r} needs the structural targets")
            sets = {self.features: sets[self.features]}
        fits = {name: self._fit_one(z, *blocks, groups) for name, blocks in sets.items()}
        self.feature_scores_ = {name: fit["score"] for name, fit in fits.items()}
        best = fits[max(fits, key=lambda name: fits[name]["score"])]
        for key in ("voxels_", "voxel_r_", "coef_", "intercept_", "feature_mean_", "feature_scale_"):
            setattr(self, key, best[key])
        self.uses_structure_ = np.array(best["uses_structure"])
        rows = np.arange(len(z))
        if len(rows) > self.max_reference:
            rows = np.sort(np.random.default_rng(self.seed).choice(len(z), self.max_reference, replace=False))
        self.reference_ = np.asarray(z[rows][:, self.voxels_], np.float32)
        return self

    def _fit_one(self, z, embeddings, structure, groups) -> dict:
        """One feature set: ridge to every voxel, the best voxels on held-out folds, their mean r as its score."""
        blocks = [np.asarray(embeddings, np.float32)] + ([pooled_structure(structure)] if structure is not None else [])
        mean, scale = block_standardization(blocks)
        x = (np.concatenate(blocks, axis=1) - mean) / scale
        ridge, r = held_out_voxel_correlation(x, z, self.alphas, self.folds, groups)
        order = np.argsort(-r)[: self.n_voxels]
        voxels = np.sort(order[r[order] > 0]) if (r[order] > 0).any() else np.sort(order)
        return {"voxels_": voxels, "voxel_r_": r[voxels].astype(np.float32), "coef_": ridge.coef_[:, voxels].astype(np.float32),
                "intercept_": ridge.intercept_[voxels].astype(np.float32), "feature_mean_": mean, "feature_scale_": scale,
                "uses_structure": structure is not None, "score": float(np.mean(r[order]))}

    def predicted(self, embeddings: np.ndarray, structure: np.ndarray | None = None, dtype=np.float32) -> np.ndarray:
        """The encoding model's response (n, k) on its voxels to images with these features."""
        blocks = [np.asarray(embeddings, dtype)]
        if bool(self.uses_structure_):
            if structure is None:
                raise ValueError("this trust model also reads the images' structural targets: pass structure")
            blocks.append(pooled_structure(structure).astype(dtype))
        x = (np.concatenate(blocks, axis=1) - self.feature_mean_) / self.feature_scale_
        return x @ self.coef_.astype(dtype) + self.intercept_

    def match(self, embeddings: np.ndarray, z: np.ndarray, structure: np.ndarray | None = None) -> np.ndarray:
        """Pearson r of each image's predicted response with its own z-scored response (n, v)."""
        # in float64, rounded once: float32 sums and products depend on how many rows share a call (BLAS picks
        # other kernels for one row), and best-of-N must keep the same candidate whatever the batch
        predicted = self.predicted(embeddings, structure, np.float64)
        return paired_correlation(predicted, np.asarray(z, np.float64)[:, self.voxels_]).astype(np.float32)

    def score(self, embeddings: np.ndarray, z: np.ndarray, structure: np.ndarray | None = None) -> np.ndarray:
        """Trust in [0, 1] of reconstructions with these features, decoded from z-scored voxels (n, v)."""
        return special.ndtr(self.margin(embeddings, z, structure))

    def margin(self, embeddings: np.ndarray, z: np.ndarray, structure: np.ndarray | None = None) -> np.ndarray:
        """How far each image's match with its own response lies above its matches with the training trials,
        in their standard deviations (float64, like :meth:`match`, so a row scores the same in any batch)."""
        predicted = standardized_rows(self.predicted(embeddings, structure, np.float64))
        own = (predicted * standardized_rows(np.asarray(z, np.float64)[:, self.voxels_])).sum(1)
        others = predicted @ standardized_rows(np.asarray(self.reference_, np.float64)).T
        spread = np.maximum(others.std(1), np.finfo(np.float64).tiny)
        return (own - others.mean(1)) / spread

    def state(self) -> dict[str, np.ndarray]:
        return {"voxels": self.voxels_.astype(np.int64), "voxel_r": self.voxel_r_, "coef": self.coef_,
                "intercept": self.intercept_, "reference": self.reference_, "feature_mean": self.feature_mean_,
                "feature_scale": self.feature_scale_, "uses_structure": np.asarray(self.uses_structure_, np.uint8)}

    def load_state(self, arrays: dict[str, np.ndarray]) -> "BrainConsistency":
        self.voxels_, self.voxel_r_ = np.asarray(arrays["voxels"]), arrays["voxel_r"]
        self.coef_, self.intercept_, self.reference_ = arrays["coef"], arrays["intercept"], arrays["reference"]
        dim = self.coef_.shape[0]  # models saved before the structural features: the embedding alone, raw
        self.feature_mean_ = arrays.get("feature_mean", np.zeros(dim, np.float32))
        self.feature_scale_ = arrays.get("feature_scale", np.ones(dim, np.float32))
        self.uses_structure_ = np.array(bool(arrays.get("uses_structure", np.array(0))))
        return self
