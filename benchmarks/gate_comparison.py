"""Every gate on the same two experiments: does pi_c tell inside from outside the training semantics,
and does it rank samples by how good their semantic cue is?

    python benchmarks/gate_comparison.py [--data $GESS_SHARED_DATA/digit69/digit69_28x28.mat]

A. digit69 (real fMRI, V1-V3), all 100 trials pooled (50 sixes, 50 nines). Five folds over the
   sixes: the decoders are fitted on 40 sixes, then decode the 10 held-out sixes (inside) and all
   50 nines (outside); pi_c is pooled over the folds (50 inside, 250 outside). Then the same with
   the digits' roles swapped (fitted on nines only).
B. The demo's simulated experiment (``gess.run.DEMO_CONFIG``: scikit-learn digits, generalized
   split, 30 inside + 30 outside test images); ``--demo-seeds`` adds other split seeds.

Per gate and experiment: AUROC of pi_c (inside = the positive class), and Spearman's rho of pi_c
with each sample's semantic accuracy (cosine of the decoded embedding c with the stimulus's true
embedding, both centred on the training embeddings' mean) and with its structural accuracy (pixel
correlation of the decoded structure s with the stimulus's structural target). Every decoder is
fitted by ``gess.api.fit(..., gate=name)`` on the training trials only; the gates' settings are
their defaults (nothing is chosen on the test stimuli). For the brain gate the two halves of its
score, r_sem and -r_str, are reported as well (diagnostics, not gates).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from gess import api, stages
from gess.data import load_mat
from gess.data.dataset import Dataset, Split
from gess.decoding.gating import DEFAULT_GATE, GATES, GateInputs
from gess.decoding.structural import StructuralSpace
from gess.encoders import get_encoder

DIGIT = {1: 6, 2: 9}  # digit69's labels
SHARED = os.environ.get("GESS_SHARED_DATA", "/work/shared/data")


def pooled(ds: Dataset) -> Split:
    tr, te = ds.train, ds.test
    return Split(np.concatenate([tr.fmri, te.fmri]), np.concatenate([tr.trial_ids, te.trial_ids]),
                 np.concatenate([tr.images, te.images]), np.concatenate([tr.stimulus_ids, te.stimulus_ids]),
                 np.concatenate([tr.labels, te.labels]))


def accuracies(model, dataset: Dataset, decoded, ids, encoder, space) -> tuple[np.ndarray, np.ndarray]:
    """Per test sample: centred cosine of c with the true embedding; pixel correlation of s with the true target."""
    test = dataset.test.averaged()
    rows = [list(test.stimulus_ids).index(s) for s in ids]
    truth = stages.encode_images(encoder, test.images[rows])
    mean = stages.encode_images(encoder, dataset.train.images)[dataset.train.image_index()].mean(0)
    a, b = decoded.c - mean, truth - mean
    cosine = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    s_true = space.targets(test.images[rows]).reshape(len(rows), -1)
    s_dec = np.asarray(decoded.s).reshape(len(rows), -1)
    pixel = np.array([np.corrcoef(x, y)[0, 1] for x, y in zip(s_dec, s_true)])
    return cosine, pixel


def brain_halves(model, dataset: Dataset, decoded) -> dict[str, np.ndarray]:
    """The brain gate's r_sem and -r_str for the decoded test samples."""
    z = model._standardize(api.test_fmri(dataset))
    ev = model.gate_.evidence(GateInputs(z, decoded.c_raw, structure=decoded.s))
    return {"brain: r_sem alone": ev["sem"], "brain: -r_str alone": -ev["str"]}


def run_gates(dataset: Dataset, encoder, space, inside_ids: set, augment=None) -> dict:
    """Fit the decoders once per gate; pi_c, inside/outside and the accuracies of every test sample."""
    out = {}
    for gate in GATES:
        model = api.fit(dataset, encoder, space=space, augment_images=augment, gate=gate)
        decoded, ids = api.decode(model, dataset)
        sem, pix = accuracies(model, dataset, decoded, ids, encoder, space)
        inside = np.array([s in inside_ids for s in ids])
        out[gate] = {"pi_c": decoded.pi_c, "inside": inside, "sem": sem, "pix": pix}
        if gate == "brain":
            for name, score in brain_halves(model, dataset, decoded).items():
                out[name] = {"pi_c": score, "inside": inside, "sem": sem, "pix": pix}
    return out


