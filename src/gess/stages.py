"""The stages of gess, one function each; the CLI commands and `gess run` both call these, and only these.

=======================  ===================================================  ==========================
stage                    what it writes                                        up to date when
=======================  ===================================================  ==========================
:func:`fit_decoders`     ``MODEL/config.json`` + ``model.safetensors``          the fingerprint in config.json matches
:func:`train_prior`      ``PRIOR/config.json`` + ``model.safetensors``          the fingerprint matches, no checkpoint left
:func:`reconstruct`      ``DIR/<stimulus_id>.png`` + ``manifest.json``           each image's settings and seed match
:func:`evaluate`         ``FILE.json``                                          (always recomputed: cheap)
:func:`build_report`     ``DIR/report.html``                                    (always rebuilt)
=======================  ===================================================  ==========================

Every fingerprint hashes *content* (arrays, settings, the encoder's description),
never file names or times, so a copied dataset is the same dataset and an edited
one is not. The work itself lives below: :mod:`gess.api` (in memory),
:mod:`gess.featurecache`, :mod:`gess.manifest`, :mod:`gess.folds`.
"""
from __future__ import annotations

import functools

import platform
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from gess import __version__, api
from gess.api import candidate_scores, decode, fit, generator_identity, test_fmri, trust_scores
from gess.cache import cache_dir, fingerprint
from gess.checkpoint import check_resumable
from gess.data import Dataset, load_dataset
from gess.data.extra import ExtraImages
from gess.data.images import IMAGE_SUFFIXES, load_image_folder
from gess.decoding import Decoded, GESSDecoder, StructuralSpace
from gess.decoding.structural import StructureOptions
from gess.decoding.trust import TRUST_DEFINITION
from gess.encoders import ImageEncoder, check_same_encoder
from gess.baselines import knn_indices
from gess.errors import GessInputError, MissingWeightsError
from gess.evaluation.retrieval import retrieval
from gess.evaluation.scoring import METRICS_KIND, claim_metrics_file, evaluate_directory
from gess.featurecache import encode_images, encoder_of
from gess.folds import held_out_fold_outputs, tune_candidates_on_training_folds, tune_cs_on_training_folds
from gess.generation import CSOptions, GGOptions, SamplingOptions, generate_images
from gess.generation.backends import load_backend
from gess.generation.methods import BASELINE_METHODS, CS_METHODS, METHODS
from gess.generation.sampling import candidate_mean, candidate_seed, guidance_scale_for
from gess.generation.train import TrainOptions, resume_options, train_pixel_prior
from gess.io import claim_output_dir, exclusive_lock, read_json, write_owned_json
from gess.manifest import CANDIDATES_DIR, Manifest, read_png, write_png
from gess.parallel import Shard, current_shard, main_first
from gess.progress import log
from gess.report.build import write_report
from gess.weights import is_hub_id

__all__ = ["fit", "decode", "fit_decoders", "training_images", "with_extra_images", "train_prior", "cached_prior",
           "reconstruct", "evaluate", "build_report", "StageTimer", "encode_images"]


# ------------------------------------------------------------------ stage: fit the decoders
def fit_decoders(dataset: Dataset, out: str | Path, encoder: ImageEncoder, decoder_options: dict | None = None,
                 structure: StructureOptions | None = None, augment_images: np.ndarray | None = None,
                 console=None, extra_images: ExtraImages | str | Path | np.ndarray | None = None) -> GESSDecoder:
    """Fit M_c, M_s and M_g and save them to ``out``; an up-to-date ``out`` is loaded instead.

    A self-supervised M_s checkpoints into ``out/checkpoint``: an interrupted fit resumes there.
    """
    decoder_options = dict(decoder_options or {})
    structure = structure or StructureOptions()
    params = GESSDecoder(**decoder_options).get_params()
    self_supervised = params["structural_decoder"] == "self-supervised"
    extra = ExtraImages.coerce(extra_images) if self_supervised else None
    if extra is not None:
        extra.refuse_test_stimuli(dataset)  # before any work
    key = fingerprint("decoders", dataset.train.fmri, dataset.train.trial_ids, dataset.train.images,
                      dataset.train.stimulus_ids, encoder.spec().to_dict(), structure.to_dict(), params,
                      augment_images if augment_images is not None else None,
                      *((None if extra is None else extra.images, dataset.test.fmri) if self_supervised else ()))
    out = Path(out)
    config = out / "config.json"
    if config.is_file() and read_json(config).get("metadata", {}).get("fingerprint") == key:
        log(console, f"decoders: {out} is up to date (same data, encoder and options)")
        return GESSDecoder.load(out, device=params["device"])
    claim_output_dir(out, "model")  # refuse before the work, not after
    space = api.structural_space(dataset, structure, params["device"])
    with exclusive_lock(out):
        model = fit(dataset, encoder, augment_images=augment_images, space=space, extra_images=extra,
                    checkpoint=out / "checkpoint", fingerprint_key=key, progress=console is not None, **decoder_options)
        model.save(out)
    log(console, f"decoders fitted -> {out} (gate {model.gate_.name}, alpha_c {_describe(model.semantic_.ridge_.alpha_)}, "
                 f"alpha_s {_describe(model.alpha_structural_used_)}{_selection_text(model)}; "
                 + ", ".join(f"{k} {v:.1f} s" for k, v in model.fit_seconds_.items()) + ")")
    return model


