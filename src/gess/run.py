"""`gess run` and `gess demo`: parse a config, call the stages (:mod:`gess.stages`) in order, build the report."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gess import stages
from gess.data import load_dataset
from gess.data.extra import ExtraImages
from gess.data.simulated import simulate_experiment
from gess.encoders import get_encoder
from gess.errors import GessInputError
from gess.evaluation.retrieval import retrieval
from gess.evaluation.summary import gate_separation, per_sample_scores, right_digit_rates, trust_check
from gess.generation.backends import backend_entry
from gess.generation.methods import GENERATOR_METHODS
from gess.io import claim_output_dir, write_json
from gess.parallel import current_shard, main_first
from gess.progress import log
from gess.runconfig import RunConfig, load_run_config


@dataclass
class RunResult:
    """What a finished run hands the report: the config, data, decoded outputs and every method's scores."""

    config: RunConfig
    dataset: object                 # gess.data.Dataset
    test_ids: np.ndarray
    decoded: object                 # gess.decoding.Decoded
    results: dict                   # run name -> metrics of gess.evaluation.scoring
    recon_dirs: dict                # run name -> directory of PNGs
    summary: dict
    experiment: object | None = None     # gess.data.simulated.SimulatedExperiment for simulated runs
    stage_seconds: dict = field(default_factory=dict)
    per_sample: dict = field(default_factory=dict)  # run name -> {"accuracy", "trust", "digit"} arrays over test_ids


def run(cfg: RunConfig | str | Path | dict, out: str | Path, console=None) -> dict:
    """Every stage the config names, cached by content, then ``out/report.html``. Returns the summary."""
    cfg = cfg if isinstance(cfg, RunConfig) else load_run_config(cfg)
    # a folder of the user's own files is refused, never overwritten; the folder itself appears with the first
    # file written into it, so a run refused on its data leaves nothing behind
    out = claim_output_dir(out, "run")
    t0 = time.time()
    os.environ.setdefault("GESS_DEVICE", cfg.device)
    shard = current_shard()  # under a launcher: the main process fits and trains, every process reconstructs its share
    console = console if shard.is_main else None
    timer = stages.StageTimer(console)
    encoder = get_encoder(cfg.encoder, device=cfg.device)
    dataset, experiment = timer("data", lambda: _dataset(cfg, encoder, console))
    # read once, and refused before any work when it holds a test stimulus
    extra = ExtraImages.read(cfg.dataset.extra_images).refuse_test_stimuli(dataset) if cfg.dataset.extra_images else None
    log(console, dataset.summary())

    decoder_options = {"device": cfg.device, **cfg.decoder}
    augment = experiment.augment_images() if experiment else None
    decoder = timer("fit decoders", lambda: main_first(shard, lambda: stages.fit_decoders(
        dataset, out / "model", encoder, decoder_options, cfg.structure, augment, console,
        extra if decoder_options.get("structural_decoder") == "self-supervised" else None)))
    decoded, test_ids = stages.decode(decoder, dataset)
    generator = _generator(cfg, dataset, experiment, extra, encoder, timer, shard, console)

    results, recon_dirs = _reconstruct_and_score(cfg, decoder, dataset, generator, encoder, out, timer, shard, console)
    if not shard.is_main:
        return {}  # scores and the report are the main process's
    digits = timer("evaluate", lambda: _digit_reading(cfg, dataset, experiment, test_ids, console))
    per_sample = timer("evaluate", lambda: per_sample_scores(
        dataset, test_ids, recon_dirs, lambda images: stages.encode_images(encoder, images),
        digits[:2] if digits else None))
    summary = _summary(cfg, results, decoded.pi_c, test_ids, experiment, per_sample, time.time() - t0, timer.seconds)
    if digits and "right_digit" in summary:
        summary["right_digit_reader"] = digits[2]
    summary["retrieval"] = retrieval(decoded.c_prime, stages.encode_images(encoder, _stimuli(dataset, test_ids)))
    write_json(out / "metrics.json", summary)
    result = RunResult(cfg, dataset, test_ids, decoded, results, recon_dirs, summary, experiment, timer.seconds,
                       per_sample)
    stages.build_report(result, out)
    log(console, f"report: {out / 'report.html'} ({time.time() - t0:.0f} s)")
    return summary


