"""How faithfully does a pixel prior draw the image an embedding describes? Chooses the guidance scale.

    python benchmarks/prior_fidelity.py --demo [--steps 2000]            # trains the demo's prior (cached)
    python benchmarks/prior_fidelity.py --demo --heldout-share 0.2 --set augment=false   # held-out generator images
    python benchmarks/prior_fidelity.py --prior runs/digit69-mnist-prior --images ../shared/data/digit69/digit69_28x28.mat

Conditions the prior on the TRUE embeddings of images it may learn from (the demo's
generator images, or a dataset's training stimuli; never a test stimulus), samples
one image each, and reports per guidance scale the pixel correlation with the
conditioning image and the share a digit classifier reads as its digit. The scale
that draws the most faithful images is the one to use for ``semantic`` and CS.

``--heldout-share`` (demo only) keeps a seeded share of the generator images out of the
prior's training and conditions on those instead: fidelity to embeddings it never saw,
still without any test stimulus. ``--set NAME=JSON`` overrides a training option.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--demo", action="store_true", help="the demo's prior and generator images")
    ap.add_argument("--steps", type=int, default=None, help="with --demo: prior training steps (default: the demo's)")
    ap.add_argument("--image-size", type=int, default=None, help="with --demo: the prior's side (default: the demo's)")
    ap.add_argument("--heldout-share", type=float, default=0.0, help="with --demo: share of generator images held out")
    ap.add_argument("--set", action="append", default=[], help="with --demo: a training option, NAME=JSON (repeatable)")
    ap.add_argument("--prior", help="a trained pixel prior directory")
    ap.add_argument("--images", help="a dataset: its training stimuli are the conditioning images")
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--sampling-steps", type=int, default=25)
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0, 1.5, 2.0, 3.0, 5.0])
    args = ap.parse_args()
    if args.heldout_share and not (args.demo and 0 < args.heldout_share < 1):
        ap.error("--heldout-share needs --demo and a share strictly between 0 and 1")
    from gess import stages
    from gess.encoders import get_encoder
    from gess.correlation import paired_correlation
    from gess.generation import SamplingOptions, generate_images
    from gess.generation.backends.pixel import PixelBackend

    encoder = get_encoder("efficientnet-lite0")
    t0 = time.time()
    if args.demo:
        import copy

        from gess.data.simulated import simulate_experiment
        from gess.evaluation.classification import sklearn_digits_reader
        from gess.run import DEMO_CONFIG
        from gess.runconfig import load_run_config

        config = copy.deepcopy(DEMO_CONFIG)
        if args.steps:
            config["generator"]["training"]["steps"] = args.steps
        if args.image_size:
            config["generator"]["training"]["image_size"] = args.image_size
        import json

        for item in args.set:
            name, value = item.split("=", 1)
            config["generator"]["training"][name] = json.loads(value)
        cfg = load_run_config(config)
        pool, model = cfg.simulation()
        exp = simulate_experiment(pool, model, lambda im: stages.encode_images(encoder, im), cfg.split.clusters,
                                  cfg.split.method, cfg.split.inside_test, cfg.split.outside_test, cfg.split.seed)
        images, embeddings = exp.generator_images()
        ids = [s for s in exp.world_ids if s not in set(exp.dataset.test.stimulus_ids)]
        labels = np.array([int(str(s)[5]) for s in ids])
        if args.heldout_share:
            order = np.random.default_rng(1).permutation(len(images))
            held = order[:int(round(args.heldout_share * len(images)))]
            fitted = np.setdiff1d(order, held)
            prior = stages.cached_prior(images[fitted], encoder, cfg.generator.training, known_embeddings=embeddings[fitted])
            images, embeddings, labels = images[held], embeddings[held], labels[held]
        else:
            prior = stages.cached_prior(images, encoder, cfg.generator.training, known_embeddings=embeddings)
        reader = sklearn_digits_reader(exp.dataset.test.stimulus_ids)
    else:
        from gess.data import load_mat
        from gess.evaluation.classification import mnist_reader

        train = load_mat(args.images).train
        images, embeddings = train.images, stages.encode_images(encoder, train.images)
        labels, reader, prior = None, None, args.prior
        if train.labels is not None and set(np.unique(train.labels)) <= {1, 2}:  # digit69: 1 six, 2 nine
            labels = np.where(train.labels == 1, 6, 9)
            reader = mnist_reader("../shared/data/mnist/mnist_minus_digit69_test.npz")
    print(f"prior ready in {time.time() - t0:.0f} s; conditioning on {min(args.n, len(images))} images"
          + (" it never learnt from" if args.heldout_share else " it learnt from"))
    pick = np.random.default_rng(0).choice(len(images), min(args.n, len(images)), replace=False)
    backend = PixelBackend.from_pretrained(prior)
    side = backend.latent_shape()[-1]
    blank = np.zeros((len(pick), side, side, backend.latent_shape()[0]), np.float32)
    e = embeddings[pick]
    print(f"{'guidance':>8s} {'pixcorr':>8s} {'right digit':>12s}")
    from gess.data.images import resize_images

    truth = images[pick].astype(np.float32).mean(-1)
    for scale in args.scales:
        drawn = generate_images(backend, e, e, blank, np.ones(len(pick)), "semantic",
                            SamplingOptions(steps=args.sampling_steps, guidance_scale=scale), seed=0, progress=False)
        drawn = resize_images(drawn, images.shape[1])
        r = paired_correlation(drawn.astype(np.float32).mean(-1), truth).mean()
        right = f"{(reader.predict(drawn) == labels[pick]).mean():.2f}" if reader is not None else "-"
        print(f"{scale:8.1f} {r:8.3f} {right:>12s}", flush=True)


if __name__ == "__main__":
    main()
