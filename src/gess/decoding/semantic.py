"""M_c, the semantic module: ridge to embeddings, momentum alignment, re-projection onto the manifold."""
from __future__ import annotations

import numpy as np
import torch

from gess.decoding.ridge import Ridge
from gess.errors import GessInputError

ALIGNMENTS = ("batch", "reference", "none")
REPROJECTIONS = ("released", "lle", "none")


def momentum_align(pred: np.ndarray, target_mean: np.ndarray, target_std: np.ndarray,
                   source_mean: np.ndarray | None = None, source_std: np.ndarray | None = None) -> np.ndarray:
    """First-order momentum alignment: z-score ``pred`` per dimension, then give it the target's mean/std.

    With no source statistics the predictions' own (batch) statistics are used,
    as in the released code (``alignB2A``).
    """
    if source_mean is None:
        if len(pred) < 2:
            raise GessInputError(None, "alignment", "at least 2 samples for batch momentum alignment "
                                 "(use alignment='reference' to decode single samples)", f"{len(pred)}")
        source_mean, source_std = pred.mean(0), pred.std(0)
    z = (pred - source_mean) / np.maximum(source_std, 1e-8)
    return (z * target_std + target_mean).astype(np.float32)


def nearest_neighbours(queries: np.ndarray, points: np.ndarray, k: int) -> np.ndarray:
    """Indices (n, k) of the k nearest points (Euclidean), nearest first."""
    q = torch.as_tensor(queries, dtype=torch.float32)
    p = torch.as_tensor(points, dtype=torch.float32)
    d = torch.cdist(q, p)
    return torch.topk(d, k=min(k, len(points)), largest=False).indices.numpy()


def reproject_released(query: np.ndarray, neighbours: np.ndarray, regularization: float) -> np.ndarray:
    """Affine weights (sum 1) of the released code: w0 = 1 - sum x, w_k = x_k, penalty (reg * sum x)^2."""
    c0 = neighbours[0]
    D = (neighbours[1:] - c0).T.astype(np.float64)  # (d, K-1)
    if D.shape[1] == 0:
        return np.ones(1)
    ones = np.ones((D.shape[1], 1))
    A = D.T @ D + regularization**2 * (ones @ ones.T) + 1e-10 * np.eye(D.shape[1])
    x = np.linalg.solve(A, D.T @ (query - c0))
    return np.concatenate([[1.0 - x.sum()], x])


def reproject_lle(query: np.ndarray, neighbours: np.ndarray, regularization: float) -> np.ndarray:
    """Locally-linear-embedding weights: solve G w = 1 with a ridge on the local Gram matrix, normalise."""
    Z = (neighbours - query).astype(np.float64)
    G = Z @ Z.T
    G += np.eye(len(G)) * regularization * max(np.trace(G), 1e-12) / len(G)
    w = np.linalg.solve(G, np.ones(len(G)))
    return w / w.sum()


