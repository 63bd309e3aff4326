"""Encoding models (image features -> voxels) and the voxels they predict well, shared by the gate (M_g),
the trust score and M_s's voxel selection.

Every encoding model here is a ridge with one alpha per voxel (leave-one-out error over ``DEFAULT_ALPHAS``),
and a voxel is judged by the correlation of its cross-fitted prediction (each fold predicted by a ridge that
never saw it) with its measured z-scored response.
"""
from __future__ import annotations

import numpy as np

from gess.correlation import columnwise_correlation, paired_correlation
from gess.decoding.ridge import Ridge, cv_folds

DEFAULT_ALPHAS = (1e1, 1e2, 1e3, 1e4, 1e5)
STRUCTURE_SIDE = 16  # the structural features are pooled to at most this side (early visual cortex is coarse in fMRI)


def held_out_voxel_correlation(x: np.ndarray, z: np.ndarray, alphas=DEFAULT_ALPHAS, folds: int = 5,
                               groups=None) -> tuple[Ridge, np.ndarray]:
    """Ridge from features ``x`` (n, f) to every z-scored voxel of ``z`` (n, v), fitted on all n, and each voxel's
    held-out correlation (v,) over ``folds`` folds that never split a group (one stimulus's repeats)."""
    ridge = Ridge(alphas=list(alphas), device="cpu").fit(x, z, chunk=max(8192, z.shape[1]))  # CPU, whatever the process device
    return ridge, columnwise_correlation(ridge.cross_fitted(cv_folds(len(z), folds, groups)), z)


def structural_voxels(z: np.ndarray, structure: np.ndarray, n_voxels: int, folds: int = 5, groups=None,
                      ranked: bool = False) -> np.ndarray:
    """The ``n_voxels`` voxels (sorted indices; ``ranked``: best first) whose response an encoding model of the
    structural targets (pooled as :func:`pooled_structure`) predicts best on held-out folds of these trials."""
    features = pooled_structure(structure)
    mean, scale = block_standardization([features])
    _, r = held_out_voxel_correlation((features - mean) / scale, z, folds=folds, groups=groups)
    best = np.argsort(-r, kind="stable")[:n_voxels]
    return best if ranked else np.sort(best)


