"""digit69 (real fMRI): both M_s (ridge, self-supervised) and the paper's four methods with a pixel prior.

    gess prior train --images ../shared/data/digit69/digit69_28x28.mat \
        --extra-images ../shared/data/mnist/mnist_minus_digit69_test.npz --out runs/digit69-mnist-prior \
        --steps 6000 --batch-size 32
    python benchmarks/digit69_methods.py --prior runs/digit69-mnist-prior --tune --seeds 0 1 2 \
        --extra-images ../shared/data/mnist/mnist_minus_digit69_test.npz

Prints per method the mean per-image pixel correlation and SSIM (Gaussian, sigma 1.5,
grey, at the stimuli's 28 px) over seeds, and how many reconstructions a digit
classifier trained on MNIST (less digit69's test stimuli) reads as the right digit.
Every setting is chosen on 5 held-out folds of the 90 TRAINING stimuli, never on the
test set: which M_s feeds the generator (by the folds' structure pixel correlation),
and with --tune the CS low-pass factor, share of substituted steps and reference gain, then the
floor on pi_s (``gess.generation.tuning.tune_cs``, what ``cs: {tune: true}`` runs, on this script's grid).
Saves the grid (stimulus, ridge structure, self-supervised structure, semantic,
cs-equal, cs, gg) and a JSON of every figure to docs/figures/.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from gess import stages
from gess.folds import held_out_fold_outputs
from gess.data import load_mat
from gess.data.images import resize_images
from gess.decoding import StructuralSpace
from gess.encoders import get_encoder
from gess.evaluation.classification import mnist_reader
from gess.correlation import paired_correlation
from gess.evaluation.metrics import ssim as suite_ssim
from gess.generation import CSOptions, GGOptions, SamplingOptions, generate_images
from gess.generation.backends.pixel import PixelBackend
from gess.generation.tuning import tune_cs
from gess.report.figures import save_grid

DIGIT = {1: 6, 2: 9}  # digit69's labels


def grey(images: np.ndarray) -> np.ndarray:
    x = images.astype(np.float32)
    x = x / 255.0 if images.dtype == np.uint8 else x
    return x.mean(-1) if x.ndim == 4 else x


def ssim28(gt, rec):
    import torch

    t = lambda a: torch.from_numpy(np.repeat(grey(a)[:, None], 3, 1))
    return suite_ssim(t(gt), t(rec))


def as_uint8(s: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(s, 0, 1) * 255).astype(np.uint8)


def fold_structure_score(folds: list[dict]) -> float:
    """Mean pixel correlation of M_s's output with the held-out training stimuli."""
    return float(np.mean(np.concatenate([paired_correlation(grey(f["s"]), grey(f["target"])) for f in folds])))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/digit69/digit69_28x28.mat")
    ap.add_argument("--prior", default="runs/digit69-mnist-prior")
    ap.add_argument("--extra-images", default="../shared/data/mnist/mnist_minus_digit69_test.npz")
    ap.add_argument("--mnist", default="../shared/data/mnist/mnist_minus_digit69_test.npz", help="the digit reader's training set")
    ap.add_argument("--ss", default="{}", help="self-supervised M_s options as JSON")
    ap.add_argument("--no-test-fmri", action="store_true", help="leave the test fMRI out of the fMRI cycle")
    ap.add_argument("--generator-structure", choices=["folds", "ridge", "self-supervised"], default="folds",
                    help="which M_s feeds the generator: chosen on held-out training folds (5 more self-supervised "
                         "fits), or named")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--tune", action="store_true")
    ap.add_argument("--guidance-scale", type=float, default=1.0)
    ap.add_argument("--cs-lowpass", type=float, default=1.5)
    ap.add_argument("--cs-fraction", type=float, default=0.9)
    ap.add_argument("--cs-min-structure", type=float, default=0.0)
    ap.add_argument("--tune-lowpass", type=float, nargs="+", default=[1.5, 2.0])
    ap.add_argument("--tune-fraction", type=float, nargs="+", default=[0.7, 0.9, 1.0])
    ap.add_argument("--tune-reference-gain", type=float, nargs="+", default=[1.0, 1.5, 2.0])
    ap.add_argument("--tune-min-structure", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="sampling seeds; the figures are their means")
    ap.add_argument("--figure", default="docs/figures/digit69_methods.png")
    args = ap.parse_args()
    t0 = time.time()
    ds = load_mat(args.data)
    encoder = get_encoder("efficientnet-lite0")
    space = StructuralSpace(28, grey=True)
    ss_options = {**json.loads(args.ss), **({"unpaired_fmri": "none"} if args.no_test_fmri else {})}
    models = {"ridge": stages.fit(ds, encoder, space=space)}
    clock = time.time()
    models["self-supervised"] = stages.fit(ds, encoder, space=space, extra_images=args.extra_images,
                                           structural_decoder="self-supervised", self_supervised=ss_options, progress=True)
    ss_seconds = time.time() - clock
    print(f"self-supervised M_s fitted in {ss_seconds:.0f} s; last losses {models['self-supervised'].structural_.losses_}",
          flush=True)

    # which M_s feeds the generator: chosen on held-out folds of the training stimuli
    names = list(models) if args.generator_structure == "folds" else [args.generator_structure]
    folds = {name: held_out_fold_outputs(models[name], ds.train, folds=5, extra_images=args.extra_images)
             for name in names}
    fold_scores = {name: fold_structure_score(f) for name, f in folds.items()}
    chosen = max(fold_scores, key=fold_scores.get)
    print("M_s on held-out training folds (pixel correlation):",
          ", ".join(f"{k} {v:.3f}" for k, v in fold_scores.items()), f"-> the generator uses {chosen}", flush=True)
    model = models[chosen]
    dec, ids = stages.decode(model, ds)

    backend = PixelBackend.from_pretrained(args.prior)
    cs = CSOptions(lowpass_factor=args.cs_lowpass, fraction=args.cs_fraction)
    sampling = SamplingOptions(steps=args.steps, guidance_scale=args.guidance_scale, min_structure_weight=args.cs_min_structure)
    grid = []
    if args.tune:
        cs, floor, grid = tune_cs(backend, folds[chosen], args.tune_lowpass, args.tune_fraction, sampling,
                                  min_structure_weights=args.tune_min_structure,
                                  reference_gains=args.tune_reference_gain)
        sampling = SamplingOptions(steps=args.steps, guidance_scale=args.guidance_scale, min_structure_weight=floor)
        print("CS validation on held-out training folds (mean pixel correlation):")
        for r in grid:
            print(f"  lowpass x{r['lowpass_factor']:<4} fraction {r['fraction']:<4} gain {r['reference_gain']:<4} "
                  f"min pi_s {r['min_structure_weight']:<4} -> {r['pixcorr']:.3f}")
        print(f"chosen: {cs.substitution()}, floor on pi_s {sampling.min_structure_weight}")

    reader = mnist_reader(args.mnist)
    gt = ds.test.images
    labels = np.array([DIGIT[int(l)] for l in ds.test.labels])

    def measure(imgs):
        return (paired_correlation(grey(imgs), grey(gt)).mean(), ssim28(gt, imgs).mean(),
                int((reader.predict(imgs) == labels).sum()))

    columns = {"stimulus": gt}
    per_seed = {}
    for name, m in models.items():
        s = as_uint8(m.decode(ds.test.averaged().fmri).s)
        per_seed[f"structure ({name})"] = [measure(s)]
        columns[f"structure ({name})"] = s
    timings = {}
    for method in ("semantic", "cs-equal", "cs", "gg"):
        t = time.time()
        enc = encoder if method == "gg" else None
        per_seed[method] = []
        for seed in args.seeds:
            imgs = generate_images(backend, dec.c_prime, dec.c, dec.s, dec.pi_c, method, sampling,
                               seed=seed * 1000, cs_options=cs, gg_options=GGOptions(), encoder=enc)
            imgs = resize_images(imgs, 28)
            per_seed[method].append(measure(imgs))
            if seed == args.seeds[0]:
                columns[method] = imgs
        timings[method] = (time.time() - t) / len(args.seeds)
    print(f"\nmean over seeds {args.seeds} (right digit: total over seeds, read by a classifier trained on MNIST)")
    print(f"{'method':28s} {'pixcorr':>8s} {'(min..max)':>14s} {'SSIM':>6s} {'right digit':>12s}  s/seed")
    summary = {}
    for name, rows in per_seed.items():
        r, s, right = (np.array(col) for col in zip(*rows))
        summary[name] = {"pixcorr": float(r.mean()), "pixcorr_per_seed": r.tolist(), "ssim": float(s.mean()),
                         "ssim_per_seed": s.tolist(), "right_digit": int(right.sum()), "out_of": 10 * len(rows)}
        print(f"{name:28s} {r.mean():8.3f} {f'({r.min():.3f}..{r.max():.3f})':>14s} {s.mean():6.3f} "
              f"{int(right.sum()):>6d}/{10 * len(rows):<5d}  {timings.get(name, 0):.1f}")
    print(f"pi_c per test sample: {np.round(dec.pi_c, 2).tolist()}")
    save_grid(columns, args.figure, row_labels=[f"{sid}\n{DIGIT[int(l)]}, pi_c {p:.2f}"
                                                for sid, l, p in zip(ids, ds.test.labels, dec.pi_c)])
    Path(args.figure).with_suffix(".json").write_text(json.dumps(
        {"prior": str(args.prior), "seeds": args.seeds, "guidance_scale": args.guidance_scale, "summary": summary,
         "structure_on_training_folds": fold_scores, "generator_structure": chosen, "self_supervised": ss_options,
         "self_supervised_seconds": ss_seconds, "cs": cs.to_dict(), "sampling": sampling.to_dict(), "tuning": grid,
         "pi_c": dec.pi_c.tolist(), "wall_seconds": time.time() - t0}, indent=2))
    print(f"grid -> {args.figure}; wall time {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
