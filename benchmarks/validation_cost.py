"""What input validation costs on the hot path: checks of an NSD-size voxel matrix against one decoder fit.

    python benchmarks/validation_cost.py            # 9,000 trials x 15,724 voxels, float32, memory-mapped
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=9000)
    ap.add_argument("--voxels", type=int, default=15724)
    args = ap.parse_args()
    from gess.data.dataset import validate_fmri, voxel_statistics
    from gess.decoding import Ridge

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fmri.npy"
        mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(args.trials, args.voxels))
        for start in range(0, args.trials, 1000):
            mm[start:start + 1000] = rng.standard_normal((min(1000, args.trials - start), args.voxels), dtype=np.float32)
        mm.flush()
        X = np.load(path, mmap_mode="r")
        start = time.perf_counter()
        validated = validate_fmri(X, path, "fmri")
        check = time.perf_counter() - start
        start = time.perf_counter()
        voxel_statistics(validated)
        stats = time.perf_counter() - start
        Y = rng.standard_normal((args.trials, 768), dtype=np.float32)
        start = time.perf_counter()
        Ridge(alpha=1000.0).fit(np.asarray(validated, np.float32), Y)
        fit = time.perf_counter() - start
    print(f"{args.trials} x {args.voxels}: validation (finite, numeric, shape) {check:.2f} s, voxel statistics "
          f"{stats:.2f} s, one single-alpha ridge fit (768 targets) {fit:.1f} s: validation is "
          f"{100 * check / fit:.1f}% of one fit")


if __name__ == "__main__":
    main()
