"""The stages of gess, one function each; the CLI commands and `gess run` both call these, and only these.

=================  ===================================================  ==========================
stage              what it writes                                        up to date when
=================  ===================================================  ==========================
:func:`fit_decoders`    ``MODEL/config.json`` + ``model.safetensors``    the fingerprint in config.json matches
:func:`train_prior`     ``PRIOR/config.json`` + ``model.safetensors``    the fingerprint matches, no checkpoint left
:func:`reconstruct`     ``DIR/<stimulus_id>.png`` + ``manifest.json``     each image's settings and seed match
:func:`evaluate`        ``FILE.json``                                     (always recomputed: cheap)
:func:`build_report`    ``DIR/report.html``                              (always rebuilt)
=================  ===================================================  ==========================

Every fingerprint hashes *content* (arrays, settings, the encoder's description),
never file names or times, so a copied dataset is the same dataset and an edited
one is not. Plain in-memory use (no files) is :func:`fit` and :func:`decode`.
"""
from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from gess.cache import cached_array, fingerprint
from gess.data import Dataset
from gess.data.dataset import Split
from gess.decoding import Decoded, GESSDecoder, StructuralSpace
from gess.decoding.decoders import is_model_directory
from gess.decoding.structural import StructureOptions
from gess.encoders import DEFAULT_ENCODER, ImageEncoder, check_same_encoder, get_encoder
from gess.encoders.features import semantic_features
from gess.errors import GessInputError
from gess.io import atomic_path, claim_output_dir, exclusive_lock, read_json, write_json

MANIFEST = "manifest.json"


def _log(console, message: str) -> None:
    if console is not None:
        console.print(message)


# ------------------------------------------------------------------ features
@lru_cache(maxsize=4)
def _encoder(spec, device: str) -> ImageEncoder:
    return get_encoder(spec, device=device)


def decoder_encoder(decoder: GESSDecoder, device: str = "cpu") -> ImageEncoder:
    """The encoder the decoders were fitted with, loaded once per process (GG, KNN and tuning all use it)."""
    return _encoder(decoder.encoder_, str(device))


def encode_images(encoder: ImageEncoder, images: np.ndarray, use_cache: bool = True) -> np.ndarray:
    """Semantic features of uint8 images, cached by content and encoder.

    Under a launcher every process encodes its share of the encoder's global batches (the
    same batches whatever the number of processes, so the same numbers); the main process
    joins the shares into the cache entry, which every process then reads.
    """
    from gess.parallel import current_shard

    key = fingerprint(images, encoder.spec().to_dict())
    shard = current_shard()
    if shard.count == 1 or not use_cache:
        return cached_array("semantic", key, lambda: semantic_features(encoder, images), enabled=use_cache)
    return _encode_sharded(encoder, images, key, shard)


def _encode_sharded(encoder: ImageEncoder, images: np.ndarray, key: str, shard) -> np.ndarray:
    from gess.cache import cache_dir
    from gess.io import save_npz

    folder = cache_dir() / "semantic"
    whole = folder / f"{key}.npz"
    if not whole.is_file():
        size = encoder.batch_size
        batches = [np.arange(i, min(i + size, len(images))) for i in range(0, len(images), size)]
        mine = shard.mine(list(range(len(batches))))
        part = folder / f"{key}.part{shard.index}of{shard.count}.npz"
        if mine and not part.is_file():
            rows = np.concatenate([batches[b] for b in mine])
            save_npz(part, rows=rows, array=semantic_features(encoder, images[rows]))
        shard.wait()
        if shard.is_main and not whole.is_file():
            out = None
            for index in range(shard.count):
                path = folder / f"{key}.part{index}of{shard.count}.npz"
                if not path.is_file():
                    continue
                with np.load(path) as z:
                    out = np.empty((len(images), z["array"].shape[1]), np.float32) if out is None else out
                    out[z["rows"]] = z["array"]
            save_npz(whole, array=out)
            for path in folder.glob(f"{key}.part*of{shard.count}.npz"):
                path.unlink()
        shard.wait()
    with np.load(whole) as z:
        return z["array"]


