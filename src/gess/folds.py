"""Held-out folds of the TRAINING stimuli, and the settings chosen on them (the test set never enters)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from gess.api import decode, fit
from gess.cache import cache_dir, fingerprint
from gess.data.dataset import Dataset, Split
from gess.data.extra import ExtraImages
from gess.decoding import GESSDecoder, StructuralSpace
from gess.featurecache import encoder_of
from gess.generation.tuning import tune_cs
from gess.io import read_json, write_json
from gess.progress import log


def held_out_fold_outputs(decoder: GESSDecoder, train: Split, folds: int = 5, seed: int = 0, autoencoder=None,
                          extra_images: ExtraImages | np.ndarray | str | None = None) -> list[dict]:
    """Decoders refitted without each fold of the TRAINING stimuli, decoding that fold.

    Only ``train`` is read: the test set never enters tuning (a self-supervised M_s takes
    the held-out fold's fMRI as its unpaired fMRI, and the extra images it was fitted
    with, ``extra_images`` or the source its metadata records). Each fold's dict holds
    c_prime, c, s, pi_c of its held-out stimuli, their images (``target``) and ids.
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
    return outputs


def _fitted_extra_images(decoder: GESSDecoder, given) -> ExtraImages | None:
    """The extra images a self-supervised M_s learnt from: those given, else the source its metadata records."""
    if decoder.structural_decoder != "self-supervised":
        return None
    recorded = decoder.metadata_.get("self_supervised_data", {}).get("extra_images")
    return ExtraImages.coerce(given if given is not None else recorded)


def tune_cs_on_training_folds(decoder: GESSDecoder, train: Split, backend, method: str, sampling, cs, console=None):
    """CS settings chosen by pixel correlation on held-out training folds; cached by content.

    Returns (CSOptions with the chosen low-pass factor and share of steps, a record
    with the chosen floor on pi_s and every setting tried).
    """
    floors = cs.tune_min_structure_weights if method == "cs" else (0.0,)
    key = fingerprint("cs-tuning", decoder.metadata_.get("fingerprint") or decoder.get_params(), train.fmri, train.images,
                      backend.config(), method, {**sampling.to_dict(), "candidates": None}, cs.to_dict())
    path = cache_dir() / "cs-tuning" / f"{key}.json"
    if path.is_file():
        record = read_json(path)
    else:
        log(console, f"tuning CS ({method}) on {cs.tune_folds} held-out folds of the training data")
        folds = held_out_fold_outputs(decoder, train, cs.tune_folds, autoencoder=backend)
        best, floor, grid = tune_cs(backend, folds, cs.tune_lowpass_factors, cs.tune_fractions, sampling, method, floors, cs)
        record = {"lowpass_factor": best.lowpass_factor, "fraction": best.fraction, "min_structure_weight": floor,
                  "folds": cs.tune_folds, "grid": grid, "tuned_on": [str(s) for s in train.stimulus_ids]}
        write_json(path, record)
    log(console, f"CS chosen on training folds: low-pass x{record['lowpass_factor']}, fraction {record['fraction']}, "
                 f"floor {record['min_structure_weight']}")
    return replace(cs, lowpass_factor=record["lowpass_factor"], fraction=record["fraction"]), record