def _digit_reading(cfg: RunConfig, dataset, experiment, test_ids, console) -> tuple | None:
    """(a digit reader, the digit each test stimulus shows, what the reader is) when the run's images are labelled
    digits: scikit-learn's for the simulated ones; for a dataset with labels, the labelled extra images' (MNIST's
    ``.npz``), each label's digit the one the reader reads most often among its TRAINING stimuli. Else None."""
    from gess.evaluation.classification import label_digits, labelled_npz_reader, sklearn_digits_reader

    test = dataset.test.averaged()
    if test.labels is None:
        return None
    lookup = {s: i for i, s in enumerate(test.stimulus_ids)}
    labels = test.labels[[lookup[s] for s in test_ids]]
    if experiment is not None:
        if cfg.simulation()[0].images != "sklearn-digits":
            return None
        return (sklearn_digits_reader(test_ids, test.images.shape[1]), labels,
                "logistic regression trained on every scikit-learn digit except the test stimuli")
    reader = labelled_npz_reader(cfg.dataset.extra_images) if dataset.train.labels is not None else None
    train = dataset.train.averaged()
    mapping = None if reader is None else label_digits(reader, train.images, train.labels)
    if mapping is None:
        return None
    stand_for = ", ".join(f"{label} -> {digit}" for label, digit in mapping.items())
    log(console, f"digits read by a classifier trained on the labelled extra images; labels stand for {stand_for}")
    return (reader, np.array([mapping.get(int(label), -1) for label in labels]),
            f"logistic regression trained on the labelled extra images ({Path(cfg.dataset.extra_images).name}, none a "
            f"test stimulus); each label's digit the one it reads most often among that label's training stimuli: "
            f"{stand_for}")


def _stimuli(dataset, test_ids) -> np.ndarray:
    test = dataset.test.averaged()
    lookup = {s: i for i, s in enumerate(test.stimulus_ids)}
    return test.images[[lookup[s] for s in test_ids]]


def _reconstruct_and_score(cfg: RunConfig, decoder, dataset, generator, encoder, out: Path, timer, shard, console):
    """Every method and seed reconstructed (each process its share), then scored by the main process."""
    results, recon_dirs = {}, {}
    for seed in cfg.seeds:
        for method in cfg.methods:
            name = method if len(cfg.seeds) == 1 else f"{method}-seed{seed}"
            target = out / "recon" / name
            recon_dirs[name] = target
            timer("reconstruct", lambda: stages.reconstruct(decoder, dataset, target, method, generator, seed, cfg.sampling,
                                                            cfg.cs, cfg.gg, cfg.device, console is not None, console,
                                                            cfg.generator.backend))
            if shard.is_main:
                results[name] = timer("evaluate", lambda: stages.evaluate(
                    target, dataset, cfg.protocol, out=target / "metrics.json", encoder=encoder, seed=seed))
                log(console, f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in results[name]["metrics"].items()))
    return results, recon_dirs


def _summary(cfg: RunConfig, results: dict, pi_c: np.ndarray, test_ids, experiment, per_sample: dict, seconds: float,
             stage_seconds: dict) -> dict:
    """The run's metrics.json: every method's metrics, pi_c, the gate's separation, the trust check, right digits."""
    unavailable = {}
    for res in results.values():
        unavailable.update(res["unavailable"])
    summary = {"protocol": cfg.protocol, "methods": {k: r["metrics"] for k, r in results.items()},
               "unavailable": unavailable, "pi_c": dict(zip(map(str, test_ids), map(float, pi_c))),
               "seconds": seconds, "stage_seconds": stage_seconds}
    if experiment:
        summary.update(gate_separation(pi_c, experiment.group_of(test_ids)))
    summary.update(trust_check(per_sample, pi_c))
    if any("digit" in p for p in per_sample.values()):
        groups = experiment.group_of(test_ids) if experiment else np.zeros(len(test_ids))
        summary["right_digit"] = right_digit_rates(per_sample, groups)
    return summary


