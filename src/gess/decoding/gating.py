"""M_g, the gate: a per-sample semantic confidence pi_c in [0, 1] (pi_s = 1 - pi_c).

Every gate computes a *typicality* score (higher = more like the training
semantics) and turns it into pi_c with training statistics only, so that one
sample's pi_c never depends on which other samples are decoded with it:

``calibration="conformal"`` (default)
    pi_c = (1 + #{reference scores <= score}) / (n_reference + 1): the conformal
    p-value of the sample among held-out training samples. Inside samples get
    pi_c spread uniformly over (0, 1]; samples less typical than every training
    sample get about 1 / (n + 1).
``calibration="minmax"``
    (score - min) / (max - min) over the reference scores, clipped to [0, 1]
    (closest to the paper's "normalised to [0, 1]").

Gates (``GATES``):

``prediction-knn`` (default)
    Cosine similarity of the centred decoded embedding c'' to its k nearest
    centred training embeddings. Reference: cross-fitted predictions of the
    training set (each decoded by a ridge that never saw it). How well each gate
    separates inside from outside test samples: benchmarks/gate_auroc.py and
    docs/decoding.md.
``voxel-knn``
    Mean Euclidean distance from the z-scored fMRI pattern to its k nearest
    training patterns, after PCA to the training data's main components. The
    reference is each training trial's distance to the others (leave one out).
    Reasoning: ridge shrinks predictions of unfamiliar stimuli toward the training
    mean, so their *decoded* embedding looks typical; the voxel pattern, before
    any regression, does not. Measured: near chance, noise dominates the distances.
``kde``
    The paper: PCA of the training embeddings to 20 dimensions, z-scored, Gaussian
    KDE with bandwidth 1.5, evaluated at the raw decoded embedding c''. Reference:
    leave-one-out log-densities of the training embeddings. Measured: at or
    below chance (ridge shrinks unfamiliar samples toward the training mean).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from gess.errors import GessInputError
from gess.persistence import Component

CALIBRATIONS = ("conformal", "minmax")


@dataclass
class GateInputs:
    """What a gate may look at for a set of samples.

    fmri : z-scored voxels (n, v); raw_embeddings : the ridge prediction c'' (n, d).
    """

    fmri: np.ndarray
    raw_embeddings: np.ndarray


class Gate(Component):
    """Base class: subclasses implement ``_fit_scorer`` and ``typicality`` and return reference scores.

    Persistence comes with the base (:class:`gess.persistence.Component`): the config is
    the name and the constructor's arguments, the state the fitted arrays (``*_``).
    """

    name = "gate"

    def __init__(self, calibration: str = "conformal"):
        self.calibration = calibration

    def fit(self, train: GateInputs, train_embeddings: np.ndarray, cross_fitted: GateInputs) -> "Gate":
        """Learn from training data; ``cross_fitted`` holds training samples decoded by models that never saw them."""
        if self.calibration not in CALIBRATIONS:
            raise GessInputError(None, "calibration", f"one of {CALIBRATIONS}", repr(self.calibration))
        self.reference_scores_ = np.sort(self._fit_scorer(train, np.asarray(train_embeddings, np.float32), cross_fitted))
        return self

    def typicality(self, inputs: GateInputs) -> np.ndarray:
        raise NotImplementedError

    def _fit_scorer(self, train: GateInputs, train_embeddings: np.ndarray, cross_fitted: GateInputs) -> np.ndarray:
        raise NotImplementedError

    def pi_c(self, inputs: GateInputs) -> np.ndarray:
        """Semantic confidence in [0, 1], one per sample, from training statistics only."""
        return calibrate(self.typicality(inputs), self.reference_scores_, self.calibration)

    def config(self) -> dict:
        return {"name": self.name, **super().config()}

    @classmethod
    def from_config(cls, config: dict) -> "Gate":
        """The gate ``config["name"]`` names, built with the rest of ``config``."""
        return make_gate(config.get("name", cls.name), **{k: v for k, v in config.items() if k != "name"})


def calibrate(scores: np.ndarray, reference_sorted: np.ndarray, calibration: str = "conformal") -> np.ndarray:
    """Map typicality scores to [0, 1] using sorted reference scores of training samples."""
    scores = np.asarray(scores, np.float64)
    if calibration == "conformal":
        below = np.searchsorted(reference_sorted, scores, side="right")
        return ((below + 1) / (len(reference_sorted) + 1)).astype(np.float32)
    lo, hi = float(reference_sorted[0]), float(reference_sorted[-1])
    return np.clip((scores - lo) / max(hi - lo, 1e-12), 0.0, 1.0).astype(np.float32)


def _pca_basis(X: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, components (k, v) and singular values of the data's PCA."""
    mean = X.mean(0)
    _, s, Vh = np.linalg.svd(X - mean, full_matrices=False)
    k = max(1, min(n_components, len(s)))
    return mean.astype(np.float32), Vh[:k].astype(np.float32), s[:k].astype(np.float32)


