"""Does pi_c tell inside-the-training-semantics test samples from outside ones?

Simulated fMRI (non-linear, category-selective semantic voxels) over the 1000
images of ../shared/data/imagenet-sample with EfficientNet-Lite0 semantics.
Balanced semantic partition (Kernighan-Lin cut of the 20-cluster cosine graph);
train on most of one side, test on held-out images of that side (inside) and on
images of the other side (outside). For every gate: AUROC of pi_c for inside vs
outside, Spearman correlation of pi_c with each sample's semantic decoding
accuracy (all-pairs 2-way identification of c' among the test set), and 2-way
identification of c' and c per group.

    python benchmarks/gate_auroc.py [--data ../shared/data/imagenet-sample] [--snr 1.0] [--seeds 0 1 2]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from gess.data.images import load_image_folder
from gess.data.simulated import SimulatedFMRIModel, simulate_dataset
from gess.encoders import get_encoder
from gess.encoders.features import semantic_features
from gess.evaluation import two_way_all_pairs
from gess.decoding import GESSDecoder
from gess.decoding.gating import GATES, GateInputs, KDEGate
from gess.split import generalized_split


def cached_embeddings(folder: Path, cache: Path):
    if cache.is_file():
        z = np.load(cache)
        return z["images"], z["ids"], z["emb"]
    images, ids = load_image_folder(folder)
    emb = semantic_features(get_encoder("efficientnet-lite0"), images, progress=True)
    np.savez(cache, images=images, ids=ids, emb=emb)
    return images, ids, emb


def run(images, ids, emb, snr, seed, n_test_each=100, test_repeats=1, tuning_width=0.5):
    split = generalized_split(emb, ids, n_clusters=20, method="kernighan-lin", seed=0)
    rng = np.random.default_rng(seed)
    inside_pool = np.array(split.train)
    inside = rng.choice(inside_pool, n_test_each, replace=False)
    outside = rng.choice(np.array(split.test), n_test_each, replace=False)
    train = np.setdiff1d(inside_pool, inside)
    test = np.concatenate([inside, outside])
    is_inside = np.r_[np.ones(n_test_each), np.zeros(n_test_each)]
    model = SimulatedFMRIModel(snr=snr, seed=seed, tuning_width=tuning_width)
    ds = simulate_dataset(images, ids, emb, train, test, model, test_repeats=test_repeats).averaged()
    index = {s: i for i, s in enumerate(ids)}
    c_tr = emb[[index[s] for s in ds.train.trial_ids]]
    c_te = emb[[index[s] for s in ds.test.stimulus_ids]]
    aug = emb[[index[s] for s in ids if s not in set(test)]]
    s_dummy = np.zeros((len(c_tr), 1), np.float32)
    rows = {}
    for name in GATES:
        dec = GESSDecoder(gate=name).fit(ds.train.fmri, c_tr, s_dummy, augment_embeddings=aug)
        out = dec.decode(ds.test.fmri)
        acc = two_way_all_pairs(c_te, out.c_prime)
        rows[name] = dict(auroc=roc_auc_score(is_inside, out.pi_c), spearman=spearmanr(out.pi_c, acc)[0],
                          pi_in=out.pi_c[is_inside == 1].mean(), pi_out=out.pi_c[is_inside == 0].mean())
    # reference: the paper's KDE on the TRUE test embeddings (what an oracle decoder would give)
    oracle = KDEGate().fit(GateInputs(ds.train.fmri, c_tr), c_tr, GateInputs(ds.train.fmri, c_tr))
    rows["kde on true embeddings (oracle)"] = dict(auroc=roc_auc_score(is_inside, oracle.typicality(GateInputs(ds.test.fmri, c_te))),
                                                    spearman=np.nan, pi_in=np.nan, pi_out=np.nan)
    # identification of c' and c per group, and re-projection on/off
    acc_cp = two_way_all_pairs(c_te, out.c_prime)
    ident = {"c_prime": (acc_cp[is_inside == 1].mean(), acc_cp[is_inside == 0].mean())}
    sem = dec.semantic_
    for label, kw in {"c (released, reg 10)": dict(reprojection="released", regularization=10.0, w_c=1.0),
                      "c (released, reg 1)": dict(reprojection="released", regularization=1.0, w_c=1.0),
                      "c (lle, reg 1e-3)": dict(reprojection="lle", regularization=1e-3, w_c=1.0),
                      "c (released, w_c 0.5)": dict(reprojection="released", regularization=10.0, w_c=0.5)}.items():
        for k, v in kw.items():
            setattr(sem, k, v)
        acc_c = two_way_all_pairs(c_te, sem.reproject(out.c_prime))
        ident[label] = (acc_c[is_inside == 1].mean(), acc_c[is_inside == 0].mean())
    return rows, ident, (len(split.train), len(split.test), len(train))


def simulation_arguments() -> argparse.ArgumentParser:
    """The arguments every imagenet-sample simulation benchmark takes."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/imagenet-sample")
    ap.add_argument("--cache", default="/tmp/gess_imagenet_sample_effnet.npz")
    ap.add_argument("--snr", type=float, default=1.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    return ap


def main():
    ap = simulation_arguments()
    ap.add_argument("--test-repeats", type=int, default=1)
    ap.add_argument("--tuning-width", type=float, default=0.5)
    args = ap.parse_args()
    t0 = time.time()
    images, ids, emb = cached_embeddings(Path(args.data), Path(args.cache))
    all_rows, all_ident = [], []
    for seed in args.seeds:
        rows, ident, sizes = run(images, ids, emb, args.snr, seed, test_repeats=args.test_repeats, tuning_width=args.tuning_width)
        all_rows.append(rows)
        all_ident.append(ident)
    print(f"split sides {sizes[0]}/{sizes[1]} images, {sizes[2]} training images, 100 inside + 100 outside test, "
          f"SNR {args.snr}, tuning width {args.tuning_width}, test repeats {args.test_repeats}, seeds {args.seeds}")
    print(f"{'gate':34s} {'AUROC':>7s} {'Spearman(pi_c, acc)':>20s} {'mean pi_c in':>13s} {'out':>6s}")
    for name in all_rows[0]:
        vals = np.array([[r[name][k] for k in ("auroc", "spearman", "pi_in", "pi_out")] for r in all_rows])
        with np.errstate(all="ignore"):
            m = np.array([np.nanmean(col) if not np.isnan(col).all() else np.nan for col in vals.T])
        print(f"{name:34s} {m[0]:7.3f} {m[1]:20.3f} {m[2]:13.3f} {m[3]:6.3f}")
    print("2-way identification in the embedding space (all pairs among the 200 test samples):")
    for key in all_ident[0]:
        v = np.array([i[key] for i in all_ident]).mean(0)
        print(f"  {key:24s} inside {v[0]:.3f}  outside {v[1]:.3f}")
    print(f"wall time {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