def structural_space(dataset: Dataset, options: StructureOptions | None = None, device: str = "cpu") -> StructuralSpace:
    """M_s's target space for a dataset: blurred pixels at min(image side, 64) px by default, grey for one channel."""
    options = options or StructureOptions()
    images = dataset.train.images
    grey = images.shape[-1] == 1
    if options.kind == "pixels":
        return StructuralSpace(options.size or min(images.shape[1], 64), options.radius, grey)
    if options.generator is None:
        raise GessInputError(None, "structure.generator", "the generator whose latents M_s predicts (kind: latent)", "nothing")
    from gess.generation.backends import load_backend

    backend = load_backend(options.generator, device=device)
    return StructuralSpace(backend.image_size, options.radius, grey, "latent", _generator_identity(options.generator), backend)


def _generator_identity(generator) -> str:
    path = Path(str(generator))
    return str(path.resolve()) if path.exists() else str(generator)


# ------------------------------------------------------------------ decoders (in memory)
def fit(dataset: Dataset, encoder: ImageEncoder | str = DEFAULT_ENCODER, augment_images: np.ndarray | str | Path | None = None,
        space: StructuralSpace | None = None, use_cache: bool = True, extra_images: np.ndarray | str | Path | None = None,
        checkpoint: str | Path | None = None, fingerprint_key: str | None = None, progress: bool = False,
        **decoder_options) -> GESSDecoder:
    """Fit the three GESS decoders on a dataset's training trials.

    Parameters
    ----------
    dataset : a :class:`~gess.data.Dataset` (raw fMRI; z-scoring happens inside).
    encoder : an encoder or its name (see :func:`gess.encoders.get_encoder`).
    augment_images : images (or a folder of them) that sample the semantic manifold (C_aug).
    space : what M_s predicts; default blurred pixels (:func:`structural_space`).
    extra_images : for ``structural_decoder="self-supervised"``: images without fMRI (an
        array, a folder or an ``.npz``), refused if one is a test stimulus. The test fMRI
        is its unpaired fMRI unless ``self_supervised={"unpaired_fmri": "none"}``.
    checkpoint : where the self-supervised M_s checkpoints (resumed when present).
    decoder_options : :class:`~gess.decoding.GESSDecoder` parameters.

    Examples
    --------
    >>> model = fit(load_mat("digit69_28x28.mat"))  # doctest: +SKIP
    >>> out, ids = decode(model, dataset)            # doctest: +SKIP
    """
    from gess.data.images import load_image_folder

    encoder = get_encoder(encoder) if isinstance(encoder, str) else encoder
    space = space or structural_space(dataset)
    train = dataset.train
    stim_features = encode_images(encoder, train.images, use_cache)
    rows = train.image_index()
    structure = space.targets(train.images)[rows]
    augment = None
    if augment_images is not None:
        if isinstance(augment_images, (str, Path)):
            augment_images, _ = load_image_folder(augment_images, size=train.images.shape[1])
        augment = encode_images(encoder, augment_images, use_cache)
    metadata = {"dataset": dataset.name, "source": dataset.source, "n_augment": 0 if augment is None else int(len(augment))}
    if fingerprint_key:
        metadata["fingerprint"] = fingerprint_key
    model = GESSDecoder(**decoder_options)
    extra_structure = unpaired = None
    if model.structural_decoder == "self-supervised":
        extra_structure, unpaired, metadata["self_supervised_data"] = _self_supervised_inputs(
            dataset, space, extra_images, model.self_supervised or {})
    return model.fit(train.fmri, stim_features[rows], structure, augment_embeddings=augment, encoder=encoder.spec(),
                     structure_space=space, metadata=metadata, groups=train.trial_ids, extra_structure=extra_structure,
                     unpaired_fmri=unpaired, checkpoint=checkpoint, progress=progress)