def _selection_text(model: GESSDecoder) -> str:
    chosen = model.structural_selection_
    if not chosen:
        return ""
    count = "every voxel" if chosen["voxels"] is None else f"{chosen['voxels']} voxels"
    kernel = f", RBF kernel gamma {chosen['gamma']:g}" if chosen.get("kernel") == "rbf" else ""
    return f", M_s on {count}{kernel} (chosen on held-out folds of {chosen['trials']} training trials)"


def _describe(alpha) -> str:
    if isinstance(alpha, dict):
        return "per target"
    if np.ndim(alpha) == 0:
        return f"{float(alpha):g}"
    values = np.asarray(alpha)
    return f"per target, median {np.median(values):g} ({values.min():g}..{values.max():g})"


# ------------------------------------------------------------------ stage: train a prior
def training_images(path: str | Path, format: str = "auto") -> tuple[np.ndarray, Dataset | None]:
    """Images of a folder, or the TRAINING stimuli of a dataset (never its test stimuli), and the dataset if any."""
    path = Path(path)
    if path.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
        return load_image_folder(path)[0], None
    dataset = load_dataset(path, format)
    return dataset.train.images, dataset


def with_extra_images(images: np.ndarray, extra: ExtraImages | np.ndarray | str | Path | None, test: Dataset | None = None,
                      limit: int | None = None, seed: int = 0, console=None) -> np.ndarray:
    """``images`` joined by (at most ``limit`` of) ``extra``, converted to their size and channels.

    ``extra`` is refused when it holds a copy of one of ``test``'s test stimuli (all of
    ``extra`` is checked, not only the share kept).
    """
    extra = ExtraImages.coerce(extra)
    if extra is None:
        return images
    if test is not None:
        extra.refuse_test_stimuli(test)
    kept = extra.matched(images.shape[1], images.shape[-1], limit, seed)
    log(console, f"extra images: {len(kept)} of {len(extra)}" + (f" from {extra.source}" if extra.source else "")
                 + ("; none is a test stimulus" if test is not None else ""))
    return np.concatenate([images, kept])


def _prior_key(images: np.ndarray, encoder: ImageEncoder, options: TrainOptions) -> str:
    return fingerprint("prior", images, encoder.spec().to_dict(), {**options.to_dict(), "threads": None})


def train_prior(images: np.ndarray, out: str | Path, encoder: ImageEncoder, options: TrainOptions | None = None,
                console=None, progress: bool = True, known_embeddings: np.ndarray | None = None) -> Path:
    """Train the pixel prior on ``images`` into ``out``; an up-to-date prior is kept, an interrupted one resumed.

    ``known_embeddings``, the encoder's embeddings of the first ``len(known_embeddings)``
    images, spares encoding them again (the rest are encoded and cached).
    """
    options = options or TrainOptions()
    key = _prior_key(images, encoder, options)
    out = Path(out)
    config = out / "config.json"
    if config.is_file() and not (out / "checkpoint").exists() and read_json(config).get("fingerprint") == key:
        log(console, f"pixel prior: {out} is up to date (same images, encoder and options)")
        return out
    claim_output_dir(out, "pixel prior")
    if (out / "checkpoint" / "state.json").is_file():
        check_resumable(out / "checkpoint", resume_options(options, len(images)))
    with exclusive_lock(out):
        log(console, f"training a {options.image_size}px pixel prior on {len(images)} images for {options.steps} steps")
        train_pixel_prior(images, _embeddings_of(encoder, images, known_embeddings), out, encoder.spec(), options,
                          progress=progress, extra_config={"fingerprint": key})
    return out