def digit69(path: str, encoder, inside_digit: int = 6) -> dict:
    everything = pooled(load_mat(path))
    digits = np.array([DIGIT[int(label)] for label in everything.labels])
    # "sixes" are the inside digit, "nines" the other
    sixes, nines = everything.stimulus_ids[digits == inside_digit], everything.stimulus_ids[digits != inside_digit]
    folds = np.array_split(np.random.default_rng(0).permutation(len(sixes)), 5)
    space = StructuralSpace(28, grey=True)
    merged = {}
    for k, held in enumerate(folds):
        dataset = Dataset(everything.subset(np.delete(sixes, held)), everything.subset(np.r_[sixes[held], nines]),
                          name=f"digit69 {inside_digit}s fold {k}")
        for gate, rows in run_gates(dataset, encoder, space, set(sixes[held])).items():
            for key, value in rows.items():
                merged.setdefault(gate, {}).setdefault(key, []).append(value)
    return {gate: {key: np.concatenate(v) for key, v in rows.items()} for gate, rows in merged.items()}


def demo(encoder, seed: int) -> dict:
    from gess.data.simulated import simulate_experiment
    from gess.run import DEMO_CONFIG
    from gess.runconfig import load_run_config

    cfg = load_run_config({**DEMO_CONFIG, "split": {**DEMO_CONFIG["split"], "seed": seed}})
    pool, model = cfg.simulation()
    experiment = simulate_experiment(pool, model, lambda images: stages.encode_images(encoder, images),
                                     cfg.split.clusters, cfg.split.method, cfg.split.inside_test,
                                     cfg.split.outside_test, cfg.split.seed)
    dataset = experiment.dataset
    inside = {s for s, g in experiment.groups.items() if g == "inside"}
    space = api.structural_space(dataset, cfg.structure)
    return run_gates(dataset, encoder, space, inside, experiment.augment_images())


def summarize(rows: dict) -> dict:
    table = {}
    for gate, r in rows.items():
        rho_sem, p_sem = spearmanr(r["pi_c"], r["sem"])
        rho_pix, p_pix = spearmanr(r["pi_c"], r["pix"])
        table[gate] = {"auroc": float(roc_auc_score(r["inside"], r["pi_c"])), "rho_semantic": float(rho_sem),
                       "p_semantic": float(p_sem), "rho_pixel": float(rho_pix), "p_pixel": float(p_pix),
                       "mean_pi_inside": float(r["pi_c"][r["inside"]].mean()),
                       "mean_pi_outside": float(r["pi_c"][~r["inside"]].mean()),
                       "n_inside": int(r["inside"].sum()), "n_outside": int((~r["inside"]).sum())}
    return table


def print_table(title: str, table: dict) -> None:
    print(f"\n{title}")
    print(f"{'gate':22s} {'AUROC':>6s} {'rho(pi_c, sem acc)':>19s} {'rho(pi_c, pixel acc)':>21s} {'pi_c in/out':>12s}")
    for gate, t in table.items():
        print(f"{gate:22s} {t['auroc']:6.3f} {t['rho_semantic']:+8.3f} (p {t['p_semantic']:.2g}) "
              f"{t['rho_pixel']:+9.3f} (p {t['p_pixel']:.2g}) {t['mean_pi_inside']:5.2f}/{t['mean_pi_outside']:.2f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=f"{SHARED}/digit69/digit69_28x28.mat")
    ap.add_argument("--demo-seeds", type=int, nargs="+", default=[0], help="split seeds of the demo (0: the demo's)")
    ap.add_argument("--out", default="docs/figures/gate_comparison.json")
    args = ap.parse_args()
    t0 = time.time()
    encoder = get_encoder("efficientnet-lite0")
    report = {"default_gate": DEFAULT_GATE, "experiments": {}}
    report["experiments"]["digit69 sixes-only (5 folds)"] = summarize(digit69(args.data, encoder))
    report["experiments"]["digit69 nines-only (5 folds)"] = summarize(digit69(args.data, encoder, inside_digit=9))
    print(f"digit69 done: {time.time() - t0:.0f} s", flush=True)
    for seed in args.demo_seeds:
        name = "demo (DEMO_CONFIG split)" if seed == 0 else f"demo, split seed {seed}"
        report["experiments"][name] = summarize(demo(encoder, seed))
        print(f"{name} done: {time.time() - t0:.0f} s", flush=True)
    for title, table in report["experiments"].items():
        print_table(title, table)
    report["seconds"] = time.time() - t0
    seeds = "" if args.demo_seeds == [0] else " --demo-seeds " + " ".join(map(str, args.demo_seeds))
    report["command"] = "python benchmarks/gate_comparison.py" + seeds
    report["machine"] = f"{os.cpu_count()} CPU cores, " + ("CUDA" if torch.cuda.is_available() else "no GPU")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.out}; wall time {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