def _self_supervised_inputs(dataset: Dataset, space: StructuralSpace, extra_images, options: dict):
    """The self-supervised M_s's extra images (as targets) and unpaired fMRI, with their provenance."""
    from gess.data import extra as extras
    from gess.decoding.selfsupervised import SelfSupervisedOptions
    from gess.options import build

    opts = build(SelfSupervisedOptions, options, None, "self_supervised")
    record = {"extra_images": str(extra_images) if isinstance(extra_images, (str, Path)) else None, "n_extra_images": 0,
              "unpaired_fmri": opts.unpaired_fmri}
    extra_structure = None
    if extra_images is not None:
        pool = extras.load_extra_images(extra_images) if isinstance(extra_images, (str, Path)) else extra_images
        extras.check_no_test_stimuli(pool, dataset.test.images, dataset.test.stimulus_ids,
                                     extra_images if isinstance(extra_images, (str, Path)) else None)
        kept = extras.match_images(extras.subset(pool, opts.max_extra_images, opts.seed), dataset.train.images.shape[1],
                                   dataset.train.images.shape[-1])
        extra_structure = space.targets(kept)
        record["n_extra_images"] = int(len(kept))
    unpaired = dataset.test.fmri if opts.unpaired_fmri == "test" else None
    record["n_unpaired_fmri"] = 0 if unpaired is None else int(len(unpaired))
    return extra_structure, unpaired, record


def decode(model: GESSDecoder, dataset: Dataset) -> tuple[Decoded, np.ndarray]:
    """Decode the dataset's test fMRI, repeats averaged: returns (outputs, stimulus ids)."""
    test = dataset.test.averaged()
    model.check_voxels(test.n_voxels, dataset.source)
    return model.decode(test.fmri, source=dataset.source), test.stimulus_ids


# ------------------------------------------------------------------ stage: fit the decoders
def fit_decoders(dataset: Dataset, out: str | Path, encoder: ImageEncoder, decoder_options: dict | None = None,
                 structure: StructureOptions | None = None, augment_images: np.ndarray | None = None,
                 console=None, extra_images: str | Path | np.ndarray | None = None) -> GESSDecoder:
    """Fit M_c, M_s and M_g and save them to ``out``; an up-to-date ``out`` is loaded instead.

    A self-supervised M_s checkpoints into ``out/checkpoint``: an interrupted fit resumes there.
    """
    decoder_options = dict(decoder_options or {})
    structure = structure or StructureOptions()
    params = GESSDecoder(**decoder_options).get_params()
    self_supervised = params["structural_decoder"] == "self-supervised"
    extra = extra_images
    if self_supervised and isinstance(extra_images, (str, Path)):
        from gess.data.extra import check_no_test_stimuli, load_extra_images

        extra = load_extra_images(extra_images)  # read once; refused here, naming the file, before any work
        check_no_test_stimuli(extra, dataset.test.images, dataset.test.stimulus_ids, extra_images)
    key = fingerprint("decoders", dataset.train.fmri, dataset.train.trial_ids, dataset.train.images,
                      dataset.train.stimulus_ids, encoder.spec().to_dict(), structure.to_dict(), params,
                      augment_images if augment_images is not None else None,
                      *((extra, dataset.test.fmri) if self_supervised else ()))
    out = Path(out)
    config = out / "config.json"
    if config.is_file() and read_json(config).get("metadata", {}).get("fingerprint") == key:
        _log(console, f"decoders: {out} is up to date (same data, encoder and options)")
        return GESSDecoder.load(out, device=params["device"])
    claim_output_dir(out, "model", is_model_directory)  # refuse before the work, not after
    space = structural_space(dataset, structure, params["device"])
    with exclusive_lock(out):
        model = fit(dataset, encoder, augment_images=augment_images, space=space, extra_images=extra,
                    checkpoint=out / "checkpoint", fingerprint_key=key, progress=console is not None, **decoder_options)
        if isinstance(extra_images, (str, Path)):
            model.metadata_["self_supervised_data"]["extra_images"] = str(extra_images)
        model.save(out)
    _log(console, f"decoders fitted -> {out} (gate {model.gate_.name}, alpha_c {_describe(model.semantic_.ridge_.alpha_)}, "
                  f"alpha_s {_describe(model.alpha_structural_used_)}; "
                  + ", ".join(f"{k} {v:.1f} s" for k, v in model.fit_seconds_.items()) + ")")
    return model


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
    from gess.data import load_dataset
    from gess.data.images import IMAGE_SUFFIXES, load_image_folder

    path = Path(path)
    if path.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
        return load_image_folder(path)[0], None
    dataset = load_dataset(path, format)
    return dataset.train.images, dataset


