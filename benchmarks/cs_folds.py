"""CS settings on held-out folds of digit69's TRAINING stimuli, scored at 28 px (the test set never enters).

    python benchmarks/cs_folds.py runs/digit69 "fraction=0.9,reference_gain=1" "fraction=0.7,reference_gain=2" \
        [--floor 0.2] [--method cs] [--mean-of 8] [--blend-structure 0.1,0.2]
        [--data ../shared/data/digit69/digit69_28x28.mat] [--json per_stimulus.json]

Reads the decoders a ``gess run configs/digit69.yaml`` fitted (``RUN/model``) and the prior its ``cs``
reconstructions name in their manifest; refits the decoders without each of 5 folds of the training
stimuli (``gess.folds.held_out_fold_outputs``, what ``cs: {tune: true}`` uses) and reconstructs the
held-out stimuli once per setting. A setting is ``key=value`` pairs: CS fields (``lowpass_factor``,
``fraction``, ``reference_gain``, ``lowpass_kernel``, ``noise_at``, ...) and sampling fields
(``steps``, ``guidance_scale``, ``min_structure_weight``). Prints pixel correlation and Gaussian SSIM
(sigma 1.5) at 28 px, the mean over the 90 held-out stimuli, one sampling seed (the first candidate's; with
``--mean-of N`` also of the pixelwise mean of the first 2, 4, ..., N candidates; with ``--blend-structure`` also
of the kept reconstruction blended pixelwise with the fold's structural decode, to see whether a post-hoc blend
would add what CS leaves out). ``--json`` writes each setting's per-stimulus pixel correlation and SSIM of its
largest N, for paired comparisons between runs (the same 90 stimuli in the same order).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from digit69_methods import as_uint8, grey, ssim28  # noqa: E402


def parse_setting(text: str, cs, sampling):
    """'a=1,b=x' -> (CSOptions, SamplingOptions) with those fields replaced."""
    cs_names, sampling_names = {f.name for f in fields(cs)}, {f.name for f in fields(sampling)}
    cs_changes, sampling_changes = {}, {}
    for pair in filter(None, text.split(",")):
        key, _, value = pair.partition("=")
        target = cs_changes if key in cs_names else sampling_changes if key in sampling_names else None
        if target is None:
            raise SystemExit(f"unknown setting {key!r}: not a CSOptions or SamplingOptions field")
        target[key] = yaml.safe_load(value)
    return replace(cs, **cs_changes), replace(sampling, **sampling_changes)


def run_prior(run: Path, recon: str = "cs*") -> Path:
    """The generator a run's reconstructions in ``recon/<recon>`` name in their manifest."""
    manifest = next((run / "recon").glob(f"{recon}/manifest.json"))
    return Path(json.loads(manifest.read_text())[0]["settings"]["generator"])


def run_folds(run: Path, data: str, prior: Path | None = None, keep_models: bool = False):
    """(5 held-out folds of the training stimuli refitted with the run's decoder settings, the run's prior)."""
    from gess.data import load_dataset
    from gess.decoding import GESSDecoder
    from gess.folds import held_out_fold_outputs
    from gess.generation.backends.pixel import PixelBackend

    prior = prior or run_prior(run)
    backend = PixelBackend.from_pretrained(prior)
    t0 = time.time()
    folds = held_out_fold_outputs(GESSDecoder.load(run / "model"), load_dataset(data).train, 5, autoencoder=backend,
                                  keep_models=keep_models)
    print(f"5 folds of {sum(len(f['c']) for f in folds)} training stimuli fitted in {time.time() - t0:.0f} s; "
          f"prior {prior}", flush=True)
    return folds, backend


def main():
    from gess.data.images import resize_images
    from gess.correlation import paired_correlation
    from gess.generation import CSOptions, SamplingOptions, generate_images
    from gess.generation.sampling import candidate_mean, candidate_seed

    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("settings", nargs="+")
    ap.add_argument("--floor", type=float, default=0.2, help="floor on pi_s (cs), unless a setting sets min_structure_weight")
    ap.add_argument("--method", default="cs")
    ap.add_argument("--data", default="../shared/data/digit69/digit69_28x28.mat")
    ap.add_argument("--prior", type=Path, help="default: the generator the run's cs manifest names")
    ap.add_argument("--mean-of", type=int, default=1, help="draw this many candidates per stimulus (candidate_seed) "
                    "and also score the pixelwise mean of the first 2, 4, ... of them (candidate_reduction mean)")
    ap.add_argument("--blend-structure", default="", help="comma-separated weights w: also score (1 - w) x the kept "
                    "reconstruction + w x the structural decode, pixelwise at 28 px (a post-hoc blend)")
    ap.add_argument("--json", type=Path, help="write {setting: {pixcorr: [...], ssim: [...]}} per stimulus")
    args = ap.parse_args()
    folds, backend = run_folds(args.run, args.data, args.prior)
    target = np.concatenate([f["target"] for f in folds])
    decoded = np.concatenate([f["s"] for f in folds])
    weights = [float(w) for w in filter(None, args.blend_structure.split(","))]
    structure = resize_images(as_uint8(decoded), 28).astype(np.float64) if weights else None  # once, not per setting
    print(f"spread (std over pixels and stimuli): structural decodes {decoded.std():.3f}, stimuli {(target / 255).std():.3f}")
    per_stimulus = {}
    base_cs = CSOptions(lowpass_factor=1.5, fraction=0.9)
    base_sampling = SamplingOptions(guidance_scale=1.0, min_structure_weight=args.floor)
    for text in args.settings:
        cs, sampling = parse_setting(text, base_cs, base_sampling)
        t0 = time.time()
        drawn = [np.concatenate([generate_images(backend, f["c_prime"], f["c"], f["s"], f["pi_c"], args.method, sampling,
                                                 seeds=[candidate_seed(i, k) for i in range(len(f["c"]))], cs_options=cs)
                                 for f in folds]) for k in range(args.mean_of)]
        counts = sorted({1, args.mean_of} | {2 ** j for j in range(1, 8) if 2 ** j < args.mean_of})
        scores = []
        for n in counts:
            kept = drawn[0] if n == 1 else np.stack([candidate_mean(c) for c in np.stack(drawn[:n], 1)])
            rec = resize_images(kept, 28)
            per_pixcorr, per_ssim = paired_correlation(grey(rec), grey(target)), ssim28(target, rec)
            scores.append((n, per_pixcorr.mean(), per_ssim.mean()))
        per_stimulus[text] = {"n": counts[-1], "pixcorr": per_pixcorr.tolist(), "ssim": per_ssim.tolist()}
        print(f"{text:60s} " + "  ".join(f"{'' if n == 1 else f'mean of {n}: '}pixcorr {r:.3f}  SSIM {q:.3f}"
                                          for n, r, q in scores) + f"  ({time.time() - t0:.0f} s)", flush=True)
        for weight in weights:
            blended = np.rint(np.clip((1 - weight) * rec.astype(np.float64) + weight * structure, 0, 255)).astype(np.uint8)
            print(f"  blended with the structural decode, w {weight:.2f} (mean of {counts[-1]}): pixcorr "
                  f"{paired_correlation(grey(blended), grey(target)).mean():.3f}  SSIM {ssim28(target, blended).mean():.3f}",
                  flush=True)
    if args.json:
        args.json.write_text(json.dumps(per_stimulus))


if __name__ == "__main__":
    main()
