"""Does trust rank reconstructions by accuracy? Checked on held-out folds of the demo's TRAINING stimuli.

    GESS_CACHE=/tmp/democache python benchmarks/trust_folds.py /tmp/demo-out [--methods structure semantic cs]
    python benchmarks/trust_folds.py runs/digit69 --config configs/digit69.yaml --recon cs-seed0 \
        --setting "lowpass_factor=1.5,fraction=0.7,reference_gain=2,min_structure_weight=0.3"

Reads the decoders a ``gess demo --out DIR`` (or a ``gess run CONFIG --out DIR``) fitted (``DIR/model``) and the
prior its cs reconstructions name (``--setting``: CS and sampling fields over the config's, as in cs_folds.py);
refits the decoders without each of 5 folds of the training stimuli (``gess.folds.held_out_fold_outputs``),
reconstructs the held-out stimuli with the demo's sampling and CS settings, and scores each reconstruction
with its own fold's encoding model three ways:

- ``share``: the share of the fold's training trials whose response the reconstruction's predicted response
  matches less well than its own (gess's trust until 2026-12-03; ties at 1 once it beats them all);
- ``match``: the Pearson r of the predicted with the measured response (best-of-N's score);
- ``trust`` (gess's): the normal CDF of the margin, that r less the mean r against the training trials, over their
  standard deviation (no ceiling; the same ranks as the margin).

Per-sample accuracy: all-pairs 2-way identification of the reconstruction among its fold's held-out stimuli on
EfficientNet-Lite0 embeddings (what the demo's report uses). Prints Spearman's rho (p) of each score with it,
and how many reconstructions the share puts at 1. The test set never enters.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from cs_folds import parse_setting, run_prior  # noqa: E402


def scores(decoder, images: np.ndarray, fmri: np.ndarray) -> dict[str, np.ndarray]:
    """share, match and trust of each image against the response it was decoded from."""
    from gess.api import reconstruction_features
    from gess.correlation import standardized_rows

    embeddings, structure = reconstruction_features(decoder, images)  # one encoder pass for the three scores
    model, z = decoder.trust_, decoder._standardize(fmri)
    own = model.match(embeddings, z, structure).astype(np.float64)
    predicted = standardized_rows(model.predicted(embeddings, structure, np.float64))
    others = predicted @ standardized_rows(np.asarray(model.reference_, np.float64)).T
    return {"share": (others < own[:, None]).mean(1), "match": own, "trust": model.score(embeddings, z, structure)}


def main():
    from scipy.stats import spearmanr

    from gess import stages
    from gess.decoding import GESSDecoder
    from gess.encoders import get_encoder
    from gess.evaluation.trustworthiness import identification_per_sample
    from gess.folds import held_out_fold_outputs
    from gess.decoding.structural import StructuralSpace
    from gess.generation import generate_images
    from gess.generation.backends.pixel import PixelBackend
    from gess.run import DEMO_CONFIG, _dataset
    from gess.runconfig import load_run_config

    ap = argparse.ArgumentParser()
    ap.add_argument("demo", type=Path, help="a gess demo (or gess run) --out folder")
    ap.add_argument("--config", help="the run's config (default: the demo's)")
    ap.add_argument("--recon", default="cs", help="the reconstruction folder whose manifest names the prior")
    ap.add_argument("--setting", default="", help="key=value CS and sampling fields over the config's")
    ap.add_argument("--methods", nargs="+", default=["structure", "semantic", "cs-equal", "cs"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    cfg = load_run_config(args.config or DEMO_CONFIG)
    encoder = get_encoder(cfg.encoder)
    dataset, _ = _dataset(cfg, encoder, None)
    decoder = GESSDecoder.load(args.demo / "model")
    backend = PixelBackend.from_pretrained(run_prior(args.demo, args.recon))
    cs, sampling = parse_setting(args.setting, cfg.cs, cfg.sampling)
    space = StructuralSpace.from_config(decoder.structure_space_, backend)
    t0 = time.time()
    folds = held_out_fold_outputs(decoder, dataset.train, 5, autoencoder=backend, keep_models=True)
    print(f"5 folds of {sum(len(f['c']) for f in folds)} training stimuli fitted in {time.time() - t0:.0f} s")
    record = {}
    for method in args.methods:
        t0 = time.time()
        per = {"accuracy": [], "share": [], "match": [], "trust": []}
        for fold in folds:
            n = len(fold["c"])
            if method == "structure":
                images = np.rint(np.clip(space.to_images(fold["s"]), 0, 1) * 255).astype(np.uint8)
            else:
                images = generate_images(backend, fold["c_prime"], fold["c"], fold["s"], fold["pi_c"], method, sampling,
                                         seeds=list(range(n)), cs_options=cs)
            truth = fold["target"]
            per["accuracy"].append(identification_per_sample(stages.encode_images(encoder, truth),
                                                             stages.encode_images(encoder, images), truth))
            for name, values in scores(fold["decoder"], images, fold["fmri"]).items():
                per[name].append(values)
        per = {k: np.concatenate(v) for k, v in per.items()}
        record[method] = {"n": len(per["accuracy"]), "mean_accuracy": float(per["accuracy"].mean()),
                          "share_at_1": int((per["share"] == 1).sum()),
                          "trust_at_1": int((per["trust"] == 1).sum()), "trust_max_below_1": float(per["trust"][per["trust"] < 1].max())}
        line = []
        for name in ("share", "match", "trust"):
            rho, p = spearmanr(per[name], per["accuracy"])
            record[method][name] = {"rho": float(rho), "p": float(p)}
            line.append(f"{name} {rho:+.2f} (p {p:.2g})")
        print(f"{method:10s} n {record[method]['n']}, accuracy {record[method]['mean_accuracy']:.3f}, share at 1: "
              f"{record[method]['share_at_1']}, trust at 1: {record[method]['trust_at_1']}; rho with accuracy: " + ", ".join(line) + f"  ({time.time() - t0:.0f} s)",
              flush=True)
    if args.json:
        args.json.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