def _embeddings_of(encoder: ImageEncoder, images: np.ndarray, known: np.ndarray | None) -> np.ndarray:
    if known is None or len(known) == 0:
        return encode_images(encoder, images)
    if len(known) == len(images):
        return np.asarray(known, np.float32)
    return np.concatenate([np.asarray(known, np.float32), encode_images(encoder, images[len(known):])])


def cached_prior(images: np.ndarray, encoder: ImageEncoder, options: TrainOptions, console=None, progress: bool = True,
                 known_embeddings: np.ndarray | None = None) -> Path:
    """A prior trained on ``images`` in the gess cache (shared by runs with the same images and options)."""
    key = _prior_key(images, encoder, options)
    return train_prior(images, cache_dir() / "priors" / key, encoder, options, console, progress, known_embeddings)


# ------------------------------------------------------------------ stage: reconstruct
@dataclass
class ReconstructionJob:
    """One method's reconstructions of a dataset's test stimuli into one directory, and what they depend on."""

    decoder: GESSDecoder
    dataset: Dataset
    out: Path
    method: str
    generator: str | Path | None
    seed: int
    sampling: SamplingOptions
    cs: CSOptions
    gg: GGOptions
    device: str | None
    progress: bool
    console: object
    backend_name: str | None
    decoded: Decoded
    ids: np.ndarray

    @property
    def space(self) -> dict:
        return self.decoder.structure_space_ or {"kind": "pixels"}

    @property
    def manifest(self) -> Manifest:
        return Manifest(self.out)

    def seeds(self) -> list[int]:
        return [self.seed + i for i in range(len(self.ids))]

    @property
    def needs_generator(self) -> bool:
        """The generator methods, and ``structure`` when M_s decodes a generator's latents."""
        return self.method not in BASELINE_METHODS or (self.method == "structure" and self.space.get("kind") == "latent")

    def settings(self) -> dict:
        """What an image depends on besides its seed (a refitted decoder invalidates its images)."""
        decoder = self.decoder.metadata_.get("fingerprint") or self.decoder.get_params()
        if self.method in BASELINE_METHODS:  # no sampling: the decoders, and the generator whose latents M_s decodes
            return {"method": self.method, "generator": str(self.generator) if self.needs_generator else None,
                    "decoder": decoder}
        return {"method": self.method, "generator": str(self.generator), "sampling": self.sampling.to_dict(),
                "decoder": decoder,
                "cs": self.cs.to_dict() if self.method in CS_METHODS else None,
                "gg": self.gg.to_dict() if self.method == "gg" else None}

    def open_generator(self):
        """Load the generator and check it speaks the decoders' embeddings and, for latent M_s, is theirs."""
        backend = load_backend(self.generator, device=self.device, name=self.backend_name)
        check_same_encoder(self.decoder.encoder_, backend.encoder_spec,
                           "the generator to be conditioned on the decoders' embeddings", self.generator)
        if self.space.get("kind") == "latent" and self.space.get("generator") != generator_identity(self.generator):
            raise GessInputError(self.generator, "structure", "the generator whose latents M_s was fitted on "
                                 f"({self.space.get('generator')})", generator_identity(self.generator))
        return backend


def reconstruct(decoder: GESSDecoder, dataset: Dataset, out: str | Path, method: str = "cs", generator: str | Path | None = None,
                seed: int = 0, sampling: SamplingOptions | None = None, cs: CSOptions | None = None,
                gg: GGOptions | None = None, device: str | None = None, progress: bool = True, console=None,
                backend_name: str | None = None) -> dict:
    """One ``<stimulus_id>.png`` per test stimulus and ``manifest.json`` in ``out``, for any method.

    Generator methods keep images whose manifest entry has the same settings and seed
    (a re-run resumes); ``structure`` and ``knn`` cost nothing and are always rewritten.
    With ``cs.tune`` the CS settings are chosen on held-out folds of the training data
    (:func:`gess.folds.tune_cs_on_training_folds`) and recorded in the manifest.
    ``backend_name`` (``pixel``, ``unclip``, ...), when given, is checked against the generator found.
    """
    if method not in METHODS:
        raise GessInputError(None, "method", f"one of {', '.join(METHODS)}", repr(method))
    decoded, ids = decode(decoder, dataset)
    job = ReconstructionJob(decoder, dataset, Path(out), method, generator, seed, sampling or SamplingOptions(),
                            cs or CSOptions(), gg or GGOptions(), device, progress, console, backend_name, decoded, ids)
    if job.needs_generator:
        _check_generator_given(generator, method)
    shard = current_shard()
    claim_output_dir(job.out, "reconstruction", clean=shard.is_main)
    # the lock first: a second job on this folder is refused before it touches the running one's manifest parts
    with exclusive_lock(job.out, name=".gess.lock" if shard.is_main else f".gess.lock.{shard.index}"):
        if shard.is_main and job.manifest.has_parts():
            job.manifest.merge_parts(ids)  # an interrupted multi-process run: its parts, before new ones are written
        shard.wait()  # leftovers are gone and old parts merged before anyone writes
        if method in BASELINE_METHODS:
            return _write_baseline(job, shard)
        return _generate(job, shard)


