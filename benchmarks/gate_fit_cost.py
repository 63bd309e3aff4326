"""What each gate costs to fit and to apply, at a size you name (default: one NSD subject with CLIP).

    python benchmarks/gate_fit_cost.py [--trials 9000] [--voxels 15724] [--dim 768] [--test 1000]
                                       [--gates prediction-knn brain-residual]

Synthetic data of the given shape (random voxels and embeddings: the gates' cost depends on the shape
only). Per gate: seconds to fit (its cross-fitted reference included), seconds to give pi_c for the
test rows, and the process's peak resident memory after it (cumulative: run one gate per call to
read one gate's peak). Measured results go to docs/gating.md.
"""
from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np
import torch

from gess.decoding.gating import GATES, GateInputs, make_gate


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=9000)
    ap.add_argument("--voxels", type=int, default=15724)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--gates", nargs="+", default=["prediction-knn", "brain-residual"], choices=list(GATES))
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    z = rng.standard_normal((args.trials, args.voxels), dtype=np.float32)
    emb = rng.standard_normal((args.trials, args.dim), dtype=np.float32)
    cross = emb + rng.standard_normal(emb.shape, dtype=np.float32)
    test = GateInputs(rng.standard_normal((args.test, args.voxels), dtype=np.float32),
                      rng.standard_normal((args.test, args.dim), dtype=np.float32))
    print(f"{args.trials} trials x {args.voxels} voxels, embeddings {args.dim}-d, {args.test} test rows; "
          f"{torch.get_num_threads()} torch threads on {os.cpu_count()} CPUs; data {peak_gib():.1f} GiB peak so far")
    print(f"{'gate':16s} {'fit s':>8s} {'pi_c s':>8s} {'peak GiB':>9s}")
    for name in args.gates:
        gate = make_gate(name)
        t0 = time.perf_counter()
        gate.fit(GateInputs(z, emb), emb, GateInputs(z, cross))
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        gate.pi_c(test)
        print(f"{name:16s} {fit_s:8.1f} {time.perf_counter() - t0:8.2f} {peak_gib():9.1f}", flush=True)


if __name__ == "__main__":
    main()
