"""Figures a person would rather look at than numbers."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from gess.io import FILE_KIND, atomic_path
from gess.split import FIGURE_KIND


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_split_figure(embeddings: np.ndarray, ids, split, path: str | Path) -> Path:
    """2-D PCA projection of the embeddings, coloured by side of the generalized split."""
    plt = pyplot()
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
        fig.savefig(tmp, dpi=110, format="png", metadata={FILE_KIND: FIGURE_KIND})
    plt.close(fig)
    return Path(path)


def save_grid(columns: dict[str, np.ndarray], path: str | Path, row_labels: list[str] | None = None, cell: float = 0.9,
              cell_labels: dict[str, list[str]] | None = None) -> Path:
    """A grid of images: one column per named set (stimulus, structure, methods...), one row per sample.

    ``cell_labels`` puts a caption under each image of the named columns (e.g. its trust score).
    """
    plt = pyplot()
    names = list(columns)
    n = len(next(iter(columns.values())))
    cell_labels = cell_labels or {}
    height = cell + (0.18 if cell_labels else 0.0)
    fig, axes = plt.subplots(n, len(names), figsize=(cell * len(names) + 1.0, height * n + 0.4), squeeze=False)
    for j, name in enumerate(names):
        for i in range(n):
            ax = axes[i, j]
            img = np.asarray(columns[name][i])
            if img.dtype != np.uint8:
                img = np.clip(img * 255, 0, 255).astype(np.uint8)
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=8)
            if j == 0 and row_labels:
                ax.set_ylabel(row_labels[i], fontsize=6.5)
            if name in cell_labels:
                ax.set_xlabel(cell_labels[name][i], fontsize=6.5, labelpad=1)
    fig.tight_layout(pad=0.2)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(path)


def save_candidates_figure(stimuli: np.ndarray, candidates: list[np.ndarray], scores: list[list[float]],
                           chosen: list[int | None], row_labels: list[str], path: str | Path,
                           means: list[np.ndarray | None] | None = None) -> Path:
    """Best-of-N at a glance: per row a stimulus, then each candidate with its brain match; the kept one framed
    (``chosen[i]`` None: the candidates' mean ``means[i]`` was kept, shown framed after them)."""
    plt = pyplot()
    means = means or [None] * len(candidates)
    n_rows, n_cand = len(candidates), len(candidates[0])
    n_cols = n_cand + 1 + any(m is not None for m in means)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(0.95 * n_cols + 0.8, 1.12 * n_rows + 0.3), squeeze=False)
    for i in range(n_rows):
        shown = [stimuli[i]] + list(candidates[i]) + ([means[i]] if means[i] is not None else [])
        for j in range(n_cols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(shown):
                ax.axis("off")
                continue
            img = np.asarray(shown[j])
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=255)
            if j == 0:
                ax.set_ylabel(row_labels[i], fontsize=6.5)
                ax.set_xlabel("stimulus", fontsize=6.5, labelpad=1)
                continue
            is_mean = j == n_cand + 1
            kept = is_mean or (chosen[i] is not None and j - 1 == chosen[i])
            label = "mean" if is_mean else f"r {scores[i][j - 1]:+.3f}"
            ax.set_xlabel(label + (" kept" if kept else ""), fontsize=6.5, labelpad=1,
                          color="#c0392b" if kept else "black")
            for spine in ax.spines.values():
                spine.set_edgecolor("#c0392b" if kept else "#bbbbbb")
                spine.set_linewidth(2.5 if kept else 0.5)
    fig.tight_layout(pad=0.2)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(path)