def _check_generator_given(generator, method: str) -> None:
    """Fail before anything is written when the generator is missing or neither a directory nor a hub id."""
    if generator is None:
        raise GessInputError(None, "generator", f"a generator directory for method '{method}'", "none")
    if not Path(str(generator)).is_dir() and not is_hub_id(str(generator)):
        raise MissingWeightsError("a generator", str(generator),
                                  "train a pixel prior with `gess prior train`, or pass a Stable unCLIP directory")


def _write_baseline(job: ReconstructionJob, shard: Shard) -> dict:
    """``structure`` and ``knn``: cheap, so the main process writes them all."""
    if shard.is_main:
        backend = job.open_generator() if job.needs_generator else None
        images = _baseline_images(job, backend)
        trust = trust_scores(job.decoder, images, test_fmri(job.dataset))
        job.out.mkdir(parents=True, exist_ok=True)
        by_id, record = {}, {"settings": job.settings(), "versions": software_versions()}
        for sid, img, p, score in zip(job.ids, images, job.decoded.pi_c, trust):
            write_png(job.out / f"{sid}.png", img)
            by_id[sid] = {"stimulus_id": str(sid), "file": f"{sid}.png", "pi_c": float(p), "trust": score,
                          "method": job.method, "seed": job.seed, "steps": 0, **record} | _trust_definition(score)
        job.manifest.write(job.ids, by_id)
    shard.wait()
    return {"generated": len(job.ids) if shard.is_main else 0, "skipped": 0}


def _baseline_images(job: ReconstructionJob, backend) -> np.ndarray:
    """``structure``: M_s's output as an image; ``knn``: the training stimulus nearest the decoded embedding."""
    if job.method == "structure":
        images = StructuralSpace.from_config(job.space, backend).to_images(job.decoded.s)
        return np.rint(np.clip(images, 0, 1) * 255).astype(np.uint8)
    train = job.dataset.train
    train_embeddings = encode_images(encoder_of(job.decoder.encoder_, job.device), train.images)
    return train.images[knn_indices(job.decoded.c_prime, train_embeddings)]


def _generate(job: ReconstructionJob, shard: Shard) -> dict:
    """The generator methods of :func:`reconstruct`, for this process's share of the global batches."""
    manifest = job.manifest
    by_id = manifest.read()  # a foreign manifest is refused before anything is said or tuned
    job = _tunable(job)
    settings, seeds = job.settings(), job.seeds()
    finished = [manifest.is_finished(by_id.get(s), settings, seed) for s, seed in zip(job.ids, seeds)]
    if shard.is_main:
        _rescore_stale_trust(job, by_id, [s for s, done in zip(job.ids, finished) if done])
    n, size = len(job.ids), job.sampling.batch_size
    batches = [list(range(i, min(i + size, n))) for i in range(0, n, size)]
    # a batch is made whole again when any of its images is missing: the same batches, the same bytes
    todo = [b for b in shard.mine(batches) if not all(finished[i] for i in b)]
    tunes = (job.cs.tune and job.method in CS_METHODS) or job.sampling.tune_candidates
    generated = 0
    if todo:
        backend = job.open_generator()  # a finished share never loads it
        job, tuning = _tuned(job, backend, shard) if tunes else (job, None)
        generated = _generate_batches(job, backend, [i for b in todo for i in b], by_id, finished, settings, tuning, shard)
    elif tunes and shard.count > 1:
        shard.wait()  # keep step with the processes that tune
    shard.wait()
    if shard.is_main:
        manifest.merge_parts(job.ids)
    shard.wait()
    share = sum(len(b) for b in shard.mine(batches))
    return {"generated": generated, "skipped": share - generated, "other_processes": n - share}