class SemanticDecoder:
    """M_c: fMRI -> image embedding, then onto the manifold of known embeddings.

    Parameters
    ----------
    alpha : ridge regularisation (paper: 1000).
    alphas : grid; each embedding dimension gets its own alpha by GCV (overrides ``alpha``).
    alignment : "batch" (released: z-score predictions with their own statistics,
        give them those of C_all), "reference" (use the statistics of cross-fitted
        training predictions instead, so each sample is decoded independently of
        the others), or "none".
    n_neighbors : K of the re-projection (released: 5).
    reprojection : "released" (affine weights, penalty toward the nearest
        neighbour), "lle" (ridge on the local Gram matrix) or "none".
    regularization : 10 for "released" (the released value), relative ridge
        (e.g. 1e-3) for "lle".
    w_c : c = w_c * reprojected + (1 - w_c) * c' (released default 1).

    Attributes
    ----------
    ridge_ : the fitted :class:`Ridge`
    manifold_ : (m, d) C_all = C_tr and augmentation embeddings
    manifold_mean_, manifold_std_ : statistics of C_all
    reference_mean_, reference_std_ : statistics of cross-fitted training predictions
    """

    def __init__(self, alpha: float = 1000.0, alphas=None, alignment: str = "batch", n_neighbors: int = 5,
                 reprojection: str = "released", regularization: float | None = None, w_c: float = 1.0):
        self.alpha = alpha
        self.alphas = alphas
        self.alignment = alignment
        self.n_neighbors = n_neighbors
        self.reprojection = reprojection
        self.regularization = regularization
        self.w_c = w_c

    def fit(self, fmri: np.ndarray, embeddings: np.ndarray, augment_embeddings: np.ndarray | None = None,
            cross_fitted: np.ndarray | None = None, ridge: Ridge | None = None) -> "SemanticDecoder":
        """Fit on z-scored fMRI; ``ridge``, when given, is an already fitted voxels -> embeddings ridge."""
        if self.alignment not in ALIGNMENTS:
            raise GessInputError(None, "alignment", f"one of {ALIGNMENTS}", repr(self.alignment))
        if self.reprojection not in REPROJECTIONS:
            raise GessInputError(None, "reprojection", f"one of {REPROJECTIONS}", repr(self.reprojection))
        self.ridge_ = ridge if ridge is not None else Ridge(self.alpha, self.alphas).fit(fmri, embeddings)
        parts = [np.asarray(embeddings, np.float32)]
        if augment_embeddings is not None and len(augment_embeddings):
            parts.append(np.asarray(augment_embeddings, np.float32))
        self.manifold_ = np.concatenate(parts)
        self.manifold_mean_ = self.manifold_.mean(0)
        self.manifold_std_ = self.manifold_.std(0)
        if cross_fitted is not None:
            self.reference_mean_ = cross_fitted.mean(0).astype(np.float32)
            self.reference_std_ = cross_fitted.std(0).astype(np.float32)
        else:
            self.reference_mean_ = self.reference_std_ = None
        return self

    def state(self) -> dict[str, np.ndarray]:
        """The fitted arrays: the ridge, the manifold and (when fitted with them) the reference statistics."""
        arrays = {"coef": self.ridge_.coef_, "intercept": self.ridge_.intercept_, "manifold": self.manifold_}
        if self.reference_mean_ is not None:
            arrays.update(reference_mean=self.reference_mean_, reference_std=self.reference_std_)
        return arrays

    def load_state(self, arrays: dict[str, np.ndarray], alpha) -> "SemanticDecoder":
        """The fitted decoder from :meth:`state` and the alpha its ridge used."""
        self.ridge_ = Ridge.from_arrays(arrays["coef"], arrays["intercept"], alpha)
        self.manifold_ = arrays["manifold"]
        self.manifold_mean_, self.manifold_std_ = self.manifold_.mean(0), self.manifold_.std(0)
        self.reference_mean_, self.reference_std_ = arrays.get("reference_mean"), arrays.get("reference_std")
        return self

    def predict_raw(self, fmri: np.ndarray) -> np.ndarray:
        """c'': the ridge prediction."""
        return self.ridge_.predict(fmri)

    def align(self, raw: np.ndarray) -> np.ndarray:
        """c': the prediction with the statistics of C_all."""
        if self.alignment == "none":
            return raw.astype(np.float32)
        if self.alignment == "reference":
            if self.reference_mean_ is None:
                raise GessInputError(None, "alignment", "cross-fitted training predictions for alignment='reference'", "none given to fit")
            return momentum_align(raw, self.manifold_mean_, self.manifold_std_, self.reference_mean_, self.reference_std_)
        return momentum_align(raw, self.manifold_mean_, self.manifold_std_)

    def reproject(self, aligned: np.ndarray) -> np.ndarray:
        """c: the aligned prediction re-projected onto its K nearest manifold points."""
        if self.reprojection == "none":
            return aligned.astype(np.float32)
        solver = reproject_released if self.reprojection == "released" else reproject_lle
        reg = self.regularization if self.regularization is not None else (10.0 if self.reprojection == "released" else 1e-3)
        idx = nearest_neighbours(aligned, self.manifold_, self.n_neighbors)
        out = np.empty_like(aligned, dtype=np.float32)
        for i, q in enumerate(aligned.astype(np.float64)):
            nb = self.manifold_[idx[i]].astype(np.float64)
            w = solver(q, nb, reg)
            out[i] = self.w_c * (w @ nb) + (1.0 - self.w_c) * q
        return out

    def decode(self, fmri: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (c'', c', c)."""
        raw = self.predict_raw(fmri)
        aligned = self.align(raw)
        return raw, aligned, self.reproject(aligned)