def with_extra_images(images: np.ndarray, extra: np.ndarray | str | Path | None, test: Dataset | None = None,
                      limit: int | None = None, seed: int = 0, console=None) -> np.ndarray:
    """``images`` joined by (at most ``limit`` of) ``extra``, converted to their size and channels.

    ``extra`` is refused when it holds a copy of one of ``test``'s test stimuli (all of
    ``extra`` is checked, not only the share kept).
    """
    from gess.data import extra as extras

    if extra is None:
        return images
    source = extra if isinstance(extra, (str, Path)) else None
    pool = extras.load_extra_images(extra) if source is not None else extra
    if test is not None:
        test_split = test.test
        extras.check_no_test_stimuli(pool, test_split.images, test_split.stimulus_ids, source)
    kept = extras.match_images(extras.subset(pool, limit, seed), images.shape[1], images.shape[-1])
    _log(console, f"extra images: {len(kept)} of {len(pool)}" + (f" from {source}" if source else "")
                  + ("; none is a test stimulus" if test is not None else ""))
    return np.concatenate([images, kept])


def train_prior(images: np.ndarray, out: str | Path, encoder: ImageEncoder, options=None, console=None,
                progress: bool = True, known_embeddings: np.ndarray | None = None) -> Path:
    """Train the pixel prior on ``images`` into ``out``; an up-to-date prior is kept, an interrupted one resumed.

    ``known_embeddings``, the encoder's embeddings of the first ``len(known_embeddings)``
    images, spares encoding them again (the rest are encoded and cached).
    """
    from gess.checkpoint import check_resumable
    from gess.generation.train import TrainOptions, resume_options, train_prior as train

    options = options or TrainOptions()
    key = fingerprint("prior", images, encoder.spec().to_dict(), {**options.to_dict(), "threads": None})
    out = Path(out)
    config = out / "config.json"
    if config.is_file() and not (out / "checkpoint").exists() and read_json(config).get("fingerprint") == key:
        _log(console, f"pixel prior: {out} is up to date (same images, encoder and options)")
        return out
    claim_output_dir(out, "pixel prior", is_prior_directory)
    if (out / "checkpoint" / "state.json").is_file():
        check_resumable(out / "checkpoint", resume_options(options, len(images)))
    with exclusive_lock(out):
        _log(console, f"training a {options.image_size}px pixel prior on {len(images)} images for {options.steps} steps")
        train(images, _embeddings_of(encoder, images, known_embeddings), out, encoder.spec(), options,
              progress=progress, extra_config={"fingerprint": key})
    return out


def _embeddings_of(encoder: ImageEncoder, images: np.ndarray, known: np.ndarray | None) -> np.ndarray:
    if known is None or len(known) == 0:
        return encode_images(encoder, images)
    if len(known) == len(images):
        return np.asarray(known, np.float32)
    return np.concatenate([np.asarray(known, np.float32), encode_images(encoder, images[len(known):])])


def is_prior_directory(directory: Path) -> bool:
    """Whether ``directory`` holds a pixel prior (or its checkpoint) that gess wrote."""
    if (directory / "checkpoint" / "state.json").is_file():
        return True
    try:
        return read_json(directory / "config.json").get("_class_name") == "PixelPrior"
    except (GessInputError, OSError, AttributeError):
        return False


def cached_prior(images: np.ndarray, encoder: ImageEncoder, options, console=None, progress: bool = True,
                 known_embeddings: np.ndarray | None = None) -> Path:
    """A prior trained on ``images`` in the gess cache (shared by runs with the same images and options)."""
    from gess.cache import cache_dir

    key = fingerprint("prior", images, encoder.spec().to_dict(), {**options.to_dict(), "threads": None})
    return train_prior(images, cache_dir() / "priors" / key, encoder, options, console, progress, known_embeddings)