def _rescore_stale_trust(job: ReconstructionJob, by_id: dict, ids: list) -> None:
    """Finished entries whose trust an earlier gess scored by another definition: scored again from their PNGs
    (one encoder pass, the images untouched) and the manifest rewritten, so that one folder holds one trust."""
    stale = [s for s in ids if by_id[s].get("trust") is not None and by_id[s].get("trust_definition") != TRUST_DEFINITION]
    if not stale:
        return
    index = {str(s): i for i, s in enumerate(job.ids)}
    fmri = test_fmri(job.dataset)
    pairs = [(by_id[s], index[str(s)]) for s in stale] + [(c, index[str(s)]) for s in stale for c in by_id[s].get("candidates", [])]
    for entry, _ in pairs:
        entry.pop("trust_definition", None)
        entry["trust"] = None  # a candidate whose file is gone keeps no trust of the old definition
    pairs = [(entry, row) for entry, row in pairs if (job.out / entry["file"]).is_file()]
    images = np.stack([read_png(job.out / entry["file"]) for entry, _ in pairs])
    for (entry, _), score in zip(pairs, trust_scores(job.decoder, images, fmri[[row for _, row in pairs]])):
        entry.update({"trust": score} | _trust_definition(score))
    job.manifest.write(job.ids, by_id)
    log(job.console, f"trust of {len(stale)} finished reconstructions scored again from their images (an earlier "
                     f"gess wrote them with another trust definition)")


def _tunable(job: ReconstructionJob) -> ReconstructionJob:
    """The job untuned, said in one line, when its training set is too small for CS's held-out folds (each
    fold decodes at least 2 held-out stimuli): the preset's settings are used."""
    n, folds = len(job.dataset.train.stimulus_ids), job.cs.tune_folds
    if not (job.cs.tune and job.method in CS_METHODS) or n >= 2 * folds:
        return job
    if current_shard().is_main:
        log(job.console, f"CS not tuned: {n} training stimuli are too few for {folds} held-out folds of at least 2; "
                         f"the {job.cs.preset} preset's settings are used")
    return replace(job, cs=replace(job.cs, tune=False))


def _tuned(job: ReconstructionJob, backend, shard: Shard) -> tuple[ReconstructionJob, dict]:
    """The job with the CS settings, then the number of candidates, chosen on held-out training folds (as asked):
    the main process tunes alone (nothing inside is sharded, so no barrier of its own meets the others' wait), then
    the others read its cached choice."""
    return main_first(shard, lambda: _tune(job, backend))


def _tune(job: ReconstructionJob, backend) -> tuple[ReconstructionJob, dict]:
    tuning = {}
    # the decoders refitted on held-out training folds, once for both tunings and only on a cache miss
    folds = functools.cache(lambda: held_out_fold_outputs(job.decoder, job.dataset.train, job.cs.tune_folds,
                                                          autoencoder=backend, keep_models=True))
    if job.cs.tune and job.method in CS_METHODS:
        chosen, tuning = tune_cs_on_training_folds(job.decoder, job.dataset.train, backend, job.method, job.sampling,
                                                   job.cs, job.console, fold_outputs=folds)
        floor = tuning["min_structure_weight"] if job.method == "cs" else job.sampling.min_structure_weight
        job = replace(job, cs=chosen, sampling=replace(job.sampling, min_structure_weight=floor))
    if job.sampling.tune_candidates:
        encoder = encoder_of(job.decoder.encoder_, job.device) if job.method == "gg" else None
        n, reduction, record = tune_candidates_on_training_folds(job.decoder, job.dataset.train, backend, job.method,
                                                                 job.sampling, job.cs, job.gg, encoder, job.cs.tune_folds,
                                                                 job.console, folds)
        job = replace(job, sampling=replace(job.sampling, candidates=n, candidate_reduction=reduction))
        tuning = {**tuning, "candidates": record}
    return job, tuning


