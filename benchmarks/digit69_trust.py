"""pi_c and the trust score on real fMRI (digit69): do they say which reconstructions are good?

    python benchmarks/digit69_trust.py --prior runs/digit69-mnist-prior

All 100 trials of digit69 (90 training + 10 test; 50 sixes, 50 nines), two experiments:

A. Generalized: decoders (M_c, M_s, M_g, trust) fitted on sixes only, 5 folds over the 50
   sixes: fit on 40, decode the 10 held-out sixes (inside the training semantics) and all
   50 nines (outside). Per gate: AUROC of pi_c, inside vs outside. For ``--gate`` (default
   prediction-knn, the default gate when docs/trust.md's figures were measured): Spearman's
   rho of pi_c and of trust with per-sample accuracy, and what CS does to the nines compared
   with semantic alone.
B. Cross-validated: 10 folds over all 100 trials (sixes and nines both in training); the
   decoders and ``--gate`` refitted without each fold. Spearman's rho of pi_c and trust with
   per-sample accuracy over the 100 held-out reconstructions.

Per-sample accuracy: all-pairs 2-way identification of the reconstruction among the
decoded set (A: the fold's 60; B: all 100), on EfficientNet-Lite0 embedding correlation
(gess.evaluation.trustworthiness). CS uses fixed settings (low-pass x1.5, 90% of the
steps, floor 0.1 on pi_s: what tuning on digit69's training folds chose); the prior is
the generator that has seen the domain (MNIST less digit69's test stimuli).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from gess import stages
from gess.data import load_mat
from gess.data.dataset import Dataset, Split
from gess.decoding.gating import GATES
from gess.decoding.structural import StructuralSpace
from gess.encoders import get_encoder
from gess.evaluation.classification import mnist_reader
from gess.evaluation.trustworthiness import identification_per_sample, spearman
from gess.generation import CSOptions, SamplingOptions, generate_images
from gess.generation.backends.pixel import PixelBackend

DIGIT = {1: 6, 2: 9}


def pooled(ds) -> Split:
    tr, te = ds.train, ds.test
    return Split(np.concatenate([tr.fmri, te.fmri]), np.concatenate([tr.trial_ids, te.trial_ids]),
                 np.concatenate([tr.images, te.images]), np.concatenate([tr.stimulus_ids, te.stimulus_ids]),
                 np.concatenate([tr.labels, te.labels]))


def as_uint8(x):
    return np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)


def reconstructions(model, dataset, backend, methods, sampling, cs, seed=0):
    decoded, ids = stages.decode(model, dataset)
    out = {"structure": as_uint8(decoded.s)}
    for method in methods:
        out[method] = generate_images(backend, decoded.c_prime, decoded.c, decoded.s, decoded.pi_c, method, sampling,
                                  seed=seed, cs_options=cs, progress=False)
    fmri = stages.test_fmri(dataset)
    trust = {name: np.array(stages.trust_scores(model, imgs, fmri)) for name, imgs in out.items()}
    return decoded, ids, out, trust


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/digit69/digit69_28x28.mat")
    ap.add_argument("--prior", default="runs/digit69-mnist-prior")
    ap.add_argument("--mnist", default="../shared/data/mnist/mnist_minus_digit69_test.npz")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--out", default="docs/figures/digit69_trust.json")
    ap.add_argument("--gate", default="prediction-knn", choices=list(GATES),
                    help="the gate whose pi_c is set beside trust and drives CS (docs/trust.md's figures: prediction-knn)")
    args = ap.parse_args()
    t0 = time.time()
    ds = load_mat(args.data)
    everything = pooled(ds)
    digits = np.array([DIGIT[int(l)] for l in everything.labels])
    encoder = get_encoder("efficientnet-lite0")
    space = StructuralSpace(28, grey=True)
    backend = PixelBackend.from_pretrained(args.prior)
    sampling = SamplingOptions(steps=args.steps, guidance_scale=1.0, min_structure_weight=0.1)
    cs = CSOptions(lowpass_factor=1.5, fraction=0.9)
    reader = mnist_reader(args.mnist)
    embed = lambda images: stages.encode_images(encoder, images)
    report = {}

    # ---------------------------------------------------------------- A: sixes only, nines outside
    sixes, nines = everything.stimulus_ids[digits == 6], everything.stimulus_ids[digits == 9]
    folds = np.array_split(np.random.default_rng(0).permutation(len(sixes)), 5)
    gate_scores = {g: {"pi_c": [], "inside": []} for g in GATES}
    rows = []
    for k, held in enumerate(folds):
        fit_ids = np.delete(sixes, held)
        test_ids = np.concatenate([sixes[held], nines])
        dataset = Dataset(everything.subset(fit_ids), everything.subset(test_ids), name=f"sixes fold {k}")
        for gate in GATES:
            model = stages.fit(dataset, encoder, space=space, gate=gate)
            decoded, ids = stages.decode(model, dataset)
            gate_scores[gate]["pi_c"] += decoded.pi_c.tolist()
            gate_scores[gate]["inside"] += [s in set(sixes) for s in ids]
            if gate == args.gate:
                decoded, ids, images, trust = reconstructions(model, dataset, backend, ["semantic", "cs"], sampling, cs)
                truth = dataset.test.images[[list(dataset.test.stimulus_ids).index(s) for s in ids]]
                truth_emb = embed(truth)
                for name, imgs in images.items():
                    acc = identification_per_sample(truth_emb, embed(imgs), truth)
                    right = reader.predict(imgs) == np.array([6 if s in set(sixes) else 9 for s in ids])
                    rows += [{"fold": k, "method": name, "id": str(s), "inside": bool(s in set(sixes)),
                              "pi_c": float(p), "trust": float(t), "accuracy": float(a), "right_digit": bool(r)}
                             for s, p, t, a, r in zip(ids, decoded.pi_c, trust[name], acc, right)]
        print(f"A fold {k}: {time.time() - t0:.0f} s", flush=True)
    from sklearn.metrics import roc_auc_score

    report["A_auroc_inside_vs_outside"] = {g: float(roc_auc_score(v["inside"], v["pi_c"])) for g, v in gate_scores.items()}
    report["A"] = {}
    for name in ("structure", "semantic", "cs"):
        r = [x for x in rows if x["method"] == name]
        col = lambda key, sel=lambda x: True: np.array([x[key] for x in r if sel(x)], float)
        report["A"][name] = {
            "pi_c_vs_accuracy": spearman(col("pi_c"), col("accuracy")),
            "trust_vs_accuracy": spearman(col("trust"), col("accuracy")),
            "trust_auroc_right_digit": float(roc_auc_score(col("right_digit") > 0, col("trust"))) if 0 < col("right_digit").mean() < 1 else None,
            "accuracy_inside": float(col("accuracy", lambda x: x["inside"]).mean()),
            "accuracy_outside": float(col("accuracy", lambda x: not x["inside"]).mean()),
            "right_digit_inside": float(col("right_digit", lambda x: x["inside"]).mean()),
            "right_digit_outside": float(col("right_digit", lambda x: not x["inside"]).mean()),
        }
    print(json.dumps({"A_auroc": report["A_auroc_inside_vs_outside"], "A": report["A"]}, indent=1), flush=True)

    # ---------------------------------------------------------------- B: 10-fold CV over all 100
    order = np.random.default_rng(1).permutation(len(everything.stimulus_ids))
    all_ids = everything.stimulus_ids
    results = {name: {} for name in ("structure", "semantic", "cs")}
    pis, trusts = {}, {name: {} for name in results}
    for k, held in enumerate(np.array_split(order, 10)):
        dataset = Dataset(everything.subset(np.delete(all_ids, held)), everything.subset(all_ids[held]), name=f"cv fold {k}")
        model = stages.fit(dataset, encoder, space=space, gate=args.gate)
        decoded, ids, images, trust = reconstructions(model, dataset, backend, ["semantic", "cs"], sampling, cs)
        for name, imgs in images.items():
            results[name].update(dict(zip(ids, imgs)))
            trusts[name].update(dict(zip(ids, trust[name])))
        pis.update(dict(zip(ids, decoded.pi_c)))
        print(f"B fold {k}: {time.time() - t0:.0f} s", flush=True)
    truth_emb = embed(everything.images)
    report["B"] = {}
    for name in results:
        imgs = np.stack([results[name][s] for s in all_ids])
        acc = identification_per_sample(truth_emb, embed(imgs), everything.images)
        right = reader.predict(imgs) == digits
        report["B"][name] = {"pi_c_vs_accuracy": spearman([pis[s] for s in all_ids], acc),
                             "trust_vs_accuracy": spearman([trusts[name][s] for s in all_ids], acc),
                             "mean_accuracy": float(acc.mean()), "right_digit": float(right.mean())}
    print(json.dumps({"B": report["B"]}, indent=1))
    report["settings"] = {"prior": args.prior, "sampling": sampling.to_dict(), "cs": cs.to_dict(),
                          "wall_seconds": time.time() - t0}
    report["A_rows"] = rows
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"-> {args.out}; wall time {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
