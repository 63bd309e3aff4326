"""digit69 (real fMRI): ridge M_s against the self-supervised M_s with and without early stopping.

    python benchmarks/selfsupervised_early_stopping.py --without

The structural decoders only, fitted as benchmarks/digit69_methods.py fits them (``gess.stages.fit``,
28 px grey blurred targets, the MNIST digits less digit69's test stimuli as extra images, the test
fMRI in the fMRI cycle). Prints, on the 10 test digits (averaged test fMRI), the mean per-image
pixel correlation and SSIM at 28 px of each M_s, and the self-supervised M_s's early-stopping
record (held-out training pairs, chosen step, held-out loss at the start and at the chosen step).
``--without`` also fits it with ``validation_fraction=0`` (training's last weights, as before).
Writes every figure to ``--out`` (JSON).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digit69_methods import as_uint8, grey, ssim28  # noqa: E402

from gess import stages  # noqa: E402
from gess.data import load_mat  # noqa: E402
from gess.decoding import StructuralSpace  # noqa: E402
from gess.encoders import get_encoder  # noqa: E402
from gess.correlation import paired_correlation  # noqa: E402


def score(model, ds) -> dict:
    """Pixel correlation and SSIM of M_s's output on the test digits, at 28 px."""
    s = as_uint8(model.decode(ds.test.averaged().fmri).s)
    r = paired_correlation(grey(s), grey(ds.test.images))
    return {"pixcorr": float(r.mean()), "pixcorr_per_digit": r.tolist(), "ssim": float(ssim28(ds.test.images, s).mean())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/digit69/digit69_28x28.mat")
    ap.add_argument("--extra-images", default="../shared/data/mnist/mnist_minus_digit69_test.npz")
    ap.add_argument("--ss", default="{}", help="self-supervised M_s options as JSON")
    ap.add_argument("--without", action="store_true", help="also fit without early stopping (validation_fraction 0)")
    ap.add_argument("--out", default="runs/selfsupervised_early_stopping.json")
    args = ap.parse_args()
    ds = load_mat(args.data)
    encoder = get_encoder("efficientnet-lite0")
    space = StructuralSpace(28, grey=True)
    options = json.loads(args.ss)
    variants = {"self-supervised, early stopping": options}
    if args.without:
        variants["self-supervised, last step"] = {**options, "validation_fraction": 0.0}
    results = {"ridge": score(stages.fit(ds, encoder, space=space), ds)}
    for name, opts in variants.items():
        clock = time.time()
        model = stages.fit(ds, encoder, space=space, extra_images=args.extra_images,
                           structural_decoder="self-supervised", self_supervised=opts, progress=True)
        results[name] = {**score(model, ds), "seconds": time.time() - clock, "options": opts,
                         "validation": model.structural_.validation_, "losses": model.structural_.losses_}
        v = model.structural_.validation_
        print(f"{name}: pixcorr {results[name]['pixcorr']:.3f}", flush=True)
        if v.get("held_out_pairs"):
            print(f"  {v['held_out_pairs']} held-out pairs; chosen step {v['chosen_step']} "
                  f"(held-out loss {v['start_loss']:.5f} at the ridge start, {v['chosen_loss']:.5f} chosen)", flush=True)
    print(f"\n{'M_s':34s} {'pixcorr':>8s} {'SSIM':>6s} {'seconds':>8s}")
    for name, r in results.items():
        print(f"{name:34s} {r['pixcorr']:8.3f} {r['ssim']:6.3f} {r.get('seconds', 0):8.0f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