def pooled_structure(structure: np.ndarray) -> np.ndarray:
    """Structural targets (n, S, S, C) as features: block means at most STRUCTURE_SIDE px a side, flattened."""
    x = np.asarray(structure, np.float32)
    if x.ndim != 4:
        return x.reshape(len(x), -1)
    side = x.shape[1]
    factor = max(1, -(-side // STRUCTURE_SIDE))
    if factor > 1:
        crop = side - side % factor
        x = x[:, :crop, :crop].reshape(len(x), crop // factor, factor, crop // factor, factor, x.shape[-1]).mean((2, 4))
    return x.reshape(len(x), -1)


def block_standardization(blocks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature means and per-block scales that give every block the same total variance (one alpha fits all)."""
    means, scales = [], []
    for block in blocks:
        mean = block.mean(0)
        total = float(((block - mean) ** 2).sum(1).mean())
        means.append(mean)
        scales.append(np.full(block.shape[1], max(np.sqrt(total), 1e-6), np.float32))
    return np.concatenate(means).astype(np.float32), np.concatenate(scales)


VOXEL_COUNT_GRID = (100, 200, 500, 1000, 2000, 5000)  # and every voxel: what ``structural_voxels="auto"`` tries
STRUCTURAL_ALPHA_GRID = (10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)
RBF_GAMMA_GRID = (0.1, 0.3, 1.0)  # per voxel (RBFKernelRidge's scale): the kernel's width in z-scored voxels
RBF_ALPHA_GRID = (0.003, 0.01, 0.03, 0.1, 0.3)
KERNEL_MAX_TRIALS = 4000  # auto tries the RBF kernel up to this many training trials (it keeps them all)
SELECTION_TRIALS = 2000  # the selection scores at most this many trials (a seeded subset of whole stimuli)


def chosen_structural_selection(z: np.ndarray, structure: np.ndarray, folds: int = 5, groups=None,
                                voxel_grid=VOXEL_COUNT_GRID, alphas=STRUCTURAL_ALPHA_GRID,
                                max_trials: int = SELECTION_TRIALS, seed: int = 0, kernels=("linear",),
                                rbf_gammas=RBF_GAMMA_GRID, rbf_alphas=RBF_ALPHA_GRID) -> dict:
    """The voxel count (None: every voxel), kernel and alpha with which M_s decodes held-out training trials best.

    Nested, so the choice is not biased towards the voxels that happened to fit: on each of ``folds`` folds
    (never splitting a group) the voxels are ranked by :func:`structural_voxels` on the fitting trials alone,
    then a ridge on the best k of them decodes the held-out trials for every k of ``voxel_grid`` (below the
    voxel count) and every voxel, at every alpha; the score is the mean per-trial Pearson correlation of the
    decoded structural targets with the true ones. At most ``max_trials`` trials take part (a seeded subset
    of whole groups), which bounds the cost at NSD's size. ``kernels`` names the decoders compared: ``"linear"``
    (ridge at every alpha of ``alphas``) and ``"rbf"`` (:class:`~gess.decoding.ridge.RBFKernelRidge` at every
    gamma of ``rbf_gammas`` and alpha of ``rbf_alphas``); a tie keeps the linear ridge. Returns {"voxels",
    "kernel", "alpha", "gamma" (None for linear), "scores" (linear: count -> alpha -> score), "rbf_scores"
    (count -> gamma -> alpha -> score, when rbf was tried), "trials"}.
    """
    import torch

    from gess.decoding.ridge import RidgeDecomposition

    n, v = z.shape
    groups = np.arange(n) if groups is None else np.asarray(groups)
    rows = _group_subset(groups, max_trials, seed)
    z, targets, groups = z[rows], np.asarray(structure, np.float32)[rows], groups[rows]
    flat = targets.reshape(len(rows), -1).astype(np.float64)
    counts = [k for k in sorted(set(int(k) for k in voxel_grid)) if k < v] + [None]
    alphas = [float(a) for a in alphas] if "linear" in kernels else []
    rbf = [(float(g), float(a)) for g in rbf_gammas for a in rbf_alphas] if "rbf" in kernels else []
    hits = {(k, a): [] for k in counts for a in alphas}
    rbf_hits = {(k, g, a): [] for k in counts for g, a in rbf}
    for held in cv_folds(len(rows), folds, groups):
        fit = np.setdiff1d(np.arange(len(rows)), held)
        order = structural_voxels(z[fit], targets[fit], v, folds, groups[fit], ranked=True)
        for k in counts:
            voxels = np.sort(order[:k]) if k is not None else slice(None)
            if rbf:
                for (g, a), decoded in _rbf_decodes(z[fit][:, voxels], z[held][:, voxels], flat[fit], rbf).items():
                    rbf_hits[k, g, a].append(paired_correlation(decoded, flat[held], dtype=None))
            if not alphas:
                continue
            dec = RidgeDecomposition(np.asarray(z[fit][:, voxels], np.float64), device="cpu", dtype="float64")
            projected = dec.project(flat[fit])
            new = torch.as_tensor(np.asarray(z[held][:, voxels], np.float64)) - dec.x_mean
            # the held-out decodes in the decomposition's basis: no (voxels x targets) weights are formed
            if dec.form == "kernel":
                basis = new @ (dec.X - dec.x_mean).T @ dec.U
            else:
                basis = (new @ dec.V) * dec.lam.sqrt()
            for a in alphas:
                decoded = ((basis / (dec.lam + a)) @ projected.UtY + projected.y_mean).numpy()
                hits[k, a].append(paired_correlation(decoded, flat[held], dtype=None))
    name = lambda count: "all" if count is None else str(count)  # noqa: E731
    scores = {(k, a): float(np.mean(np.concatenate(r))) for (k, a), r in hits.items()}
    rbf_scores = {(k, g, a): float(np.mean(np.concatenate(r))) for (k, g, a), r in rbf_hits.items()}
    # a tie keeps every voxel, then the linear ridge
    candidates = [(s, k is None, 1, k, "linear", a, None) for (k, a), s in scores.items()]
    candidates += [(s, k is None, 0, k, "rbf", a, g) for (k, g, a), s in rbf_scores.items()]
    _, _, _, k, kernel, a, g = max(candidates, key=lambda c: c[:3])
    record = {"voxels": k, "kernel": kernel, "alpha": a, "gamma": g, "trials": int(len(rows)),
              "scores": {name(kk): {f"{aa:g}": s for (k2, aa), s in scores.items() if k2 == kk} for kk in counts}
              if alphas else {}}
    if rbf:
        record["rbf_scores"] = {name(kk): {f"{gg:g}": {f"{aa:g}": s for (k2, g2, aa), s in rbf_scores.items()
                                                        if k2 == kk and g2 == gg} for gg in dict.fromkeys(g for g, _ in rbf)}
                                for kk in counts}
    return record



def _rbf_decodes(fit: np.ndarray, new: np.ndarray, targets: np.ndarray, settings) -> dict:
    """Held-out decodes of :class:`~gess.decoding.ridge.RBFKernelRidge` for every (gamma, alpha) of
    ``settings``: one eigendecomposition of the training kernel per gamma serves all its alphas."""
    fit, new = np.asarray(fit, np.float64), np.asarray(new, np.float64)
    p = max(1, fit.shape[1])
    squared = (fit ** 2).sum(1)
    train_d = np.maximum(squared[:, None] + squared[None] - 2 * fit @ fit.T, 0) / p
    new_d = np.maximum((new ** 2).sum(1)[:, None] + squared[None] - 2 * new @ fit.T, 0) / p
    mean = targets.mean(0)
    out = {}
    for gamma in dict.fromkeys(g for g, _ in settings):
        lam, vectors = np.linalg.eigh(np.exp(-gamma * train_d))
        lam = np.maximum(lam, 0)
        projected, across = vectors.T @ (targets - mean), np.exp(-gamma * new_d) @ vectors
        for g, alpha in settings:
            if g == gamma:
                out[g, alpha] = (across / (lam + alpha)) @ projected + mean
    return out


def _group_subset(groups: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Every trial, or (sorted) those of a seeded subset of whole groups with at least ``limit`` trials in all."""
    if len(groups) <= limit:
        return np.arange(len(groups))
    order = list(dict.fromkeys(groups.tolist()))
    taken, count = [], 0
    sizes = {g: c for g, c in zip(*np.unique(groups, return_counts=True))}
    for i in np.random.default_rng(seed).permutation(len(order)):
        taken.append(order[i])
        count += sizes[order[i]]
        if count >= limit:
            break
    return np.flatnonzero(np.isin(groups, taken))
