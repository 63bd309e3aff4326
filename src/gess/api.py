"""gess in memory, without files: fit the decoders on a dataset, decode its test fMRI, score trust.

These sit below the stages (:mod:`gess.stages`), which add caching, files and resumption.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from gess.data import Dataset
from gess.data.extra import ExtraImages
from gess.decoding import Decoded, GESSDecoder, StructuralSpace
from gess.decoding.selfsupervised import SelfSupervisedOptions
from gess.decoding.structural import StructureOptions
from gess.encoders import DEFAULT_ENCODER, ImageEncoder, get_encoder
from gess.encoders.features import semantic_features
from gess.errors import GessInputError
from gess.featurecache import encode_images, encoder_of
from gess.options import build


def structural_space(dataset: Dataset, options: StructureOptions | None = None, device: str | None = None) -> StructuralSpace:
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
    return StructuralSpace(backend.image_size, options.radius, grey, "latent", generator_identity(options.generator), backend)


def generator_identity(generator) -> str:
    """How a generator is named in a model's structural space: its resolved directory, else its hub id."""
    path = Path(str(generator))
    return str(path.resolve()) if path.exists() else str(generator)


def fit(dataset: Dataset, encoder: ImageEncoder | str = DEFAULT_ENCODER, augment_images: np.ndarray | str | Path | None = None,
        space: StructuralSpace | None = None, use_cache: bool = True,
        extra_images: ExtraImages | np.ndarray | str | Path | None = None, checkpoint: str | Path | None = None,
        fingerprint_key: str | None = None, progress: bool = False, **decoder_options) -> GESSDecoder:
    """Fit the three GESS decoders on a dataset's training trials.

    Parameters
    ----------
    dataset : a :class:`~gess.data.Dataset` (raw fMRI; z-scoring happens inside).
    encoder : an encoder or its name (see :func:`gess.encoders.get_encoder`).
    augment_images : images (or a folder of them) that sample the semantic manifold (C_aug).
    space : what M_s predicts; default blurred pixels (:func:`structural_space`).
    extra_images : for ``structural_decoder="self-supervised"``: images without fMRI
        (:class:`~gess.data.extra.ExtraImages`, an array, a folder or an ``.npz``), refused if
        one is a test stimulus. The test fMRI is its unpaired fMRI unless
        ``self_supervised={"unpaired_fmri": "none"}``.
    checkpoint : where the self-supervised M_s checkpoints (resumed when present).
    decoder_options : :class:`~gess.decoding.GESSDecoder` parameters.

    Examples
    --------
    >>> model = fit(load_mat("digit69_28x28.mat"))  # doctest: +SKIP
    >>> out, ids = decode(model, dataset)            # doctest: +SKIP
    """
    encoder = get_encoder(encoder) if isinstance(encoder, str) else encoder
    space = space or structural_space(dataset)
    train = dataset.train
    stim_features = encode_images(encoder, train.images, use_cache)
    rows = train.image_index()
    structure = space.targets(train.images)[rows]
    augment = _augment_embeddings(encoder, augment_images, train.images.shape[1], use_cache)
    metadata = {"dataset": dataset.name, "source": dataset.source, "provenance": dataset.provenance,
                "n_augment": 0 if augment is None else int(len(augment))}
    if fingerprint_key:
        metadata["fingerprint"] = fingerprint_key
    model = GESSDecoder(**decoder_options)
    extra_structure = unpaired = None
    if model.structural_decoder == "self-supervised":
        extra_structure, unpaired, metadata["self_supervised_data"] = self_supervised_inputs(
            dataset, space, ExtraImages.coerce(extra_images), model.self_supervised or {})
    return model.fit(train.fmri, stim_features[rows], structure, augment_embeddings=augment, encoder=encoder.spec(),
                     structure_space=space, metadata=metadata, groups=train.trial_ids, extra_structure=extra_structure,
                     unpaired_fmri=unpaired, checkpoint=checkpoint, progress=progress)


