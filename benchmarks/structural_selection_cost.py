"""What ``structural_voxels="auto"`` costs at NSD's size: the nested choice of M_s's voxel count and alpha.

    python benchmarks/structural_selection_cost.py [--trials 27000] [--voxels 15000] [--side 64] [--stimuli 9000]

Synthetic z-scored voxels (three repeats per stimulus, as NSD's) whose first tenth answers to smooth
random 3-channel targets; prints the wall time of ``gess.decoding.encoding.chosen_structural_selection``
(at most ``SELECTION_TRIALS`` trials take part, whole stimuli), what it chose, and the peak memory.
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def main():
    from gess.decoding.encoding import SELECTION_TRIALS, chosen_structural_selection

    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=27000)
    ap.add_argument("--voxels", type=int, default=15000)
    ap.add_argument("--side", type=int, default=64)
    ap.add_argument("--stimuli", type=int, default=9000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    groups = np.arange(args.trials) % args.stimuli
    coarse = rng.random((args.stimuli, 8, 8, 3)).astype(np.float32)
    structure = coarse.repeat(args.side // 8, 1).repeat(args.side // 8, 2)[groups]
    z = rng.standard_normal((args.trials, args.voxels), dtype=np.float32)
    driven = args.voxels // 10
    z[:, :driven] += coarse.reshape(args.stimuli, -1)[groups] @ rng.standard_normal((192, driven), dtype=np.float32) * 0.1
    t0 = time.perf_counter()
    chosen = chosen_structural_selection(z, structure, groups=groups)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"{args.trials} trials x {args.voxels} voxels, targets {args.side}x{args.side}x3: {seconds:.1f} s on "
          f"{chosen['trials']} trials (cap {SELECTION_TRIALS}); chose {chosen['voxels'] or 'every'} voxels, alpha "
          f"{chosen['alpha']:g}; peak RSS {peak:.1f} GB")


if __name__ == "__main__":
    main()
