"""MindEye's top-1 retrieval: decoded embeddings against the stimuli's embeddings, among 300 at a time.

Draw ``candidates`` test samples at random (all of them when there are fewer), take the
cosine similarity of their decoded embeddings with their stimuli's embeddings (one encoder),
and count how often a decoded embedding's most similar stimulus is its own (image retrieval)
and a stimulus's most similar decoded embedding is its own (brain retrieval); average over
``repeats`` seeded draws. Chance is 1 / (the number drawn).
"""
from __future__ import annotations

import numpy as np

from gess.errors import GessInputError

CANDIDATES = 300
REPEATS = 30


def retrieval(decoded: np.ndarray, stimuli: np.ndarray, candidates: int = CANDIDATES, repeats: int = REPEATS,
              seed: int = 0) -> dict:
    """{"image", "brain", "chance", "candidates", "repeats"} for paired rows of decoded and stimulus embeddings."""
    decoded, stimuli = np.asarray(decoded, np.float64), np.asarray(stimuli, np.float64)
    if decoded.shape != stimuli.shape or decoded.ndim != 2:
        raise GessInputError(None, "embeddings", "decoded and stimulus embeddings of the same shape (n, d)",
                             f"{decoded.shape} and {stimuli.shape}")
    n = len(decoded)
    if n < 2:
        raise GessInputError(None, "embeddings", "at least 2 test stimuli for retrieval", str(n))
    k = min(candidates, n)
    a, b = _unit(decoded), _unit(stimuli)
    rng = np.random.default_rng(seed)
    image, brain = [], []
    for _ in range(repeats):
        rows = np.sort(rng.choice(n, k, replace=False))
        similarity = a[rows] @ b[rows].T
        image.append(np.mean(similarity.argmax(1) == np.arange(k)))
        brain.append(np.mean(similarity.argmax(0) == np.arange(k)))
    return {"image": float(np.mean(image)), "brain": float(np.mean(brain)), "chance": 1.0 / k, "candidates": k,
            "repeats": repeats}


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
