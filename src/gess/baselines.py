"""The KNN baseline (paper 4.5): return the known image whose embedding is nearest the decoded one.

It looks excellent when test images have near-duplicates among the training
images (a random split) and collapses on the generalized split: that contrast is
the point. It is written like any other method so ``gess evaluate`` scores it the same way.
"""
from __future__ import annotations

import numpy as np
import torch


def knn_indices(decoded: np.ndarray, candidates: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """Index of the nearest candidate embedding for every decoded embedding."""
    q = torch.as_tensor(np.asarray(decoded, np.float32))
    c = torch.as_tensor(np.asarray(candidates, np.float32))
    if metric == "cosine":
        q = torch.nn.functional.normalize(q - c.mean(0), dim=1)
        c = torch.nn.functional.normalize(c - c.mean(0), dim=1)
        return (q @ c.T).argmax(1).numpy()
    return torch.cdist(q, c).argmin(1).numpy()


def knn_reconstruct(decoded: np.ndarray, candidate_embeddings: np.ndarray, candidate_images: np.ndarray,
                    metric: str = "cosine") -> tuple[np.ndarray, np.ndarray]:
    """(images of the nearest candidates, their indices)."""
    idx = knn_indices(decoded, candidate_embeddings, metric)
    return candidate_images[idx], idx
