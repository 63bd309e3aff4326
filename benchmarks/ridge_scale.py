"""Ridge at NSD scale: gess against scikit-learn and himalaya, side by side, one process per implementation.

    python benchmarks/ridge_scale.py --size small          # about a minute per implementation
    python benchmarks/ridge_scale.py --size nsd            # 9,000 trials x 15,724 voxels
    python benchmarks/ridge_scale.py --size nsd --decoder  # plus a full GESSDecoder.fit (768 + 12,288 targets)
    python benchmarks/ridge_scale.py --size nsd --decoder --latent   # ... with 36,864 latent targets

Synthetic arrays of NSD's shapes (z-scored voxels, targets linear in them plus noise).
Each implementation runs in its own process (peak RSS is its own); the parent prints
a table: seconds, the seconds as a multiple of the floor (the formulation's matrix-multiply
FLOPs at this machine's float32 GEMM rate, measured in the same run), peak RSS, and the
relative error of the predictions against a float64 reference of the same formulation.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

SIZES = {"tiny": (300, 600, 64, 0), "small": (2000, 4000, 768, 0), "nsd": (9000, 15724, 768, 0)}
GRID = np.logspace(1, 6, 10).tolist()


def data(n, p, t, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p), dtype=np.float32)
    W = rng.standard_normal((p, t), dtype=np.float32) / np.sqrt(p)
    Y = X @ W + rng.standard_normal((n, t), dtype=np.float32) * 2
    Xt = rng.standard_normal((200, p), dtype=np.float32)
    return X, Y, Xt


def gemm_rate(threads: int) -> float:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(3000, 3000), torch.randn(3000, 3000)
    a @ b
    start = time.perf_counter()
    for _ in range(3):
        a @ b
    return 3 * 2 * 3000**3 / (time.perf_counter() - start)


def floor_flops(impl: str, n: int, p: int, t: int) -> float:
    """FLOPs of the cheapest exact formulation (the kernel form when n < p), all at GEMM speed:
    the symmetric Gram matrix n^2 p (syrk), a Cholesky r^3/3, the solve 2 r^2 t, the weights 2 n p t,
    and, for the cross-validated fit, 10 alphas x the leave-one-out residuals 2 n r t."""
    r = min(n, p)
    gram = n * n * p if n <= p else p * p * n
    factor = r**3 / 3
    solve = 2 * r * r * t
    weights = 2 * n * p * t
    loo = 10 * 2 * n * r * t if "cv" in impl else 0
    return gram + factor + solve + weights + loo


def worker(impl: str, n: int, p: int, t: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    X, Y, Xt = data(n, p, t)
    _warm_up(impl)
    start = time.perf_counter()
    if impl == "gess-ridge":
        from gess.decoding import Ridge

        pred = Ridge(alpha=1000.0).fit(X, Y).predict(Xt)
    elif impl == "gess-ridge-cv":
        from gess.decoding import Ridge

        model = Ridge(alphas=GRID).fit(X, Y)
        pred = model.predict(Xt)
    elif impl == "sklearn-ridge":
        from sklearn.linear_model import Ridge as SkRidge

        pred = SkRidge(alpha=1000.0, solver="cholesky").fit(X, Y).predict(Xt)
    elif impl == "sklearn-ridgecv":
        from sklearn.linear_model import RidgeCV

        pred = RidgeCV(alphas=GRID, alpha_per_target=True).fit(X, Y).predict(Xt)
    elif impl == "himalaya-kernelridgecv":
        from himalaya.backend import set_backend
        from himalaya.kernel_ridge import KernelRidgeCV

        set_backend("torch")
        model = KernelRidgeCV(alphas=GRID, kernel="linear", solver_params={"n_targets_batch": 1000})
        pred = np.asarray(model.fit(X, Y).predict(Xt))
    elif impl == "himalaya-ridgecv":
        from himalaya.backend import set_backend
        from himalaya.ridge import RidgeCV as HRidgeCV

        set_backend("torch")
        pred = np.asarray(HRidgeCV(alphas=GRID, solver_params={"n_targets_batch": 1000}).fit(X, Y).predict(Xt))
    elif impl.startswith("reference"):
        from gess.decoding import Ridge

        grid = None if impl == "reference" else GRID
        pred = Ridge(alpha=1000.0, alphas=grid, dtype="float64").fit(X.astype(np.float64), Y.astype(np.float64)).predict(Xt)
    else:
        raise SystemExit(f"unknown implementation {impl}")
    seconds = time.perf_counter() - start
    np.save(os.environ["RIDGE_PRED"], np.asarray(pred, np.float64))
    return {"seconds": seconds, "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def _warm_up(impl: str) -> None:
    """Imports and first calls (thread pools, MKL) outside the timed region."""
    Xw, Yw, Xtw = data(50, 80, 3, seed=1)
    from gess.decoding import Ridge
    from sklearn.linear_model import Ridge as SkRidge

    Ridge(alpha=1.0).fit(Xw, Yw).predict(Xtw)
    SkRidge(alpha=1.0).fit(Xw, Yw)
    if impl.startswith("himalaya"):
        from himalaya.backend import set_backend
        from himalaya.kernel_ridge import KernelRidgeCV  # noqa: F401
        from himalaya.ridge import RidgeCV  # noqa: F401

        set_backend("torch")


def decoder_worker(n: int, p: int, t_sem: int, t_struct: int, threads: int, device: str = "cpu") -> dict:
    import torch

    from gess.decoding import GESSDecoder

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, p), dtype=np.float32)
    # targets made blockwise so that the generator itself stays light
    C = X[:, np.arange(t_sem) % p] + rng.standard_normal((n, t_sem), dtype=np.float32)
    S = np.empty((n, t_struct), np.float32)
    for start in range(0, t_struct, 1024):
        cols = np.arange(start, min(start + 1024, t_struct))
        S[:, cols] = X[:, cols % p] * 0.5 + rng.standard_normal((n, len(cols)), dtype=np.float32)
    GESSDecoder(n_neighbors=2, device=device).fit(X[:40, :50], C[:40], S[:40, :8].reshape(40, 8, 1, 1))  # warm-up
    start = time.perf_counter()
    model = GESSDecoder(alphas=GRID, device=device).fit(X, C, S.reshape(n, t_struct, 1, 1))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "stages": model.fit_seconds_,
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def run_child(args: list[str], pred_path: str | None = None) -> dict:
    env = {**os.environ, **({"RIDGE_PRED": pred_path} if pred_path else {})}
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", choices=list(SIZES), default="small")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--only", nargs="*", help="implementations to run (default: all that fit the size)")
    ap.add_argument("--decoder", action="store_true", help="also time a full GESSDecoder.fit")
    ap.add_argument("--latent", action="store_true", help="the decoder fit with 36,864 latent targets instead of 12,288")
    ap.add_argument("--worker", nargs=5, metavar=("IMPL", "N", "P", "T", "THREADS"), help=argparse.SUPPRESS)
    ap.add_argument("--decoder-worker", nargs=5, type=int, metavar=("N", "P", "TS", "TT", "THREADS"), help=argparse.SUPPRESS)
    ap.add_argument("--device", default="cpu", help="where GESSDecoder.fit runs (cpu, cuda)")
    args = ap.parse_args()
    if args.worker:
        impl, n, p, t, threads = args.worker
        print(json.dumps(worker(impl, int(n), int(p), int(t), int(threads))))
        return
    if args.decoder_worker:
        print(json.dumps(decoder_worker(*args.decoder_worker, device=args.device)))
        return

    n, p, t, _ = SIZES[args.size]
    rate = gemm_rate(args.threads)
    print(f"{n} trials x {p} voxels -> {t} targets, {args.threads} threads; float32 GEMM {rate / 1e9:.0f} GFLOP/s")
    single = ["gess-ridge", "sklearn-ridge"]
    cv = ["gess-ridge-cv", "sklearn-ridgecv", "himalaya-kernelridgecv", "himalaya-ridgecv"]
    impls = args.only or (single + cv)
    tmp = f"/tmp/ridge-bench-{os.getpid()}"
    refs = {}
    for ref in ("reference", "reference-cv"):
        if any((impl in cv) == (ref == "reference-cv") for impl in impls):
            run_child(["--worker", ref, str(n), str(p), str(t), str(args.threads)], f"{tmp}-{ref}.npy")
            refs[ref] = np.load(f"{tmp}-{ref}.npy")
    print(f"{'implementation':26s} {'seconds':>9s} {'x floor':>8s} {'peak RSS':>9s} {'rel. error':>11s}")
    for impl in impls:
        res = run_child(["--worker", impl, str(n), str(p), str(t), str(args.threads)], f"{tmp}-{impl}.npy")
        if "error" in res:
            print(f"{impl:26s} failed: {res['error']}")
            continue
        ref = refs.get("reference-cv" if impl in cv else "reference")
        pred = np.load(f"{tmp}-{impl}.npy")
        err = float(np.abs(pred - ref).max() / np.abs(ref).max()) if ref is not None else float("nan")
        floor = floor_flops(impl, n, p, t) / rate
        print(f"{impl:26s} {res['seconds']:9.2f} {res['seconds'] / floor:8.2f} {res['peak_rss_gib']:8.2f}G {err:11.2e}")
    if args.decoder:
        t_struct = 36864 if args.latent else 12288
        res = run_child(["--decoder-worker", str(n), str(p), "768", str(t_struct), str(args.threads), "--device", args.device])
        if "error" in res:
            print(f"GESSDecoder.fit failed: {res['error']}")
        else:
            stages = ", ".join(f"{k} {v:.1f} s" for k, v in res["stages"].items())
            print(f"GESSDecoder.fit on {args.device} ({n} x {p}; 768 semantic + {t_struct} structural targets; 10-alpha grid per target; "
                  f"cross-fitted gate): {res['seconds']:.1f} s, peak RSS {res['peak_rss_gib']:.2f} GiB ({stages})")


if __name__ == "__main__":
    main()
