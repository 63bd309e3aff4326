"""`gess run` and `gess demo`: every stage a config names, cached by content, then one HTML report."""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from gess.cache import cache_dir, fingerprint
from gess.errors import GessInputError
from gess.io import read_json, write_json
from gess.runconfig import RunConfig, load_run_config


def log(console, msg: str) -> None:
    if console is not None:
        console.print(msg)


# ---------------------------------------------------------------- dataset
def pool_images(spec: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Images of a simulated experiment: 'sklearn-digits' (ships with scikit-learn) or a folder."""
    from gess.data.images import load_image_folder, resize_images

    source = spec.get("images", "sklearn-digits")
    size = int(spec.get("image_size", 32))
    if source == "sklearn-digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        per_class = int(spec.get("n_per_class", 60))
        rng = np.random.default_rng(0)
        rows = np.concatenate([rng.choice(np.where(digits.target == k)[0], per_class, replace=False) for k in range(10)])
        imgs = np.rint(digits.images[rows] / 16.0 * 255).astype(np.uint8)[..., None]
        return resize_images(imgs, size), np.array([f"digit{digits.target[r]}-{r:04d}" for r in rows]), digits.target[rows]
    images, ids = load_image_folder(source, size=size)
    return images, ids, None


def simulated_experiment(cfg: RunConfig, encoder, console=None):
    """Pool -> embeddings -> generalized (or random) split -> simulated fMRI. Returns (dataset, info)."""
    from gess import api
    from gess.data.simulated import SimulatedFMRIModel, simulate_dataset
    from gess.split import generalized_split

    spec = dict(cfg.dataset.simulated)
    images, ids, labels = pool_images(spec)
    emb = api.encode_images(encoder, images)
    sp = cfg.split
    split = generalized_split(emb, ids, sp.clusters, sp.method if sp.kind == "generalized" else "random", seed=sp.seed)
    rng = np.random.default_rng(sp.seed)
    inside = rng.choice(split.train, min(sp.inside_test, len(split.train) // 3), replace=False)
    outside = rng.choice(split.test, min(sp.outside_test, len(split.test)), replace=False)
    train = [i for i in split.train if i not in set(inside)]
    test = list(inside) + list(outside)
    model = SimulatedFMRIModel(**{k: v for k, v in spec.items() if k in {f.name for f in dataclasses.fields(SimulatedFMRIModel)}})
    ds = simulate_dataset(images, ids, emb, train, test, model, labels=labels, name="simulated")
    group = {s: "inside" for s in inside} | {s: "outside" for s in outside}
    info = {"split": split, "embeddings": emb, "ids": ids, "groups": group, "images": images,
            "unused": [i for i in ids if i not in set(train) | set(test)]}
    log(console, f"simulated experiment: {len(train)} training images, {len(inside)} inside + {len(outside)} outside test images")
    return ds, info


# ---------------------------------------------------------------- generator
def prior_for(cfg: RunConfig, images: np.ndarray, encoder, console=None) -> Path:
    """A pixel prior trained on the given images (cached by content in the gess cache)."""
    from gess import api
    from gess.generation.train import TrainOptions, train_prior

    g = cfg.generator
    opts = TrainOptions(steps=g.train_steps, image_size=g.image_size,
                        block_out_channels=(32, 64, 64) if g.image_size >= 32 else (32, 64))
    key = fingerprint(images, encoder.config(), dataclasses.asdict(opts))
    path = cache_dir() / "priors" / key
    if (path / "model.safetensors").is_file() and not (path / "checkpoint").exists():
        log(console, f"pixel prior: cached at {path}")
        return path
    log(console, f"training a {g.image_size}px pixel prior on {len(images)} images for {g.train_steps} steps")
    train_prior(images, api.encode_images(encoder, images), path, encoder.config()["name"], opts)
    return path


# ---------------------------------------------------------------- run
def run(cfg: RunConfig | str | Path | dict, out: str | Path, console=None) -> dict:
    from gess import api
    from gess.baselines import knn_indices
    from gess.data import load_dataset
    from gess.data.images import resize_images
    from gess.encoders import get_encoder
    from gess.evaluation.report import evaluate_directory
    from gess.model import GESSDecoder
    from gess.pipeline import reconstruct_to_directory, write_images

    cfg = cfg if isinstance(cfg, RunConfig) else load_run_config(cfg)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    encoder = get_encoder(cfg.encoder, device=cfg.device)
    info = None
    if cfg.dataset.simulated is not None:
        dataset, info = simulated_experiment(cfg, encoder, console)
    else:
        if cfg.split.kind == "generalized":
            raise GessInputError(None, "split.kind", "'given' for a recorded dataset (the generalized split re-cuts "
                                 "simulated experiments; use `gess split` to design a recording)", "'generalized'")
        dataset = load_dataset(cfg.dataset.path, cfg.dataset.format, **cfg.dataset.options)
    log(console, dataset.summary())

    # decoders, cached by content
    space = api.default_structural_space(dataset, cfg.structure_size)
    dkey = fingerprint(dataset.train.fmri, dataset.train.images, encoder.config(), space.config(), cfg.decoder)
    model_dir = out / "model"
    if (model_dir / "config.json").is_file() and read_json(model_dir / "config.json")["metadata"].get("fingerprint") == dkey:
        decoder = GESSDecoder.load(model_dir)
        log(console, "decoders: up to date")
    else:
        augment = info["images"][[list(info["ids"]).index(i) for i in info["unused"]]] if info and info["unused"] else None
        decoder = api.fit(dataset, encoder, augment_images=augment, structural_space=space, **cfg.decoder)
        decoder.metadata_["fingerprint"] = dkey
        decoder.save(model_dir)
        log(console, f"decoders fitted (gate {decoder.gate_.name})")
    decoded, test_ids = api.decode(decoder, dataset)
    test = dataset.test.averaged()

    # generator
    generator_dir = None
    if any(m in cfg.methods for m in ("semantic", "cs-equal", "cs", "gg")):
        if cfg.generator.path:
            generator_dir = Path(cfg.generator.path)
        else:
            # the generator knows the world (all images but the test stimuli), the decoder only the training side
            pool = info["images"][[i for i, s in enumerate(info["ids"]) if s not in set(test_ids)]] if info else dataset.train.images
            generator_dir = prior_for(cfg, pool, encoder, console)

    results, recon_dirs = {}, {}
    protocol_metrics, unavailable = {}, {}
    for seed in cfg.seeds:
        for method in cfg.methods:
            name = method if len(cfg.seeds) == 1 else f"{method}-seed{seed}"
            target = out / "recon" / name
            recon_dirs[name] = target
            if method == "structure":
                s_img = np.rint(np.clip(decoded.s, 0, 1) * 255).astype(np.uint8)
                write_images(target, test_ids, s_img, decoded.pi_c, method, seed, 0)
            elif method == "knn":
                train_emb = api.encode_images(encoder, dataset.train.images)
                idx = knn_indices(decoded.c_prime, train_emb)
                write_images(target, test_ids, dataset.train.images[idx], decoded.pi_c, method, seed, 0)
            else:
                reconstruct_to_directory(decoder, dataset, generator_dir, target, method=method, steps=cfg.steps, seed=seed,
                                         guidance_scale=cfg.guidance_scale, cs_preset=cfg.cs.get("preset", "paper"),
                                         cs_overrides={k: v for k, v in cfg.cs.items() if k != "preset"},
                                         gg_scale=cfg.gg.get("scale"), device=cfg.device, progress=console is not None)
            res = evaluate_directory(target, dataset, cfg.protocol, encoder=encoder, seed=seed, out=target / "metrics.json")
            results[name] = res
            protocol_metrics[name] = res["metrics"]
            unavailable.update(res["unavailable"])
            log(console, f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in res["metrics"].items()))

    summary = {"protocol": cfg.protocol, "methods": protocol_metrics, "unavailable": unavailable,
               "pi_c": dict(zip(map(str, test_ids), map(float, decoded.pi_c))), "seconds": time.time() - t0}
    if info:
        from sklearn.metrics import roc_auc_score

        groups = np.array([info["groups"][s] for s in test_ids])
        if len(set(groups)) == 2:
            summary["pi_c_auroc_inside_vs_outside"] = float(roc_auc_score(groups == "inside", decoded.pi_c))
            summary["mean_pi_c"] = {g: float(decoded.pi_c[groups == g].mean()) for g in ("inside", "outside")}
    write_json(out / "metrics.json", summary)
    from gess.report.build import build_report

    build_report(cfg, out, dataset, test_ids, decoded, results, recon_dirs, info, summary)
    log(console, f"report: {out / 'report.html'} ({time.time() - t0:.0f} s)")
    return summary


DEMO_CONFIG = {
    "title": "gess demo: simulated fMRI of scikit-learn's digits, a generalized split",
    "dataset": {"simulated": {"images": "sklearn-digits", "n_per_class": 60, "image_size": 32, "n_low": 400,
                              "n_semantic": 600, "snr": 1.0, "rf_resolution": 16, "seed": 0}},
    "encoder": "efficientnet-lite0",
    "generator": {"backend": "pixel", "train_steps": 500, "image_size": 16},
    "methods": ["structure", "knn", "semantic", "cs-equal", "cs"],
    "split": {"kind": "generalized", "clusters": 20, "inside_test": 30, "outside_test": 30},
    "protocol": "paper",
    "steps": 25,
    "structure_size": 16,
}
