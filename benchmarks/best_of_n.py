"""Best-of-N by brain consistency: what N candidates per stimulus buy, and what they cost.

    python benchmarks/best_of_n.py digit69 --prior PRIOR_DIR [--tuned-from runs/digit69/recon/cs/manifest.json]
    python benchmarks/best_of_n.py demo

For every method, N_max candidates per stimulus are drawn once (candidate k of a stimulus
has the same seed whatever N, so the first N of N_max are what ``--candidates N`` draws);
each is scored by the decoders' encoding model against the measured response, and for
N = 1, 2, 4, ... the best of the first N is kept. Printed per method and N: mean pixel
correlation and SSIM with the stimuli (grey, at the stimuli's side; SSIM Gaussian sigma
1.5), the share a digit classifier reads right, and the mean brain match of the kept
images; with the seconds per candidate. Writes docs/figures/best_of_n_<experiment>.json.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from gess import api, stages
from gess.decoding.structural import StructureOptions
from gess.encoders import get_encoder
from gess.correlation import paired_correlation
from gess.evaluation.metrics import ssim as suite_ssim
from gess.generation import CSOptions, SamplingOptions, generate_images
from gess.generation.backends import load_backend
from gess.generation.sampling import candidate_seed

DIGIT69_LABELS = {1: 6, 2: 9}


def grey(images: np.ndarray) -> np.ndarray:
    x = images.astype(np.float32) / 255.0
    return x.mean(-1) if x.ndim == 4 else x


def measure(images: np.ndarray, truth: np.ndarray, reader, labels) -> dict:
    from gess.data.images import resize_images

    images = resize_images(images, truth.shape[1])
    t = lambda a: torch.from_numpy(np.repeat(grey(a)[:, None], 3, 1))
    return {"pixcorr": float(paired_correlation(grey(images), grey(truth)).mean()),
            "ssim": float(suite_ssim(t(truth), t(images)).mean()),
            "right_digit": float(np.mean(reader.predict(images) == labels))}


def digit69(args):
    from gess.data import load_mat
    from gess.evaluation.classification import mnist_reader

    dataset = load_mat(args.data)
    encoder = get_encoder("efficientnet-lite0")
    space = api.structural_space(dataset, StructureOptions(size=28))
    decoder = api.fit(dataset, encoder, space=space)
    labels = np.array([DIGIT69_LABELS[int(l)] for l in dataset.test.averaged().labels])
    sampling = SamplingOptions(steps=args.steps, guidance_scale=1.0)
    cs = CSOptions(preset="paper")
    if args.tuned_from:  # the CS settings `gess run configs/digit69.yaml` chose on held-out training folds
        tuned = json.loads(Path(args.tuned_from).read_text())[0]["tuned"]
        cs = replace(cs, lowpass_factor=tuned["lowpass_factor"], fraction=tuned["fraction"],
                     reference_gain=tuned.get("reference_gain", 1.0))  # manifests before the gain: 1
        sampling = replace(sampling, min_structure_weight=tuned["min_structure_weight"])
    return dataset, decoder, Path(args.prior), sampling, cs, mnist_reader(args.mnist), labels, {"group": None}


def demo(args):
    from gess.evaluation.classification import sklearn_digits_reader
    from gess.run import DEMO_CONFIG, _dataset
    from gess.runconfig import load_run_config

    cfg = load_run_config(DEMO_CONFIG)
    encoder = get_encoder(cfg.encoder)
    dataset, experiment = _dataset(cfg, encoder, None)
    decoder = stages.fit_decoders(dataset, Path(args.work) / "demo-model", encoder, {}, cfg.structure,
                                  experiment.augment_images())
    images, known = experiment.generator_images()
    prior = stages.cached_prior(images, encoder, cfg.generator.training, progress=False, known_embeddings=known)
    test = dataset.test.averaged()
    ids = test.stimulus_ids
    reader = sklearn_digits_reader(ids, test.images.shape[1])
    return dataset, decoder, prior, cfg.sampling, cfg.cs, reader, test.labels, {"group": experiment.group_of(ids)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=["digit69", "demo"])
    parser.add_argument("--data", default="../shared/data/digit69/digit69_28x28.mat")
    parser.add_argument("--mnist", default="../shared/data/mnist/mnist_minus_digit69_test.npz")
    parser.add_argument("--prior", help="digit69: the pixel prior (e.g. the one `gess run configs/digit69.yaml` trained)")
    parser.add_argument("--tuned-from", help="digit69: a cs manifest.json whose tuned CS settings to use")
    parser.add_argument("--methods", nargs="+", default=["semantic", "cs"])
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default="runs/best-of-n")
    parser.add_argument("--out", default="docs/figures")
    args = parser.parse_args()

    dataset, decoder, prior, sampling, cs, reader, labels, extra = (digit69 if args.experiment == "digit69" else demo)(args)
    print(f"trust model features: {decoder.metadata_.get('trust_features')}")
    decoded, ids = api.decode(decoder, dataset)
    fmri = api.test_fmri(dataset)
    truth = dataset.test.averaged().images
    backend = load_backend(prior)
    n, k_max = len(ids), args.candidates
    rows = np.repeat(np.arange(n), k_max)
    seeds = [candidate_seed(args.seed + i, k) for i in range(n) for k in range(k_max)]
    record = {"experiment": args.experiment, "n_stimuli": n, "candidates": k_max, "steps": sampling.steps,
              "trust_features": decoder.metadata_.get("trust_features"), "methods": {}}
    for method in args.methods:
        start = time.perf_counter()
        images = generate_images(backend, decoded.c_prime[rows], decoded.c[rows], decoded.s[rows], decoded.pi_c[rows],
                                 method, sampling, seeds=seeds, cs_options=cs)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        matches = api.brain_matches(decoder, images, fmri[rows]).reshape(n, k_max)
        scoring = time.perf_counter() - start
        images = images.reshape((n, k_max) + images.shape[1:])
        result = {"seconds_per_candidate": seconds / (n * k_max), "scoring_seconds_per_candidate": scoring / (n * k_max),
                  "by_n": {}}
        for count in [c for c in (1, 2, 4, 8, 16, 32) if c <= k_max]:
            best = matches[:, :count].argmax(1)
            kept = images[np.arange(n), best]
            scores = measure(kept, truth, reader, labels)
            scores["brain_match"] = float(matches[np.arange(n), best].mean())
            if extra["group"] is not None:
                inside = extra["group"] == "inside"
                scores["right_digit_inside"] = float(np.mean(reader.predict(kept[inside]) == labels[inside]))
            result["by_n"][count] = scores
            print(f"{method:<9} N={count:<3} " + "  ".join(f"{k} {v:.3f}" for k, v in scores.items()), flush=True)
        print(f"{method}: {result['seconds_per_candidate']:.2f} s per candidate, "
              f"{result['scoring_seconds_per_candidate'] * 1000:.1f} ms to score one", flush=True)
        record["methods"][method] = result
    out = Path(args.out) / f"best_of_n_{args.experiment}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
