"""Held-out folds of the TRAINING stimuli, and the settings chosen on them (the test set never enters)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from gess.api import candidate_scores, decode, fit, test_fmri
from gess.cache import cache_dir, fingerprint
from gess.data.dataset import Dataset, Split
from gess.data.extra import ExtraImages
from gess.decoding import GESSDecoder, StructuralSpace
from gess.featurecache import encoder_of
from gess.generation.generate import generate_images
from gess.generation.sampling import candidate_mean, candidate_seed
from gess.generation.tuning import TUNED_FIELDS, fold_pixcorr, tune_cs
from gess.io import read_json, write_json
from gess.progress import log, progress_bar


def held_out_fold_outputs(decoder: GESSDecoder, train: Split, folds: int = 5, seed: int = 0, autoencoder=None,
                          extra_images: ExtraImages | np.ndarray | str | None = None, keep_models: bool = False) -> list[dict]:
    """Decoders refitted without each fold of the TRAINING stimuli, decoding that fold.

    Only ``train`` is read: the test set never enters tuning (a self-supervised M_s takes
    the held-out fold's fMRI as its unpaired fMRI, and the extra images it was fitted
    with, ``extra_images`` or the source its metadata records). Each fold's dict holds
    c_prime, c, s, pi_c of its held-out stimuli, their images (``target``) and ids; with
    ``keep_models`` also the fold's fitted decoders (``decoder``) and the held-out fMRI (``fmri``).
    """
    encoder = encoder_of(decoder.encoder_)
    space = StructuralSpace.from_config(decoder.structure_space_ or {"size": 64}, autoencoder)
    extra = _fitted_extra_images(decoder, extra_images)
    outputs = []
    n = len(train.stimulus_ids)
    for held in np.array_split(np.random.default_rng(seed).permutation(n), min(folds, n)):
        keep = np.setdiff1d(np.arange(n), held)
        fitting, heldout = train.subset(train.stimulus_ids[keep]), train.subset(train.stimulus_ids[held])
        fold = Dataset(fitting, heldout, name="training fold")
        # the extra images less the held-out stimuli (a training stimulus may be among them, e.g. in MNIST)
        fold_extra = None if extra is None else extra.without_copies_of(heldout.images)
        model = fit(fold, encoder, space=space, extra_images=fold_extra, **decoder.get_params())
        d, ids = decode(model, fold)
        lookup = {s: i for i, s in enumerate(heldout.stimulus_ids)}
        outputs.append({"c_prime": d.c_prime, "c": d.c, "s": d.s, "pi_c": d.pi_c, "stimulus_ids": ids,
                        "target": heldout.images[[lookup[s] for s in ids]]})
        if keep_models:
            outputs[-1].update(decoder=model, fmri=test_fmri(fold))
    return outputs


def _fitted_extra_images(decoder: GESSDecoder, given) -> ExtraImages | None:
    """The extra images a self-supervised M_s learnt from: those given, else the source its metadata records."""
    if decoder.structural_decoder != "self-supervised":
        return None
    recorded = decoder.metadata_.get("self_supervised_data", {}).get("extra_images")
    return ExtraImages.coerce(given if given is not None else recorded)


def tune_cs_on_training_folds(decoder: GESSDecoder, train: Split, backend, method: str, sampling, cs, console=None,
                              fold_outputs=None):
    """CS settings chosen by pixel correlation on held-out training folds; cached by content.

    Returns (CSOptions with the chosen low-pass factor, share of steps and reference gain, a record
    with the chosen floor on pi_s and every setting tried).
    """
    key = _tuning_key("cs-tuning", decoder, train, backend, method, sampling, cs.to_dict(),
                      unread=("candidate_tuning_stimuli",))
    path = cache_dir() / "cs-tuning" / f"{key}.json"
    if path.is_file():
        record = read_json(path)
    else:
        log(console, f"tuning CS ({method}) on {cs.tune_folds} held-out folds of the training data")
        folds = fold_outputs() if fold_outputs else held_out_fold_outputs(decoder, train, cs.tune_folds, autoencoder=backend)
        folds = _scored_subsets(folds, cs.tune_stimuli)
        best, floor, grid = tune_cs(backend, folds, sampling=sampling, method=method, base=cs,  # cs's tuning grids
                                    progress=console is not None)
        record = {**{name: getattr(best, name) for name in TUNED_FIELDS}, "min_structure_weight": floor,
                  "folds": cs.tune_folds, "stimuli_scored": int(sum(len(fold["c"]) for fold in folds)), "grid": grid,
                  "tuned_on": [str(s) for s in train.stimulus_ids]}
        write_json(path, record)
    log(console, f"CS chosen on training folds: low-pass x{record['lowpass_factor']}, fraction {record['fraction']}, "
                 f"reference gain {record['reference_gain']}, floor {record['min_structure_weight']}")
    return replace(cs, **{name: record[name] for name in TUNED_FIELDS}), record


def _tuning_key(name: str, decoder: GESSDecoder, train: Split, backend, method: str, sampling, *more,
                unread: tuple[str, ...] = ()) -> str:
    """A tuning's cache key: the decoders, the training data, the generator, the method and the sampling settings
    (less those that the tunings themselves set, and the ``unread`` ones this tuning never reads)."""
    blank = dict.fromkeys(("candidates", "tune_candidates", "candidate_grid", "candidate_tolerance", *unread))
    # the reductions, added later, are left out rather than blanked: tunings cached before them stay valid
    settings = {k: v for k, v in sampling.to_dict().items() if k not in ("candidate_reduction", "candidate_reductions")}
    return fingerprint(name, decoder.metadata_.get("fingerprint") or decoder.get_params(), train.fmri, train.images,
                       backend.config(), method, {**settings, **blank}, *more)


def tune_candidates_on_training_folds(decoder: GESSDecoder, train: Split, backend, method: str, sampling, cs, gg=None,
                                      encoder=None, folds: int = 5, console=None,
                                      fold_outputs=None) -> tuple[int, str, dict]:
    """The number of candidates, and what is kept of them, chosen on held-out training folds; cached by content.

    Every held-out training stimulus gets ``max(sampling.candidate_grid)`` candidates (the seeds of
    :func:`~gess.generation.sampling.candidate_seed`, so the first N are what N candidates would draw); for
    each reduction of ``sampling.candidate_reductions`` and each N, what it keeps of the first N (best: its
    fold's encoding model's pick by brain match; mean: their pixelwise mean) is scored by its pixel correlation
    with the stimulus, averaged per (reduction, N). :func:`choose_candidate_setting` picks the smallest N within
    ``sampling.candidate_tolerance`` of the best: candidates that buy less than that are not worth their time.
    ``fold_outputs``: a callable returning :func:`held_out_fold_outputs` with ``keep_models`` (shared with the
    CS tuning so the folds are fitted once). Returns (N, reduction, a record with every setting's score).
    """
    grid = sorted(set(sampling.candidate_grid))
    reductions = list(dict.fromkeys(sampling.candidate_reductions))
    key = _tuning_key("candidate-tuning", decoder, train, backend, method, sampling, cs.to_dict(), grid,
                      sampling.candidate_tolerance, folds, *([reductions] if reductions != ["best"] else []))
    path = cache_dir() / "candidate-tuning" / f"{key}.json"
    if path.is_file():
        record = read_json(path)
    else:
        log(console, f"choosing the number of candidates ({method}) on {folds} held-out folds of the training data")
        outputs = fold_outputs() if fold_outputs else held_out_fold_outputs(decoder, train, folds, autoencoder=backend,
                                                                           keep_models=True)
        scores: dict[tuple[str, int], list] = {}
        subsets = _scored_subsets(outputs, sampling.candidate_tuning_stimuli)
        for fold in progress_bar(subsets, f"candidates ({method}) on held-out folds", enabled=console is not None):
            for choice, values in _candidate_prefix_scores(fold, backend, method, replace(sampling, candidates=1), cs,
                                                           gg, encoder, grid, reductions).items():
                scores.setdefault(choice, []).append(values)
        means = {choice: float(np.mean(np.concatenate(v))) for choice, v in scores.items()}
        reduction, chosen = choose_candidate_setting(means, sampling.candidate_tolerance)
        record = {"candidates": chosen, "reduction": reduction,
                  "pixcorr_by_candidates": {str(n): m for (r, n), m in means.items() if r == reductions[0]},
                  "pixcorr_by_reduction": {r: {str(n): m for (r2, n), m in means.items() if r2 == r} for r in reductions},
                  "folds": folds, "stimuli_scored": int(sum(len(v) for v in scores[(reductions[0], grid[0])])),
                  "tolerance": sampling.candidate_tolerance, "tuned_on": [str(s) for s in train.stimulus_ids]}
        write_json(path, record)
    reduction = record.get("reduction", "best")
    log(console, f"candidates chosen on training folds: {record['candidates']}, {reduction} ("
                 + "; ".join(f"{r}: " + ", ".join(f"N={n}: {m:.3f}" for n, m in by_n.items())
                             for r, by_n in record.get("pixcorr_by_reduction", {"best": record["pixcorr_by_candidates"]}).items())
                 + ")")
    return int(record["candidates"]), reduction, record


def choose_candidate_setting(means: dict[tuple[str, int], float], tolerance: float) -> tuple[str, int]:
    """(reduction, N) from held-out pixel correlations: the smallest N within ``tolerance`` of the best setting,
    then the better reduction at that N (N = 1 is the same image under every reduction: reported as best)."""
    best = max(means.values())
    n = min(k for (_, k), m in means.items() if m >= best - tolerance)
    if n == 1:
        return "best", 1
    reduction = max((m, r) for (r, k), m in means.items() if k == n)[1]
    return reduction, n


def _scored_subsets(outputs: list[dict], limit: int | None, seed: int = 0) -> list[dict]:
    """The folds cut to a seeded subset of ``limit`` held-out stimuli in all (None: every one): every per-stimulus
    array cut alike, the fold's fitted decoders kept; folds left without a stimulus dropped."""
    sizes = [len(fold["c"]) for fold in outputs]
    if limit is None or limit >= sum(sizes):
        return outputs
    chosen = np.sort(np.random.default_rng(seed).permutation(sum(sizes))[:limit])
    per_stimulus = ("c_prime", "c", "s", "pi_c", "stimulus_ids", "target", "fmri")
    subsets, start = [], 0
    for fold, size in zip(outputs, sizes):
        rows = chosen[(chosen >= start) & (chosen < start + size)] - start
        start += size
        if len(rows):
            subsets.append({k: (np.asarray(v)[rows] if k in per_stimulus else v) for k, v in fold.items()})
    return subsets


def _candidate_prefix_scores(fold: dict, backend, method: str, sampling, cs, gg, encoder, grid: list[int],
                             reductions: list[str]) -> dict:
    """Per (reduction, N) in ``reductions`` x ``grid``: the held-out pixel correlation of what the reduction keeps
    of a fold's first N candidates (best: the brain's pick; mean: their pixelwise mean)."""
    most = max(grid)
    n = len(fold["c"])
    rows = [(i, k) for i in range(n) for k in range(most)]
    idx = np.array([i for i, _ in rows])
    images = generate_images(backend, fold["c_prime"][idx], fold["c"][idx], fold["s"][idx], fold["pi_c"][idx], method,
                             sampling, seeds=[candidate_seed(i, k) for i, k in rows], cs_options=cs, gg_options=gg,
                             encoder=encoder)
    scores = {}
    if "best" in reductions:
        _, matches = candidate_scores(fold["decoder"], images, np.repeat(fold["fmri"], most, axis=0), with_matches=True)
        quality = fold_pixcorr(images, np.repeat(fold["target"], most, axis=0)).reshape(n, most)
        matches = np.zeros((n, most)) if matches is None else np.asarray(matches).reshape(n, most)
        scores.update({("best", k): quality[np.arange(n), matches[:, :k].argmax(1)] for k in grid})
    if "mean" in reductions:
        stacks = images.reshape(n, most, *images.shape[1:])
        scores.update({("mean", k): fold_pixcorr(np.stack([candidate_mean(c[:k]) for c in stacks]), fold["target"])
                       for k in grid})
    return scores
