"""The checks of a whole run: per-sample accuracy and trust, whether trust and pi_c predict accuracy,
whether pi_c separates the test stimuli inside the training semantics from those outside, the digits read."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np


def per_sample_scores(dataset, test_ids, recon_dirs: dict, encode: Callable[[np.ndarray], np.ndarray],
                      digits: tuple | None = None) -> dict:
    """Per run name: {"accuracy", "trust"} and, with ``digits``, "digit" arrays over ``test_ids``.

    accuracy: all-pairs 2-way identification on ``encode(images)`` embeddings; trust: the
    manifest's (NaN where absent); digit: whether ``digits`` = (a reader trained on digits that are not
    test stimuli, the digit each of ``test_ids`` shows) reads the stimulus's digit.
    """
    from gess.data.images import load_image
    from gess.errors import GessInputError
    from gess.evaluation.trustworthiness import identification_per_sample
    from gess.manifest import Manifest

    test = dataset.test.averaged()
    lookup = {s: i for i, s in enumerate(test.stimulus_ids)}
    truth = test.images[[lookup[s] for s in test_ids]]
    truth_embeddings = encode(truth)
    reader, labels = digits if digits is not None else (None, None)
    out = {}
    for name, directory in recon_dirs.items():
        manifest = Manifest(directory).read()  # a foreign or hand-edited manifest: bad input naming it
        absent = [str(s) for s in test_ids if str(s) not in manifest]
        if absent:
            raise GessInputError(Path(directory) / "manifest.json", None, "an entry for every test stimulus",
                                 f"{len(absent)} missing (e.g. {absent[0]})")
        images = np.stack([load_image(Path(directory) / f"{s}.png") for s in test_ids])
        entry = {"accuracy": identification_per_sample(truth_embeddings, encode(images), truth),
                 "trust": np.array([manifest[str(s)].get("trust") if manifest[str(s)].get("trust") is not None
                                    else np.nan for s in test_ids], float)}
        if reader is not None:
            entry["digit"] = reader.predict(images) == labels
        out[name] = entry
    return out


def trust_check(per_sample: dict, pi_c: np.ndarray) -> dict:
    """{"trust_check": Spearman's rho of pi_c and of trust with each method's accuracy, and its mean accuracy;
    "trust": each method's per-sample trust (None where absent)}."""
    from gess.evaluation.trustworthiness import spearman

    return {"trust_check": {name: {"pi_c": spearman(pi_c, p["accuracy"]), "trust": spearman(p["trust"], p["accuracy"]),
                                   "mean_accuracy": float(np.nanmean(p["accuracy"]))}
                            for name, p in per_sample.items()},
            "trust": {name: [None if not np.isfinite(t) else float(t) for t in p["trust"]] for name, p in per_sample.items()}}


def gate_separation(pi_c: np.ndarray, groups: np.ndarray) -> dict:
    """AUROC of pi_c for telling "inside" from "outside" test stimuli, and mean pi_c per group ({} unless two groups)."""
    from sklearn.metrics import roc_auc_score

    pi_c, groups = np.asarray(pi_c), np.asarray(groups)
    if len(set(groups.tolist())) != 2:
        return {}
    return {"pi_c_auroc_inside_vs_outside": float(roc_auc_score(groups == "inside", pi_c)),
            "mean_pi_c": {g: float(pi_c[groups == g].mean()) for g in ("inside", "outside")}}


def right_digit_rates(per_sample: dict, groups: np.ndarray) -> dict:
    """Per method holding "digit": the share of digits read right per group (when there are several) and over "all"."""
    groups = np.asarray(groups)
    names = sorted(set(groups.tolist())) if len(set(groups.tolist())) > 1 else []
    return {name: {g: float(p["digit"][groups == g].mean()) for g in names}
            | {"all": float(p["digit"].mean())} for name, p in per_sample.items() if "digit" in p}
