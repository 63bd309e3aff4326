"""Does the digit prior draw the digit its embedding describes? Held-out MNIST digits, read by a classifier.

    python benchmarks/prior_fidelity_mnist.py --name base                        # today's defaults
    python benchmarks/prior_fidelity_mnist.py --name white64 --set conditioning_components=64 --set steps=6000

Splits the MNIST pool (MNIST less digit69's test stimuli) once, seeded: ``--heldout`` digits
never seen in training (the fidelity test), ``--train`` digits the prior learns from, and
20,000 others for the readers. Trains a pixel prior with the given ``TrainOptions``
(resumable, under ``--runs/<name>``), conditions it on the TRUE EfficientNet-Lite0
embeddings of the held-out digits, draws one image each, and reports per guidance scale
the share read as the right digit by two readers trained on other MNIST digits: the
pixel logistic regression gess's reports use, and an RBF support-vector classifier
and a small CNN (the strongest). The readers' accuracy on the real held-out
digits is printed first: the ceiling. Results are appended as one JSON line to
``--runs/prior_fidelity_mnist.jsonl``.

The guidance scale and the training settings are chosen on a VALIDATION part of the
training digits (``--select-on validation``, the default), never on the held-out digits.
"""
from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np

POOL = "../shared/data/mnist/mnist_minus_digit69_test.npz"


def split_pool(n_total: int, n_heldout: int, n_train: int, n_validation: int, n_reader: int, seed: int = 0):
    order = np.random.default_rng(seed).permutation(n_total)
    a, b, c = n_heldout, n_heldout + n_train, n_heldout + n_train + n_validation
    return order[:a], order[a:b], order[b:c], order[c:c + n_reader]


def cnn_reader(images: np.ndarray, labels: np.ndarray, epochs: int = 3, seed: int = 0):
    """A small convolutional digit classifier (~99% on real MNIST), trained on the reader digits; returns predict."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1),
                        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))

    def tensor(x):
        x = torch.from_numpy(np.asarray(x, np.float32).reshape(len(x), 1, 28, 28))
        lo = x.amin((1, 2, 3), keepdim=True)
        hi = x.amax((1, 2, 3), keepdim=True)
        return (x - lo) / (hi - lo).clamp_min(1.0)  # each image to its own range, as DigitReader does

    x, y = tensor(images[..., 0] if images.ndim == 4 else images), torch.as_tensor(labels)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(128):
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()

    def predict(drawn):
        grey = np.asarray(drawn, np.float32)
        grey = grey.mean(-1) if grey.ndim == 4 else grey
        with torch.no_grad():
            return net(tensor(grey)).argmax(1).numpy()
    return predict


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True, help="the run's name (its prior is cached under --runs/NAME)")
    ap.add_argument("--set", action="append", default=[], help="a TrainOptions field, NAME=JSON (repeatable)")
    ap.add_argument("--pool", default=POOL)
    ap.add_argument("--runs", default="runs/prior-fidelity")
    ap.add_argument("--heldout", type=int, default=500)
    ap.add_argument("--train", type=int, default=10000)
    ap.add_argument("--validation", type=int, default=300, help="training-side digits that choose the guidance scale")
    ap.add_argument("--sampling-steps", type=int, default=25)
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0, 1.5, 2.0, 3.0])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from gess import stages
    from gess.data.images import resize_images
    from gess.encoders import get_encoder
    from gess.evaluation.classification import DigitReader
    from gess.generation import SamplingOptions, generate_images
    from gess.generation.backends.pixel import PixelBackend
    from gess.generation.train import TrainOptions, train_pixel_prior

    with np.load(args.pool) as z:
        images, labels = z["images"][..., None], z["labels"].astype(int)
    heldout, train, validation, reader_rows = split_pool(len(images), args.heldout, args.train, args.validation, 20000)
    encoder = get_encoder("efficientnet-lite0")
    t0 = time.time()
    emb_train = stages.encode_images(encoder, images[train])
    emb_eval = stages.encode_images(encoder, images[np.concatenate([validation, heldout])])
    emb_val, emb_held = emb_eval[:len(validation)], emb_eval[len(validation):]
    print(f"embeddings ready in {time.time() - t0:.0f} s", flush=True)

    from sklearn.svm import SVC

    logistic = DigitReader(side=28).fit(images[reader_rows], labels[reader_rows])
    svc_rows = reader_rows[:10000]
    svc = SVC(C=5.0, gamma="scale").fit(logistic._features(images[svc_rows]), labels[svc_rows])
    readers = {"logistic": logistic.predict, "svc": lambda x: svc.predict(logistic._features(x)),
               "cnn": cnn_reader(images[reader_rows], labels[reader_rows])}
    ceiling = {k: float((r(images[heldout]) == labels[heldout]).mean()) for k, r in readers.items()}
    print("readers on the real held-out digits: " + ", ".join(f"{k} {v:.3f}" for k, v in ceiling.items()), flush=True)

    fields = {k: parse_value(v) for k, v in (s.split("=", 1) for s in args.set)}
    opts = TrainOptions(**{"threads": args.threads, **fields})
    out = Path(args.runs) / args.name
    t1 = time.time()
    if not (out / "model.safetensors").is_file():
        train_pixel_prior(images[train], emb_train, out, encoder.spec(), opts)
    train_seconds = json.loads((out / "training.json").read_text())["seconds_this_run"]
    print(f"prior ready ({time.time() - t1:.0f} s here; training took {train_seconds:.0f} s in its last run)", flush=True)

    backend = PixelBackend.from_pretrained(out)
    side = backend.latent_shape()[-1]

    def right_digit(embeddings, rows, scale):
        blank = np.zeros((len(rows), side, side, backend.latent_shape()[0]), np.float32)
        t = time.time()
        drawn = generate_images(backend, embeddings, embeddings, blank, np.ones(len(rows)), "semantic",
                                SamplingOptions(steps=args.sampling_steps, guidance_scale=scale), seed=0, progress=False)
        seconds = time.time() - t
        drawn = resize_images(drawn, 28)
        return {k: float((r(drawn) == labels[rows]).mean()) for k, r in readers.items()}, seconds / len(rows)

    table = []
    print(f"{'guidance':>8s} {'val cnn':>8s} {'val svc':>8s} {'held cnn':>9s} {'held svc':>9s} {'held log':>9s}", flush=True)
    for scale in args.scales:
        val, _ = right_digit(emb_val, validation, scale)
        held, per_image = right_digit(emb_held, heldout, scale)
        table.append({"guidance_scale": scale, "validation": val, "heldout": held, "seconds_per_image": per_image})
        print(f"{scale:8.1f} {val['cnn']:8.3f} {val['svc']:8.3f} {held['cnn']:9.3f} {held['svc']:9.3f} "
              f"{held['logistic']:9.3f}", flush=True)
    chosen = max(table, key=lambda row: row["validation"]["cnn"])
    print(f"chosen on validation: guidance {chosen['guidance_scale']} -> held-out right digit "
          + ", ".join(f"{chosen['heldout'][k]:.3f} ({k})" for k in readers), flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    record = {"name": args.name, "options": opts.to_dict(), "n_train": len(train), "n_heldout": len(heldout),
              "readers_on_real_heldout": ceiling, "training_seconds": train_seconds, "table": table,
              "chosen_on_validation": chosen, "peak_rss_mb": peak, "sampling_steps": args.sampling_steps}
    with open(Path(args.runs) / "prior_fidelity_mnist.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
