"""Wall time of plain sampling, CS and GG side by side in one run (pixel backend, same seeds).

    python benchmarks/cs_gg_speed.py [--prior runs/digit69-prior] [--n 10] [--steps 50] [--repeats 3]

Without --prior, a randomly initialised prior of the default architecture is timed
(the cost does not depend on the weights). Prints seconds and the ratios to plain.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from gess.encoders import get_encoder
from gess.generation import CSOptions, GGOptions, SamplingOptions, generate_images
from gess.generation.backends.pixel import PixelBackend, PixelPrior


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prior", default=None)
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    encoder = get_encoder("efficientnet-lite0")
    backend = PixelBackend.from_pretrained(args.prior) if args.prior else PixelBackend(PixelPrior(encoder=encoder.spec().to_dict()))
    encoder = get_encoder(backend.encoder_spec)
    rng = np.random.default_rng(0)
    d = backend.prior.config["cond_dim"]
    c = rng.normal(size=(args.n, d)).astype(np.float32)
    s = rng.random((args.n, 28, 28, 1)).astype(np.float32)
    pi = rng.random(args.n).astype(np.float32)
    runs = {
        "plain (semantic)": dict(method="semantic"),
        "cs (paper preset)": dict(method="cs", cs_options=CSOptions(preset="paper")),
        "cs (released preset)": dict(method="cs", cs_options=CSOptions(preset="released")),
        "gg (default)": dict(method="gg", gg_options=GGOptions(), encoder=encoder),
    }
    times = {k: [] for k in runs}
    generate_images(backend, c[:2], c[:2], s[:2], pi[:2], "semantic", SamplingOptions(steps=2))  # warm-up
    for _ in range(args.repeats):  # interleaved, so drift hits every method alike
        for name, kw in runs.items():
            t = time.perf_counter()
            generate_images(backend, c, c, s, pi, sampling=SamplingOptions(steps=args.steps, batch_size=args.n), **kw)
            times[name].append(time.perf_counter() - t)
    base = np.median(times["plain (semantic)"])
    print(f"{args.n} images x {args.steps} steps, batch {args.n}, {torch.get_num_threads()} threads, median of {args.repeats}")
    for name, ts in times.items():
        print(f"{name:22s} {np.median(ts):7.2f} s   ratio to plain {np.median(ts) / base:5.2f}")


if __name__ == "__main__":
    main()
