"""Score a `gess run configs/digit69.yaml` output the way issue targets and docs/generation.md's digit69 table do.

    python benchmarks/score_digit69_run.py runs/digit69 [--data ../shared/data/digit69/digit69_28x28.mat]

Reads each method's ``recon/<method>/<stimulus_id>.png`` (what the user's run wrote), and reports per
method the mean per-image pixel correlation and SSIM (Gaussian, sigma 1.5) at the stimuli's 28 px, and
the digits a classifier trained on 20,000 MNIST digits (none a digit69 test stimulus) reads right.
The run's own metrics.json follows its protocol (the paper's: 425 px); this is the 28 px reading.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from digit69_methods import DIGIT, grey, ssim28  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--data", default="../shared/data/digit69/digit69_28x28.mat")
    ap.add_argument("--mnist", default="../shared/data/mnist/mnist_minus_digit69_test.npz")
    ap.add_argument("--json", type=Path, help="also write the table here")
    args = ap.parse_args()
    from gess.data import load_dataset
    from gess.data.images import load_image_folder, resize_images
    from gess.evaluation.classification import mnist_reader
    from gess.evaluation.identification import paired_correlation

    test = load_dataset(args.data).test.averaged()
    gt, ids = test.images, list(test.stimulus_ids)
    labels = np.array([DIGIT[int(label)] for label in test.labels])
    reader = mnist_reader(args.mnist)
    table = {}
    print(f"{'method':12s} {'pixcorr':>8s} {'SSIM':>6s} {'right digit':>12s}")
    for method_dir in sorted(p for p in (args.run / "recon").iterdir() if p.is_dir() and any(p.glob("*.png"))):
        images, found = load_image_folder(method_dir)[:2]
        order = {str(s): i for i, s in enumerate(found)}
        missing = set(map(str, ids)) - set(order)
        if missing:
            print(f"{method_dir.name:12s} skipped: {len(missing)} of {len(ids)} test stimuli have no reconstruction")
            continue
        rec = resize_images(images[[order[str(s)] for s in ids]], gt.shape[1])
        r, s = paired_correlation(grey(rec), grey(gt)).mean(), ssim28(gt, rec).mean()
        right = int((reader.predict(rec) == labels).sum())
        table[method_dir.name] = {"pixcorr": float(r), "ssim": float(s), "right_digit": right, "out_of": len(ids)}
        print(f"{method_dir.name:12s} {r:8.3f} {s:6.3f} {right:>9d}/{len(ids)}")
    if args.json:
        args.json.write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()