def _knn_mean_distance(queries: np.ndarray, points: np.ndarray, k: int, exclude_self: bool = False) -> np.ndarray:
    d = torch.cdist(torch.as_tensor(queries, dtype=torch.float32), torch.as_tensor(points, dtype=torch.float32))
    if exclude_self:
        d.fill_diagonal_(float("inf"))
    k = min(k, d.shape[1] - (1 if exclude_self else 0))
    return torch.topk(d, k, largest=False).values.mean(1).numpy()


class VoxelKNNGate(Gate):
    """Novelty of the voxel pattern: mean distance to the k nearest training patterns (see module doc)."""

    name = "voxel-knn"

    def __init__(self, n_neighbors: int = 10, n_components: int = 100, calibration: str = "conformal"):
        super().__init__(calibration)
        self.n_neighbors = n_neighbors
        self.n_components = n_components

    def _project(self, fmri: np.ndarray) -> np.ndarray:
        return (np.asarray(fmri, np.float32) - self.pca_mean_) @ self.pca_components_.T

    def _fit_scorer(self, train, train_embeddings, cross_fitted):
        self.pca_mean_, self.pca_components_, _ = _pca_basis(np.asarray(train.fmri, np.float32), self.n_components)
        self.train_points_ = self._project(train.fmri)
        return -_knn_mean_distance(self.train_points_, self.train_points_, self.n_neighbors, exclude_self=True)

    def typicality(self, inputs: GateInputs) -> np.ndarray:
        return -_knn_mean_distance(self._project(inputs.fmri), self.train_points_, self.n_neighbors)


class KDEGate(Gate):
    """The paper's gate: Gaussian KDE (bandwidth 1.5) on PCA-20, z-scored training embeddings."""

    name = "kde"

    def __init__(self, bandwidth: float = 1.5, n_components: int = 20, calibration: str = "conformal"):
        super().__init__(calibration)
        self.bandwidth = bandwidth
        self.n_components = n_components

    def _features(self, emb: np.ndarray) -> np.ndarray:
        z = (np.asarray(emb, np.float32) - self.pca_mean_) @ self.pca_components_.T
        return (z - self.feature_mean_) / self.feature_std_

    def _log_density(self, feats: np.ndarray, exclude_self: bool = False) -> np.ndarray:
        # log of the mean Gaussian kernel over training points (sklearn KernelDensity's definition)
        d2 = torch.cdist(torch.as_tensor(feats, dtype=torch.float64), torch.as_tensor(self.train_features_, dtype=torch.float64)) ** 2
        logk = -d2 / (2 * self.bandwidth**2)
        n = self.train_features_.shape[0]
        if exclude_self:
            logk.fill_diagonal_(-float("inf"))
            n -= 1
        dim = feats.shape[1]
        norm = -np.log(n) - 0.5 * dim * np.log(2 * np.pi * self.bandwidth**2)
        return (torch.logsumexp(logk, dim=1).numpy() + norm).astype(np.float64)

    def _fit_scorer(self, train, train_embeddings, cross_fitted):
        self.pca_mean_, self.pca_components_, _ = _pca_basis(train_embeddings, self.n_components)
        z = (train_embeddings - self.pca_mean_) @ self.pca_components_.T
        self.feature_mean_, self.feature_std_ = z.mean(0), np.maximum(z.std(0), 1e-8)
        self.train_features_ = ((z - self.feature_mean_) / self.feature_std_).astype(np.float32)
        return self._log_density(self.train_features_, exclude_self=True)

    def typicality(self, inputs: GateInputs) -> np.ndarray:
        return self._log_density(self._features(inputs.raw_embeddings))


class PredictionKNNGate(Gate):
    """Cosine similarity of the centred decoded embedding to its nearest centred training embeddings."""

    name = "prediction-knn"

    def __init__(self, n_neighbors: int = 10, calibration: str = "conformal"):
        super().__init__(calibration)
        self.n_neighbors = n_neighbors

    def _unit(self, emb: np.ndarray) -> np.ndarray:
        z = np.asarray(emb, np.float32) - self.embedding_mean_
        return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-8)

    def _fit_scorer(self, train, train_embeddings, cross_fitted):
        self.embedding_mean_ = train_embeddings.mean(0)
        self.train_units_ = self._unit(train_embeddings)
        return self.typicality(cross_fitted)

    def typicality(self, inputs: GateInputs) -> np.ndarray:
        sims = self._unit(inputs.raw_embeddings) @ self.train_units_.T
        k = min(self.n_neighbors, sims.shape[1])
        return np.sort(sims, axis=1)[:, -k:].mean(1)


GATES = {g.name: g for g in (PredictionKNNGate, KDEGate, VoxelKNNGate)}
GateName = Literal[tuple(GATES)]  # the closed set of gate names, for option validation
DEFAULT_GATE = "prediction-knn"


def make_gate(name: str = DEFAULT_GATE, **options) -> Gate:
    if name not in GATES:
        raise GessInputError(None, "gate", f"one of {', '.join(GATES)}", repr(name))
    return GATES[name](**options)
