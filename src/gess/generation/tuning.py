"""Choose CS settings by validation on held-out folds of the TRAINING data (never the test set).

CS settings do not transfer across resolutions and spaces (docs/generation.md): the
low-pass cutoff, the share of substituted steps, the gain on the structural
reference and the floor on the gated pi_s are picked here by the pixel correlation of reconstructions of held-out training
stimuli, decoded by decoders fitted without them (``gess.folds.held_out_fold_outputs``).
"""
from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np

from gess.correlation import paired_correlation
from gess.generation.cs import TUNED_SETTINGS as TUNED_FIELDS  # the CSOptions fields the tuning sets
from gess.generation.cs import CSOptions
from gess.generation.generate import generate_images
from gess.generation.sampling import SamplingOptions
from gess.progress import progress_bar


def tune_cs(backend, fold_outputs: list[dict], lowpass_factors=None, fractions=None, sampling: SamplingOptions | None = None,
            method: str = "cs", min_structure_weights=None, base: CSOptions | None = None,
            reference_gains=None, progress: bool = False) -> tuple[CSOptions, float, list[dict]]:
    """Search over (lowpass_factor, fraction, reference_gain), then the floor on pi_s.

    The first floor is used while the grid of the other three is tried; the other floors
    are then tried with the best of them (a floor only raises the weight of the confident
    samples, so it is chosen last rather than multiplying the grid). A grid left None is
    ``base``'s (``CSOptions.tune_*``); the floors are ``base``'s for ``cs`` and 0 otherwise.
    ``fold_outputs``: per fold a dict with c_prime, c, s, pi_c of held-out training
    samples and their true images ``target`` (uint8, any size). Returns the best CS
    options, the best floor, and every tried setting with its mean pixel correlation.
    """
    sampling = sampling or SamplingOptions()
    base = base or CSOptions()
    lowpass_factors = base.tune_lowpass_factors if lowpass_factors is None else lowpass_factors
    fractions = base.tune_fractions if fractions is None else fractions
    reference_gains = base.tune_reference_gains if reference_gains is None else reference_gains
    if min_structure_weights is None:
        min_structure_weights = base.tune_min_structure_weights if method == "cs" else (0.0,)

    def tried(factor, fraction, gain, floor) -> dict:
        opts = replace(base, lowpass_factor=factor, fraction=fraction, reference_gain=gain, tune=False)
        scores = []
        for fold in fold_outputs:
            imgs = generate_images(backend, fold["c_prime"], fold["c"], fold["s"], fold["pi_c"], method,
                                   replace(sampling, min_structure_weight=floor), seeds=list(range(len(fold["c"]))),
                                   cs_options=opts)
            scores.append(fold_pixcorr(imgs, fold["target"]))
        return {"lowpass_factor": factor, "fraction": fraction, "reference_gain": gain, "min_structure_weight": floor,
                "pixcorr": float(np.mean(np.concatenate(scores)))}

    first, *others = min_structure_weights
    grid = list(itertools.product(lowpass_factors, fractions, reference_gains))
    results: list[dict] = []

    def settings():
        yield from ((*setting, first) for setting in grid)
        top = max(results, key=lambda r: r["pixcorr"])  # the floors are tried with the grid's best
        yield from ((top["lowpass_factor"], top["fraction"], top["reference_gain"], floor) for floor in others)

    for setting in progress_bar(settings(), "tuning CS settings", enabled=progress, total=len(grid) + len(others)):
        results.append(tried(*setting))
    best = max(results, key=lambda r: r["pixcorr"])
    chosen = replace(base, **{name: best[name] for name in TUNED_FIELDS}, tune=False)
    return chosen, best["min_structure_weight"], results


def fold_pixcorr(images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-image grey pixel correlation of uint8 reconstructions with their stimuli, at the stimuli's side."""
    from gess.data.images import resize_images

    grey = resize_images(images, targets.shape[1]).astype(np.float32).mean(-1)
    return paired_correlation(grey, targets.astype(np.float32).mean(-1))
