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
import re
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
    from gess.correlation import paired_correlation

    test = load_dataset(args.data).test.averaged()
    gt, ids = test.images, list(test.stimulus_ids)
    labels = np.array([DIGIT[int(label)] for label in test.labels])
    reader = mnist_reader(args.mnist)
    table = {}
    print(f"{'method':12s} {'pixcorr':>8s} {'SSIM':>6s} {'right digit':>12s}")
    metrics = args.run / "metrics.json"  # the run's own list of what it made: older folders in the directory stay out
    made = set(json.loads(metrics.read_text())["methods"]) if metrics.is_file() else None
    for method_dir in sorted(p for p in (args.run / "recon").iterdir() if p.is_dir() and any(p.glob("*.png"))
                             and (made is None or p.name in made)):
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
    means = seed_means(table)
    if means:
        print(f"\nmean over seeds\n{'method':12s} {'pixcorr':>8s} {'SSIM':>6s}  right digit per seed")
        for method, m in means.items():
            print(f"{method:12s} {m['pixcorr']:8.3f} {m['ssim']:6.3f}  {', '.join(map(str, m['right_digit']))} of {m['out_of']}")
        table["mean over seeds"] = means
    if args.json:
        args.json.write_text(json.dumps(table, indent=1) + "\n")


def seed_means(table: dict) -> dict:
    """A run with several seeds names its folders ``<method>-seed<k>``: each method's mean over them."""
    groups = {}
    for name, row in table.items():
        match = re.fullmatch(r"(.+)-seed(\d+)", name)
        if match:
            groups.setdefault(match.group(1), []).append(row)
    return {method: {"pixcorr": float(np.mean([r["pixcorr"] for r in rows])), "ssim": float(np.mean([r["ssim"] for r in rows])),
                     "right_digit": [r["right_digit"] for r in rows], "out_of": rows[0]["out_of"], "seeds": len(rows)}
            for method, rows in groups.items()}


if __name__ == "__main__":
    main()
