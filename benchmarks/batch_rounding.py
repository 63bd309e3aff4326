"""How far the PNGs of one reconstruction differ between batch sizes (float rounding, not seeding).

    python benchmarks/batch_rounding.py [--batch-sizes 1 16] [--method cs] [--out /tmp/batch-rounding]

Runs the demo's config (its prior cached after `gess demo`) for one method at each batch size, each in its
own folder, and compares every PNG with the first batch size's: how many differ, in how many pixel values,
and by how many grey levels at most. Each image has its own seed, so the images are the same draws; another
batch size only sums the network's products in another order (~2e-7 in the floats), which moves a value
across a rounding boundary now and then.
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np

from gess.data.images import load_image
from gess.run import DEMO_CONFIG, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--method", default="cs")
    parser.add_argument("--out", type=Path, default=Path("/tmp/batch-rounding"))
    args = parser.parse_args()
    folders = {}
    for size in args.batch_sizes:
        cfg = copy.deepcopy(DEMO_CONFIG)
        cfg["methods"] = [args.method]
        cfg["sampling"]["batch_size"] = size
        start = time.time()
        run(cfg, args.out / f"batch{size}")
        folders[size] = args.out / f"batch{size}" / "recon" / args.method
        print(f"batch size {size}: {time.time() - start:.0f} s")
    first, *others = args.batch_sizes
    files = sorted(p.name for p in folders[first].glob("*.png"))
    for size in others:
        diffs = [np.abs(load_image(folders[first] / f).astype(int) - load_image(folders[size] / f).astype(int))
                 for f in files]
        print(json.dumps({"method": args.method, "batch_sizes": [first, size], "images": len(files),
                          "images_that_differ": sum(int(d.any()) for d in diffs),
                          "pixel_values_that_differ": int(sum(np.count_nonzero(d) for d in diffs)),
                          "pixel_values": int(sum(d.size for d in diffs)),
                          "largest_difference_in_grey_levels": int(max(d.max() for d in diffs))}))


if __name__ == "__main__":
    main()
