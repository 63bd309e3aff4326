"""digit69 (real fMRI): the paper's four methods with the pixel prior, against the structural decoder.

    gess prior train --images ../shared/data/digit69/digit69_28x28.mat --out runs/digit69-prior --steps 2400
    python benchmarks/digit69_methods.py --prior runs/digit69-prior --tune --seeds 0 1 2

Prints per method the mean per-image pixel correlation and SSIM (Gaussian,
sigma 1.5, grey, at the stimuli's 28 px), the digit shown (logistic regression on
the 90 training stimuli) and the mean pi_c, and saves the grid
(stimulus, structure, semantic, cs-equal, cs, gg) to docs/figures/.
With --tune, the CS low-pass factor, substituted share of steps and floor on pi_s are chosen
on held-out folds of the training data (5 folds of 18), never on the test set.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from gess import stages
from gess.data import load_mat
from gess.data.images import resize_images
from gess.decoding import StructuralSpace
from gess.encoders import get_encoder
from gess.evaluation.identification import paired_correlation
from gess.evaluation.metrics import ssim as suite_ssim
from gess.generation import CSOptions, GGOptions, SamplingOptions, reconstruct
from gess.generation.backends.pixel import PixelBackend
from gess.generation.tuning import tune_cs
from gess.report.figures import save_grid


def grey(images: np.ndarray) -> np.ndarray:
    x = images.astype(np.float32)
    x = x / 255.0 if images.dtype == np.uint8 else x
    return x.mean(-1) if x.ndim == 4 else x


def ssim28(gt, rec):
    import torch

    t = lambda a: torch.from_numpy(np.repeat(grey(a)[:, None], 3, 1))
    return suite_ssim(t(gt), t(rec))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/digit69/digit69_28x28.mat")
    ap.add_argument("--prior", default="runs/digit69-prior")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--tune", action="store_true")
    ap.add_argument("--guidance-scale", type=float, default=1.0)
    ap.add_argument("--cs-lowpass", type=float, default=1.5)
    ap.add_argument("--cs-fraction", type=float, default=0.9)
    ap.add_argument("--cs-min-structure", type=float, default=0.0)
    ap.add_argument("--tune-lowpass", type=float, nargs="+", default=[1.5, 2.0])
    ap.add_argument("--tune-fraction", type=float, nargs="+", default=[0.9, 1.0])
    ap.add_argument("--tune-min-structure", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="sampling seeds; the figures are their means")
    ap.add_argument("--figure", default="docs/figures/digit69_methods.png")
    args = ap.parse_args()
    t0 = time.time()
    ds = load_mat(args.data)
    encoder = get_encoder("efficientnet-lite0")
    space = StructuralSpace(28, grey=True)
    model = stages.fit(ds, encoder, space=space)
    dec, ids = stages.decode(model, ds)
    backend = PixelBackend.from_pretrained(args.prior)
    cs = CSOptions(lowpass_factor=args.cs_lowpass, fraction=args.cs_fraction)
    sampling = SamplingOptions(steps=args.steps, guidance_scale=args.guidance_scale, min_structure_weight=args.cs_min_structure)
    grid = []
    if args.tune:
        folds = stages.held_out_fold_outputs(model, ds.train, folds=5)
        cs, floor, grid = tune_cs(backend, folds, args.tune_lowpass, args.tune_fraction, sampling,
                                  min_structure_weights=args.tune_min_structure)
        sampling = SamplingOptions(steps=args.steps, guidance_scale=args.guidance_scale, min_structure_weight=floor)
        print("CS validation on held-out training folds (mean pixel correlation):")
        for r in grid:
            print(f"  lowpass x{r['lowpass_factor']:<4} fraction {r['fraction']:<4} "
                  f"min pi_s {r['min_structure_weight']:<4} -> {r['pixcorr']:.3f}")
        print(f"chosen: {cs.substitution()}, floor on pi_s {sampling.min_structure_weight}")
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=2000).fit(grey(ds.train.images).reshape(90, -1), ds.train.labels)
    gt = ds.test.images
    labels = ds.test.labels

    def measure(imgs):
        pred = clf.predict(grey(imgs).reshape(len(imgs), -1))
        return (paired_correlation(grey(imgs), grey(gt)).mean(), ssim28(gt, imgs).mean(), int((pred == labels).sum()))

    s28 = np.rint(np.clip(dec.s, 0, 1) * 255).astype(np.uint8)
    per_seed = {"structure (ridge)": [measure(s28)]}
    columns = {"stimulus": gt, "structure": np.clip(dec.s, 0, 1)}
    timings = {}
    for method in ("semantic", "cs-equal", "cs", "gg"):
        t = time.time()
        enc = encoder if method == "gg" else None
        per_seed[method] = []
        for seed in args.seeds:
            imgs = reconstruct(backend, dec.c_prime, dec.c, dec.s, dec.pi_c, method, sampling,
                               seed=seed * 1000, cs_options=cs, gg_options=GGOptions(), encoder=enc)
            imgs = resize_images(imgs, 28)
            per_seed[method].append(measure(imgs))
            if seed == args.seeds[0]:
                columns[method] = imgs
        timings[method] = (time.time() - t) / len(args.seeds)
    print(f"\nmean over seeds {args.seeds} (right digit: total over seeds)")
    print(f"{'method':18s} {'pixcorr':>8s} {'(min..max)':>14s} {'SSIM':>6s} {'right digit':>12s}  s/seed")
    summary = {}
    for name, rows in per_seed.items():
        r, s, right = (np.array(col) for col in zip(*rows))
        summary[name] = {"pixcorr": float(r.mean()), "pixcorr_per_seed": r.tolist(), "ssim": float(s.mean()),
                         "right_digit": int(right.sum()), "out_of": 10 * len(rows)}
        print(f"{name:18s} {r.mean():8.3f} {f'({r.min():.3f}..{r.max():.3f})':>14s} {s.mean():6.3f} "
              f"{int(right.sum()):>6d}/{10 * len(rows):<5d}  {timings.get(name, 0):.1f}")
    print(f"pi_c per test sample: {np.round(dec.pi_c, 2).tolist()}")
    save_grid(columns, args.figure, row_labels=[f"{'six' if l == 1 else 'nine'} pi_c {p:.2f}" for l, p in zip(labels, dec.pi_c)])
    Path(args.figure).with_suffix(".json").write_text(json.dumps(
        {"prior": str(args.prior), "seeds": args.seeds, "guidance_scale": args.guidance_scale, "summary": summary,
         "cs": cs.to_dict(), "sampling": sampling.to_dict(), "tuning": grid, "pi_c": dec.pi_c.tolist()}, indent=2))
    print(f"grid -> {args.figure}; wall time {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