def _generate_batches(job: ReconstructionJob, backend, order: list[int], by_id: dict, finished: list[bool],
                      settings: dict, tuning: dict | None, shard: Shard) -> int:
    """Generate the stimuli ``order`` names (``sampling.candidates`` each, the brain's best kept), writing each
    stimulus's PNG and manifest entry as soon as its candidates are drawn."""
    record = ({"tuned": tuning} if tuning else {}) | {"guidance_scale": guidance_scale_for(job.sampling, backend),
                                                      "versions": software_versions()}
    fmri, seeds, written = test_fmri(job.dataset), job.seeds(), {}
    n_candidates = job.sampling.candidates
    rows = [(i, k) for i in order for k in range(n_candidates)]  # candidates of one stimulus side by side
    drawn: dict[int, dict[int, np.ndarray]] = {}

    def write_batch(local_idx, images):
        for j, img in zip(local_idx, images):
            i, k = rows[j]
            drawn.setdefault(i, {})[k] = img
        complete = [i for i in list(drawn) if len(drawn[i]) == n_candidates]
        if not complete:
            return
        todo = [i for i in complete if not finished[i]]  # one already on disk from an earlier run is never rewritten
        stacks = [np.stack([drawn[i][k] for k in range(n_candidates)]) for i in todo]
        for i, entry in zip(todo, _chosen_candidates(job, [job.ids[i] for i in todo], stacks, fmri[todo],
                                                     [seeds[i] for i in todo])):
            entry.update({"pi_c": float(job.decoded.pi_c[i]), "method": job.method, "seed": seeds[i],
                          "steps": job.sampling.steps, "settings": settings, **record})
            by_id[job.ids[i]] = written[job.ids[i]] = entry
        for i in complete:
            del drawn[i]
        if shard.count == 1:
            job.manifest.write(job.ids, by_id)
        else:
            job.manifest.write_part(shard.index, list(written.values()))

    idx, d = np.array([i for i, _ in rows]), job.decoded
    encoder = encoder_of(job.decoder.encoder_, job.device) if job.method == "gg" else None
    generate_images(backend, d.c_prime[idx], d.c[idx], d.s[idx], d.pi_c[idx], job.method, job.sampling,
                    seeds=[candidate_seed(seeds[i], k) for i, k in rows], cs_options=job.cs, gg_options=job.gg,
                    encoder=encoder, structure_kind=job.space.get("kind", "pixels"), on_batch=write_batch,
                    progress=job.progress and shard.is_main)
    return len(written)


def _chosen_candidates(job: ReconstructionJob, stimuli: list, candidates: list[np.ndarray], fmri: np.ndarray,
                       seeds: list[int]) -> list[dict]:
    """Per stimulus: its candidates scored against its measured response, what ``sampling.candidate_reduction`` keeps
    (the best match, or the candidates' mean) written as ``<id>.png`` (every candidate under ``candidates/`` when there
    are several); returns the manifest entries."""
    if not candidates:
        return []
    n_candidates = len(candidates[0])
    averaged = n_candidates > 1 and job.sampling.candidate_reduction == "mean"
    means = [candidate_mean(c) for c in candidates] if averaged else []
    images = np.concatenate(candidates + ([np.stack(means)] if averaged else []))
    repeated = np.concatenate([np.repeat(fmri, n_candidates, axis=0)] + ([fmri] if averaged else []))
    trust, matches = candidate_scores(job.decoder, images, repeated, with_matches=n_candidates > 1)
    entries = []
    for s, (stimulus, seed) in enumerate(zip(stimuli, seeds)):
        rows = slice(s * n_candidates, (s + 1) * n_candidates)
        best = 0 if matches is None else int(np.argmax(matches[rows]))
        name = f"{stimulus}.png"
        if averaged:
            mean_row = len(stimuli) * n_candidates + s
            write_png(job.out / name, means[s])
            entry = {"stimulus_id": str(stimulus), "file": name, "trust": trust[mean_row], "kept": "mean",
                     "brain_match": None if matches is None else float(matches[mean_row])} | _trust_definition(trust[mean_row])
        else:
            write_png(job.out / name, candidates[s][best])
            entry = {"stimulus_id": str(stimulus), "file": name, "trust": trust[rows][best]} | _trust_definition(trust[rows][best])
        if n_candidates > 1:
            if not averaged:
                entry["chosen_candidate"] = best
            entry["candidates"] = [_write_candidate(job, stimulus, k, candidates[s][k], candidate_seed(seed, k),
                                                    None if matches is None else float(matches[rows][k]), trust[rows][k]) for k in range(n_candidates)]
        entries.append(entry)
    return entries