# ------------------------------------------------------------------ stage: reconstruct
def _write_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(tmp, format="PNG")


def _read_manifest(out: Path) -> dict:
    """Entries of ``manifest.json`` and of any per-process parts (a multi-process run not yet merged)."""
    entries = {m["stimulus_id"]: m for m in read_json(out / MANIFEST)} if (out / MANIFEST).is_file() else {}
    for part in sorted(out.glob("manifest.part*.json")):
        entries.update({m["stimulus_id"]: m for m in read_json(part)})
    return entries


def reconstruct(decoder: GESSDecoder, dataset: Dataset, out: str | Path, method: str = "cs", generator: str | Path | None = None,
                seed: int = 0, sampling=None, cs=None, gg=None, device: str = "cpu", progress: bool = True,
                console=None, backend_name: str | None = None) -> dict:
    """One ``<stimulus_id>.png`` per test stimulus and ``manifest.json`` in ``out``, for any method.

    Generator methods keep images whose manifest entry has the same settings and seed
    (a re-run resumes); ``structure`` and ``knn`` cost nothing and are always rewritten.
    With ``cs.tune`` the CS settings are chosen on held-out folds of the training data
    (:func:`tune_cs_on_training_folds`) and recorded in the manifest. ``backend_name``
    (``pixel``, ``unclip``), when given, is checked against the generator found.
    """
    from gess.generation import CSOptions, GGOptions, SamplingOptions
    from gess.generation.methods import BASELINE_METHODS, METHODS

    if method not in METHODS:
        raise GessInputError(None, "method", f"one of {', '.join(METHODS)}", repr(method))
    sampling, cs, gg = sampling or SamplingOptions(), cs or CSOptions(), gg or GGOptions()
    out = Path(out)
    decoded, ids = decode(decoder, dataset)
    space = decoder.structure_space_ or {"kind": "pixels"}
    needs_generator = method not in BASELINE_METHODS or (method == "structure" and space.get("kind") == "latent")
    if needs_generator and generator is None:
        raise GessInputError(None, "generator", f"a generator directory for method '{method}'", "none")
    if needs_generator:
        _check_generator_exists(generator)
    from gess.parallel import current_shard

    shard = current_shard()
    claim_output_dir(out, "reconstruction", lambda d: (d / MANIFEST).is_file() or any(d.glob("manifest.part*.json")),
                     clean=shard.is_main)
    if shard.is_main and any(out.glob("manifest.part*.json")):
        _merge_parts(out, ids)  # an interrupted multi-process run: its parts, before new ones are written
    shard.wait()  # leftovers are gone and old parts merged before anyone writes
    with exclusive_lock(out, name=".gess.lock" if shard.is_main else f".gess.lock.{shard.index}"):
        if method in BASELINE_METHODS:  # cheap: the main process writes them all
            if shard.is_main:
                backend = _open_generator(decoder, generator, device, backend_name) if needs_generator else None
                images = _baseline_images(method, decoder, dataset, decoded, space, backend)
                _write_all(out, ids, images, decoded.pi_c, _trust_of(decoder, images, test_fmri(dataset)), method, seed)
            shard.wait()
            return {"generated": len(ids) if shard.is_main else 0, "skipped": 0}
        return _generate(decoder, dataset, out, method, generator, seed, sampling, cs, gg, device, progress, console,
                         backend_name, decoded, ids, space)


