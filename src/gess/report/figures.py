"""Figures a person would rather look at than numbers."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from gess.io import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_split_figure(embeddings: np.ndarray, ids, split, path: str | Path) -> Path:
    """2-D PCA projection of the embeddings, coloured by side of the generalized split."""
    plt = _pyplot()
    x = embeddings - embeddings.mean(0)
    _, _, vh = np.linalg.svd(x, full_matrices=False)
    xy = x @ vh[:2].T
    test = set(split.test)
    is_test = np.array([str(i) in test for i in ids])
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(*xy[~is_test].T, s=8, c="#1f77b4", label=f"train ({(~is_test).sum()})", alpha=0.7)
    ax.scatter(*xy[is_test].T, s=8, c="#d62728", label=f"test ({is_test.sum()})", alpha=0.7)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(f"generalized split ({split.method}, {split.params.get('n_clusters')} clusters)")
    ax.legend(loc="best", frameon=False)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(path)