def _augment_embeddings(encoder: ImageEncoder, augment_images, side: int, use_cache: bool) -> np.ndarray | None:
    if augment_images is None:
        return None
    if isinstance(augment_images, (str, Path)):
        from gess.data.images import load_image_folder

        augment_images, _ = load_image_folder(augment_images, size=side)
    return encode_images(encoder, augment_images, use_cache)


def self_supervised_inputs(dataset: Dataset, space: StructuralSpace, extra: ExtraImages | None, options: dict):
    """The self-supervised M_s's extra images (as targets) and unpaired fMRI, with their provenance."""
    opts = build(SelfSupervisedOptions, options, None, "self_supervised")
    record = {"extra_images": None if extra is None else extra.source, "n_extra_images": 0,
              "unpaired_fmri": opts.unpaired_fmri}
    extra_structure = None
    if extra is not None:
        extra.refuse_test_stimuli(dataset)
        kept = extra.matched(dataset.train.images.shape[1], dataset.train.images.shape[-1], opts.max_extra_images, opts.seed)
        extra_structure = space.targets(kept)
        record["n_extra_images"] = int(len(kept))
    unpaired = dataset.test.fmri if opts.unpaired_fmri == "test" else None
    record["n_unpaired_fmri"] = 0 if unpaired is None else int(len(unpaired))
    return extra_structure, unpaired, record


def decode(model: GESSDecoder, dataset: Dataset) -> tuple[Decoded, np.ndarray]:
    """Decode the dataset's test fMRI, repeats averaged: returns (outputs, stimulus ids).

    A gate whose score depends on the noise level (``scores_single_trials``) scores a repeated stimulus
    trial by trial instead, as its single-trial reference was (:meth:`GESSDecoder.pi_c_over_trials`).
    """
    test = dataset.test.averaged()
    model.check_voxels(test.n_voxels, dataset.source)
    pi_c = None
    if model.gate_.scores_single_trials and len(dataset.test.trial_ids) > len(test.stimulus_ids):
        pi_c = model.pi_c_over_trials(dataset.test.fmri, dataset.test.image_index(), source=dataset.source)
    return model.decode(test.fmri, source=dataset.source, pi_c=pi_c), test.stimulus_ids


def test_fmri(dataset: Dataset) -> np.ndarray:
    """The test fMRI in the order :func:`decode` returns stimuli (repeats averaged)."""
    return dataset.test.averaged().fmri


def reconstruction_features(decoder: GESSDecoder, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """What the trust model reads of reconstructions: their embeddings and, when it uses them, their structural targets."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        images = np.rint(np.clip(images, 0, 1) * 255).astype(np.uint8)
    embeddings = semantic_features(encoder_of(decoder.encoder_), images, progress=False)
    structure = None
    if decoder.trust_reads_structure:
        structure = StructuralSpace.from_config(decoder.structure_space_).targets(images)
    return embeddings, structure


def _scorable(decoder: GESSDecoder) -> bool:
    return getattr(decoder, "trust_", None) is not None and decoder.encoder_.name != "unknown"


def trust_scores(decoder: GESSDecoder, images: np.ndarray, fmri: np.ndarray) -> list:
    """Each reconstruction's trust (:meth:`GESSDecoder.trust`); None where the model or its encoder cannot say."""
    return candidate_scores(decoder, images, fmri, with_matches=False)[0]


def brain_matches(decoder: GESSDecoder, images: np.ndarray, fmri: np.ndarray) -> np.ndarray | None:
    """How well each image explains the response it was decoded from (:meth:`GESSDecoder.brain_match`); None
    where the model has no encoding model."""
    return candidate_scores(decoder, images, fmri)[1]


def candidate_scores(decoder: GESSDecoder, images: np.ndarray, fmri: np.ndarray,
                     with_matches: bool = True) -> tuple[list, np.ndarray | None]:
    """Trust and brain match of each image, its features computed once (best-of-N needs both)."""
    if not _scorable(decoder):
        return [None] * len(images), None
    embeddings, structure = reconstruction_features(decoder, images)
    trust = [float(t) for t in decoder.trust(embeddings, fmri, structure)]
    return trust, decoder.brain_match(embeddings, fmri, structure) if with_matches else None