def _generate(decoder, dataset, out, method, generator, seed, sampling, cs, gg, device, progress, console, backend_name,
              decoded, ids, space) -> dict:
    """The generator methods of :func:`reconstruct`, for this process's share of the global batches."""
    from gess.generation.methods import CS_METHODS
    from gess.parallel import current_shard

    shard = current_shard()
    # the decoder's fingerprint is part of the settings: a refitted decoder invalidates its images
    settings = {"method": method, "generator": str(generator), "sampling": sampling.to_dict(),
                "decoder": decoder.metadata_.get("fingerprint") or decoder.get_params(),
                "cs": cs.to_dict() if method in CS_METHODS else None, "gg": gg.to_dict() if method == "gg" else None}
    by_id = _read_manifest(out)
    seeds = [seed + i for i in range(len(ids))]

    def finished(i: int) -> bool:
        entry = by_id.get(ids[i])
        return bool(entry and (out / entry["file"]).is_file() and entry.get("settings") == settings
                    and entry.get("seed") == seeds[i])

    n, size = len(ids), sampling.batch_size
    batches = [list(range(i, min(i + size, n))) for i in range(0, n, size)]
    # a batch is made whole again when any of its images is missing: the same batches, the same bytes
    todo = [b for b in shard.mine(batches) if not all(finished(i) for i in b)]
    generated = 0
    if todo:
        backend = _open_generator(decoder, generator, device, backend_name)  # a finished share never loads it
        chosen, tuning = cs, None
        if cs.tune and method in CS_METHODS:
            if not shard.is_main:
                shard.wait()  # the main process tunes first; the others read its cached choice
            chosen, tuning = tune_cs_on_training_folds(decoder, dataset.train, backend, method, sampling, cs, console)
            if shard.is_main:
                shard.wait()
            sampling = _with_floor(sampling, tuning["min_structure_weight"]) if method == "cs" else sampling
        record = ({"tuned": tuning} if tuning else {}) | {"versions": software_versions()}
        order = [i for b in todo for i in b]
        written = {}

        def write_batch(local_idx, images):
            nonlocal generated
            trust = _trust_of(decoder, images, fmri[[order[j] for j in local_idx]])
            for j, img, score in zip(local_idx, images, trust):
                i = order[j]
                if finished(i):
                    continue  # already on disk from an earlier run: never written twice
                name = f"{ids[i]}.png"
                _write_png(out / name, img)
                entry = {"stimulus_id": str(ids[i]), "file": name, "pi_c": float(decoded.pi_c[i]), "trust": score,
                         "method": method,
                         "seed": seeds[i], "steps": sampling.steps, "settings": settings, **record}
                by_id[ids[i]] = written[ids[i]] = entry
                generated += 1
            _write_progress(out, shard, ids, by_id, written)

        from gess.generation import reconstruct as generate

        idx = np.array(order)
        fmri = test_fmri(dataset)
        encoder = decoder_encoder(decoder, device) if method == "gg" else None
        generate(backend, decoded.c_prime[idx], decoded.c[idx], decoded.s[idx], decoded.pi_c[idx], method, sampling,
                 seeds=[seeds[i] for i in order], cs_options=chosen, gg_options=gg, encoder=encoder,
                 structure_kind=space.get("kind", "pixels"), on_batch=write_batch, progress=progress and shard.is_main)
    elif cs.tune and method in CS_METHODS and shard.count > 1:
        shard.wait()  # keep step with the processes that tune
    shard.wait()
    if shard.is_main:
        _merge_parts(out, ids)
    shard.wait()
    share = sum(len(b) for b in shard.mine(batches))
    return {"generated": generated, "skipped": share - generated, "other_processes": n - share}


def _merge_parts(out: Path, ids) -> None:
    """Fold every process's manifest part into manifest.json, then remove the parts."""
    _write_manifest(out, ids, _read_manifest(out))
    for part in out.glob("manifest.part*.json"):
        part.unlink()


def _write_progress(out: Path, shard, ids, by_id: dict, written: dict) -> None:
    """One process: the manifest itself. Several: each its own part, merged by the main process at the end."""
    if shard.count == 1:
        _write_manifest(out, ids, by_id)
    else:
        write_json(out / f"manifest.part{shard.index}.json", list(written.values()))


