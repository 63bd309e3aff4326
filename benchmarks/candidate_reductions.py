"""What to keep of N candidates, on held-out folds of digit69's TRAINING stimuli (the test set never enters).

    python benchmarks/candidate_reductions.py runs/digit69 "fraction=0.7,reference_gain=2" [--floor 0.3] \
        [--candidates 16] [--method cs] [--data ../shared/data/digit69/digit69_28x28.mat] [--json F]

Refits the decoders of a ``gess run configs/digit69.yaml`` (``RUN/model``) without each of 5 folds of the
training stimuli, draws N candidates per held-out stimulus (``candidate_seed``) with one CS setting (the
``key=value`` pairs of ``cs_folds.py``) and scores, at 28 px, what each way of keeping them gives:

- ``best``: the candidate whose predicted voxel response (the fold's encoding model) matches the measured one best;
- ``mean``: the pixelwise mean of the first n (what ``candidate_reduction: mean`` keeps);
- ``weighted T``: the mean weighted by softmax(brain match / T) over the first n, the match z-scored per stimulus
  (an importance-sampled posterior mean: the prior's draws weighed by how well they explain the response);
- ``top k``: the mean of the k candidates of the first n that match the response best.

Prints pixel correlation and Gaussian SSIM (sigma 1.5), the mean over the 90 held-out stimuli.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from cs_folds import parse_setting, run_folds  # noqa: E402
from digit69_methods import grey, ssim28  # noqa: E402


def weighted_mean(stack: np.ndarray, matches: np.ndarray, temperature: float) -> np.ndarray:
    """Candidates (n, H, W, C) averaged with softmax weights of their z-scored brain matches / temperature."""
    z = (matches - matches.mean()) / (matches.std() + 1e-12)
    w = np.exp((z - z.max()) / temperature)
    w /= w.sum()
    return np.rint(np.tensordot(w, stack.astype(np.float64), axes=1)).clip(0, 255).astype(np.uint8)


def reductions(stack: np.ndarray, matches: np.ndarray, n: int, temperatures, tops) -> dict[str, np.ndarray]:
    """Every reduction of the first n candidates of one stimulus."""
    from gess.generation.sampling import candidate_mean

    s, m = stack[:n], matches[:n]
    out = {"best": s[int(m.argmax())], "mean": candidate_mean(s)}
    for t in temperatures:
        out[f"weighted {t:g}"] = weighted_mean(s, m, t)
    for k in tops:
        if k < n:
            top = np.argsort(-m)[:k]
            out[f"top {k}"] = candidate_mean(s[top])
    return out


def main():
    from gess.api import candidate_scores
    from gess.data.images import resize_images
    from gess.correlation import paired_correlation
    from gess.generation import CSOptions, SamplingOptions, generate_images
    from gess.generation.sampling import candidate_seed

    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("setting")
    ap.add_argument("--floor", type=float, default=0.3)
    ap.add_argument("--method", default="cs")
    ap.add_argument("--candidates", type=int, default=16)
    ap.add_argument("--temperatures", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0])
    ap.add_argument("--tops", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--data", default="../shared/data/digit69/digit69_28x28.mat")
    ap.add_argument("--prior", type=Path, help="default: the generator the run's cs manifest names")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    folds, backend = run_folds(args.run, args.data, args.prior, keep_models=True)
    cs, sampling = parse_setting(args.setting, CSOptions(lowpass_factor=1.5, fraction=0.9),
                                 SamplingOptions(guidance_scale=1.0, min_structure_weight=args.floor))
    counts = sorted({1, args.candidates} | {2 ** j for j in range(1, 8) if 2 ** j < args.candidates})
    kept: dict[tuple[str, int], list] = {}
    targets = []
    t0 = time.time()
    for fold in folds:
        n, most = len(fold["c"]), args.candidates
        rows = [(i, k) for i in range(n) for k in range(most)]
        idx = np.array([i for i, _ in rows])
        images = generate_images(backend, fold["c_prime"][idx], fold["c"][idx], fold["s"][idx], fold["pi_c"][idx],
                                 args.method, sampling, seeds=[candidate_seed(i, k) for i, k in rows], cs_options=cs)
        _, matches = candidate_scores(fold["decoder"], images, np.repeat(fold["fmri"], most, axis=0))
        stacks, matches = images.reshape(n, most, *images.shape[1:]), np.asarray(matches).reshape(n, most)
        for i in range(n):
            for c in counts:
                for name, image in reductions(stacks[i], matches[i], c, args.temperatures, args.tops).items():
                    kept.setdefault((name, c), []).append(image)
        targets.append(fold["target"])
    target = np.concatenate(targets)
    print(f"{len(target)} held-out stimuli x {args.candidates} candidates drawn and scored in {time.time() - t0:.0f} s")
    record = {"setting": args.setting, "floor": args.floor, "method": args.method, "scores": {}}
    for (name, c), images in sorted(kept.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        rec = resize_images(np.stack(images), 28)
        r, q = paired_correlation(grey(rec), grey(target)).mean(), ssim28(target, rec).mean()
        record["scores"][f"{name} of {c}"] = {"pixcorr": float(r), "ssim": float(q)}
        print(f"{name:14s} of {c:3d}: pixcorr {r:.3f}  SSIM {q:.3f}")
    if args.json:
        args.json.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