def _dataset(cfg: RunConfig, encoder, console):
    """The recorded dataset a config names, or its simulated experiment (and the experiment, else None)."""
    if cfg.dataset.simulated is None:
        return load_dataset(cfg.dataset.path, cfg.dataset.format, **cfg.dataset.options), None
    pool, model = cfg.simulation()
    experiment = simulate_experiment(  # every process: the encoding is sharded
        pool, model, lambda images: stages.encode_images(encoder, images), cfg.split.clusters,
        cfg.split.method if cfg.split.kind == "generalized" else "random",
        cfg.split.inside_test, cfg.split.outside_test, cfg.split.seed)
    dataset = experiment.dataset
    log(console, f"simulated experiment: {len(dataset.train.stimulus_ids)} training images, "
                 f"{len(dataset.test.stimulus_ids)} test images")
    return dataset, experiment


def _generator(cfg: RunConfig, dataset, experiment, extra: ExtraImages | None, encoder, timer, shard, console):
    """The generator the methods need: the config's path, else a prior trained on the spot (None when none is needed)."""
    if not any(m in GENERATOR_METHODS for m in cfg.methods) and cfg.structure.kind != "latent":
        return None
    if cfg.generator.path:
        return Path(cfg.generator.path) if Path(cfg.generator.path).exists() else cfg.generator.path
    if not backend_entry(cfg.generator.backend).trainable:
        raise GessInputError(None, "generator.path", f"the directory or hub id of the '{cfg.generator.backend}' "
                             "generator (it is not trained on the spot)", "nothing")
    # the generator knows the world (all images but the test stimuli), the decoder only the training side
    images, known = experiment.generator_images() if experiment else (dataset.train.images, None)
    images = stages.with_extra_images(images, extra, None, cfg.generator.training.max_extra_images,
                                      cfg.generator.training.seed, console)  # checked at the edge
    return timer("train prior", lambda: main_first(shard, lambda: stages.cached_prior(
        images, encoder, cfg.generator.training, console, progress=console is not None, known_embeddings=known)))


DEMO_CONFIG = {
    "title": "gess demo: simulated fMRI of scikit-learn's digits, a generalized split",
    "dataset": {"simulated": {"images": "sklearn-digits", "n_per_class": 60, "image_size": 32, "n_low": 400,
                              "n_semantic": 600, "snr": 1.0, "rf_resolution": 16, "seed": 0}},
    # scikit-learn's digits are 8 x 8 pixels: a prior at their own side trains in seconds per hundred steps; its
    # steps and guidance chosen by benchmarks/prior_fidelity.py --demo --heldout-share 0.2 (generator images it never
    # learnt from, no test stimulus), within the demo's 5-minute budget (docs/generation.md)
    "generator": {"backend": "pixel", "training": {"steps": 2000, "image_size": 8, "block_out_channels": [32, 64],
                                                   "prediction_type": "epsilon"}},
    "methods": ["structure", "knn", "semantic", "cs-equal", "cs"],
    "split": {"kind": "generalized", "clusters": 20, "inside_test": 30, "outside_test": 30},
    "protocol": "paper",
    # CS low-pass, share of steps, reference gain and the floor on the gated pi_s: what `cs: {tune: true}` chose on
    # 5 held-out folds of the demo's training images (docs/generation.md), fixed here so that the demo does not tune
    # for 5 minutes
    "sampling": {"steps": 25, "guidance_scale": 1.0, "min_structure_weight": 0.3},
    "cs": {"lowpass_factor": 1.5, "fraction": 0.9, "reference_gain": 1.5},
    "structure": {"size": 8},
}