def software_versions() -> dict:
    """What a run needs to be reproduced besides its seeds and settings."""
    import platform

    import torch

    from gess import __version__

    return {"gess": __version__, "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()}


def _with_floor(sampling, floor: float):
    from dataclasses import replace

    return replace(sampling, min_structure_weight=floor)


def _write_manifest(out: Path, ids, by_id: dict) -> None:
    write_json(out / MANIFEST, [by_id[s] for s in ids if s in by_id])


def _write_all(out: Path, ids, images: np.ndarray, pi_c: np.ndarray, trust: list, method: str, seed: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    by_id = {}
    for sid, img, p, score in zip(ids, images, pi_c, trust):
        _write_png(out / f"{sid}.png", img)
        by_id[sid] = {"stimulus_id": str(sid), "file": f"{sid}.png", "pi_c": float(p), "trust": score, "method": method,
                      "seed": seed, "steps": 0}
    _write_manifest(out, ids, by_id)


def test_fmri(dataset: Dataset) -> np.ndarray:
    """The test fMRI in the order :func:`decode` returns stimuli (repeats averaged)."""
    return dataset.test.averaged().fmri


def _trust_of(decoder: GESSDecoder, images: np.ndarray, fmri: np.ndarray) -> list:
    """Each reconstruction's trust (:meth:`GESSDecoder.trust`); None where the model or its encoder cannot say."""
    if getattr(decoder, "trust_", None) is None or decoder.encoder_.name == "unknown":
        return [None] * len(images)
    from gess.encoders.features import semantic_features

    images = np.asarray(images)
    if images.dtype != np.uint8:
        images = np.rint(np.clip(images, 0, 1) * 255).astype(np.uint8)
    embeddings = semantic_features(decoder_encoder(decoder), images, progress=False)
    return [float(t) for t in decoder.trust(embeddings, fmri)]


def _check_generator_exists(generator) -> None:
    """Fail before anything is written when the generator is neither a directory nor a hub id."""
    from gess.errors import MissingWeightsError

    path = Path(str(generator))
    if not path.is_dir() and not (str(generator).count("/") == 1 and not path.exists()):
        raise MissingWeightsError("a generator", str(generator),
                                  "train a pixel prior with `gess prior train`, or pass a Stable unCLIP directory")


def _open_generator(decoder: GESSDecoder, generator, device: str, backend_name: str | None = None):
    """Load a generator and check it speaks the decoders' embeddings and, for latent M_s, is theirs."""
    from gess.generation.backends import load_backend

    backend = load_backend(generator, device=device)
    if backend_name is not None and backend.name != backend_name:
        raise GessInputError(generator, "generator.backend", f"a '{backend_name}' generator", f"a '{backend.name}' one")
    check_same_encoder(decoder.encoder_, backend.encoder_spec, "the generator to be conditioned on the decoders' embeddings",
                       generator)
    space = decoder.structure_space_ or {}
    if space.get("kind") == "latent" and space.get("generator") != _generator_identity(generator):
        raise GessInputError(generator, "structure", f"the generator whose latents M_s was fitted on ({space.get('generator')})",
                             _generator_identity(generator))
    return backend


def _baseline_images(method: str, decoder: GESSDecoder, dataset: Dataset, decoded: Decoded, space: dict, backend) -> np.ndarray:
    """``structure``: M_s's output as an image; ``knn``: the training stimulus nearest the decoded embedding."""
    if method == "structure":
        images = StructuralSpace.from_config(space, backend).to_images(decoded.s)
        return np.rint(np.clip(images, 0, 1) * 255).astype(np.uint8)
    from gess.baselines import knn_indices

    train_embeddings = encode_images(decoder_encoder(decoder), dataset.train.images)
    return dataset.train.images[knn_indices(decoded.c_prime, train_embeddings)]


def held_out_fold_outputs(decoder: GESSDecoder, train: Split, folds: int = 5, seed: int = 0, autoencoder=None,
                          extra_images=None) -> list[dict]:
    """Decoders refitted without each fold of the TRAINING stimuli, decoding that fold.

    Only ``train`` is read: the test set never enters tuning (a self-supervised M_s takes
    the held-out fold's fMRI as its unpaired fMRI, and the extra images it was fitted
    with, ``extra_images`` or the source its metadata records). Each fold's dict holds
    c_prime, c, s, pi_c of its held-out stimuli, their images (``target``) and ids.
    """
    from gess.data.dataset import Dataset

    encoder = decoder_encoder(decoder)
    space = StructuralSpace.from_config(decoder.structure_space_ or {"size": 64}, autoencoder)
    extra_pool = None
    if decoder.structural_decoder == "self-supervised":
        from gess.data.extra import load_extra_images

        extra_images = extra_images if extra_images is not None else (
            decoder.metadata_.get("self_supervised_data", {}).get("extra_images"))
        extra_pool = load_extra_images(extra_images) if isinstance(extra_images, (str, Path)) else extra_images
    outputs = []
    n = len(train.stimulus_ids)
    for held in np.array_split(np.random.default_rng(seed).permutation(n), min(folds, n)):
        keep = np.setdiff1d(np.arange(n), held)
        fitting, heldout = train.subset(train.stimulus_ids[keep]), train.subset(train.stimulus_ids[held])
        fold = Dataset(fitting, heldout, name="training fold")
        model = fit(fold, encoder, space=space, extra_images=_fold_extra(extra_pool, heldout), **decoder.get_params())
        d, ids = decode(model, fold)
        lookup = {s: i for i, s in enumerate(heldout.stimulus_ids)}
        outputs.append({"c_prime": d.c_prime, "c": d.c, "s": d.s, "pi_c": d.pi_c, "stimulus_ids": ids,
                        "target": heldout.images[[lookup[s] for s in ids]]})
    return outputs


def _fold_extra(pool: np.ndarray | None, heldout: Split) -> np.ndarray | None:
    """The extra images less the held-out fold's stimuli (a training stimulus may be among them, e.g. in MNIST)."""
    from gess.data.extra import without_copies

    return None if pool is None else without_copies(pool, heldout.images)


def tune_cs_on_training_folds(decoder: GESSDecoder, train: Split, backend, method: str, sampling, cs, console=None):
    """CS settings chosen by pixel correlation on held-out training folds; cached by content.

    Returns (CSOptions with the chosen low-pass factor and share of steps, a record
    with the chosen floor on pi_s and every setting tried).
    """
    from dataclasses import replace

    from gess.cache import cache_dir
    from gess.generation.tuning import tune_cs

    floors = cs.tune_min_structure_weights if method == "cs" else (0.0,)
    key = fingerprint("cs-tuning", decoder.metadata_.get("fingerprint") or decoder.get_params(), train.fmri, train.images,
                      backend.config(), method, sampling.to_dict(), cs.to_dict())
    path = cache_dir() / "cs-tuning" / f"{key}.json"
    if path.is_file():
        record = read_json(path)
    else:
        _log(console, f"tuning CS ({method}) on {cs.tune_folds} held-out folds of the training data")
        folds = held_out_fold_outputs(decoder, train, cs.tune_folds, autoencoder=backend)
        best, floor, grid = tune_cs(backend, folds, cs.tune_lowpass_factors, cs.tune_fractions, sampling, method, floors, cs)
        record = {"lowpass_factor": best.lowpass_factor, "fraction": best.fraction, "min_structure_weight": floor,
                  "folds": cs.tune_folds, "grid": grid, "tuned_on": [str(s) for s in train.stimulus_ids]}
        write_json(path, record)
    _log(console, f"CS chosen on training folds: low-pass x{record['lowpass_factor']}, fraction {record['fraction']}, "
                  f"floor {record['min_structure_weight']}")
    return replace(cs, lowpass_factor=record["lowpass_factor"], fraction=record["fraction"]), record


# ------------------------------------------------------------------ stage: evaluate
def evaluate(recon: str | Path, dataset: Dataset, protocol: str = "paper", out: str | Path | None = None, **options) -> dict:
    """Score ``recon/<stimulus_id>.png`` against the dataset's test stimuli (see :mod:`gess.evaluation.scoring`)."""
    from gess.evaluation.scoring import evaluate_directory

    return evaluate_directory(recon, dataset, protocol, out=out, **options)


# ------------------------------------------------------------------ stage: report
def build_report(run, out: str | Path) -> Path:
    """``out/report.html`` from a finished run (:class:`gess.run.RunResult`)."""
    from gess.report.build import build_report as build

    return build(run, Path(out))


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