def _write_candidate(job: ReconstructionJob, stimulus, index: int, image: np.ndarray, seed: int, match: float,
                     trust) -> dict:
    name = f"{CANDIDATES_DIR}/{stimulus}.{index}.png"
    write_png(job.out / name, image)
    return {"index": index, "seed": seed, "file": name, "brain_match": match, "trust": trust} | _trust_definition(trust)


def _trust_definition(trust) -> dict:
    """The field that says which definition scored a trust (none where there is no trust)."""
    return {} if trust is None else {"trust_definition": TRUST_DEFINITION}


def software_versions() -> dict:
    """What a run needs to be reproduced besides its seeds and settings."""
    return {"gess": __version__, "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()}


# ------------------------------------------------------------------ stage: evaluate
def evaluate(recon: str | Path, dataset: Dataset, protocol: str = "paper", out: str | Path | None = None,
             decoded: str | Path | None = None, **options) -> dict:
    """Score ``recon/<stimulus_id>.png`` against the dataset's test stimuli (see :mod:`gess.evaluation.scoring`);
    with ``decoded`` (a ``decoded.npz`` of ``gess decode``), MindEye's retrieval of its ``c_prime`` too."""
    if out is not None:
        claim_metrics_file(out)
    _refuse_mixed_sizes(Path(recon), dataset.test.stimulus_ids)
    result = evaluate_directory(recon, dataset, protocol, out=None if decoded is not None else out, **options)
    if decoded is not None:
        result["retrieval"] = decoded_retrieval(decoded, dataset, options.get("encoder"))
        if out is not None:
            write_owned_json(out, result, METRICS_KIND)
    return result


def _refuse_mixed_sizes(recon: Path, stimulus_ids) -> None:
    """Reconstructions of more than one size are refused, naming one (their headers are read, not the pixels).

    One size other than the stimuli's is fine: every protocol resizes both to its own sizes.
    A non-square one counts as its centre square (what :func:`gess.data.images.load_image` reads).
    """
    from PIL import Image, UnidentifiedImageError

    first = None
    for sid in dict.fromkeys(str(s) for s in stimulus_ids):
        path = recon / f"{sid}.png"
        if not path.is_file():
            continue
        try:
            with Image.open(path) as im:
                width, height = im.size
        except (OSError, ValueError, UnidentifiedImageError):
            continue  # refused as unreadable when it is read
        if first is None:
            first = (path, min(width, height))
        elif min(width, height) != first[1]:
            raise GessInputError(path, "image size", f"{first[1]}x{first[1]} like {first[0].name} (reconstructions all "
                                 "of one size; one other than the stimuli's is resized as the protocol says)",
                                 f"{width}x{height}")


def decoded_retrieval(decoded: str | Path, dataset: Dataset, encoder: ImageEncoder) -> dict:
    """Retrieval of a ``decoded.npz``'s ``c_prime`` against the embeddings of its test stimuli (the same encoder)."""
    decoded = Path(decoded)
    try:
        with np.load(decoded, allow_pickle=False) as z:
            c_prime, ids = z["c_prime"], [str(s) for s in z["stimulus_ids"]]
    except (OSError, KeyError, ValueError) as exc:
        raise GessInputError(decoded, "c_prime", "a decoded.npz written by `gess decode`", f"unreadable ({exc})") from None
    test = dataset.test.averaged()
    lookup = {str(s): i for i, s in enumerate(test.stimulus_ids)}
    missing = [s for s in ids if s not in lookup]
    if missing:
        raise GessInputError(decoded, "stimulus_ids", "the dataset's test stimuli", f"unknown ids, e.g. {missing[0]}")
    stimuli = encode_images(encoder, test.images[[lookup[s] for s in ids]])
    if stimuli.shape[1] != c_prime.shape[1]:
        raise GessInputError(decoded, "c_prime", f"{stimuli.shape[1]}-d embeddings of --encoder {encoder.name}",
                             f"{c_prime.shape[1]}-d (decoded with another encoder)")
    return retrieval(c_prime, stimuli)


# ------------------------------------------------------------------ stage: report
def build_report(run, out: str | Path) -> Path:
    """``out/report.html`` from a finished run (:class:`gess.run.RunResult`)."""
    return write_report(run, Path(out))


class StageTimer:
    """Wall time per stage, for the report."""

    def __init__(self, console=None):
        self.console = console
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str, work: Callable):
        start = time.time()
        result = work()
        self.seconds[name] = self.seconds.get(name, 0.0) + time.time() - start
        return result
