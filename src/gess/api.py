"""The stages as Python functions: ``fit`` a GESSDecoder on a dataset, ``decode`` its test fMRI."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from gess.cache import cached_array, fingerprint
from gess.data import Dataset
from gess.data.images import load_image_folder
from gess.encoders import DEFAULT_ENCODER, ImageEncoder, StructuralSpace, get_encoder
from gess.encoders.features import semantic_features
from gess.model import Decoded, GESSDecoder

DECODER_OPTIONS = ("alpha_semantic", "alpha_structural", "alphas", "alignment", "n_neighbors", "reprojection",
                   "regularization", "w_c", "gate", "gate_options", "cv_folds")


def encode_images(encoder: ImageEncoder, images: np.ndarray, use_cache: bool = True) -> np.ndarray:
    """Semantic features of uint8 images, cached by content and encoder."""
    key = fingerprint(images, encoder.config())
    return cached_array("semantic", key, lambda: semantic_features(encoder, images), enabled=use_cache)


def default_structural_space(dataset: Dataset, size: int | None = None) -> StructuralSpace:
    """Blurred pixels at min(image side, 64) px, grey for single-channel stimuli."""
    side = dataset.train.images.shape[1]
    return StructuralSpace(size or min(side, 64), grey=dataset.train.images.shape[-1] == 1)


def fit(dataset: Dataset, encoder: ImageEncoder | str = DEFAULT_ENCODER, augment_images: np.ndarray | str | Path | None = None,
        structural_space: StructuralSpace | None = None, use_cache: bool = True, **decoder_options) -> GESSDecoder:
    """Fit the three GESS decoders on a dataset's training trials.

    Parameters
    ----------
    dataset : a :class:`~gess.data.Dataset` (raw fMRI; z-scoring happens inside).
    encoder : an encoder or its name (see :func:`gess.encoders.get_encoder`).
    augment_images : images (or a folder of them) that sample the semantic manifold (C_aug).
    structural_space : what M_s predicts; default blurred pixels.
    decoder_options : :class:`~gess.model.GESSDecoder` parameters.

    Examples
    --------
    >>> model = fit(load_mat("digit69_28x28.mat"))  # doctest: +SKIP
    >>> out = decode(model, dataset)                # doctest: +SKIP
    """
    encoder = get_encoder(encoder) if isinstance(encoder, str) else encoder
    space = structural_space or default_structural_space(dataset)
    train = dataset.train
    stim_features = encode_images(encoder, train.images, use_cache)
    rows = train.image_index()
    structure = space.targets(train.images)[rows]
    augment = None
    if augment_images is not None:
        if isinstance(augment_images, (str, Path)):
            augment_images, _ = load_image_folder(augment_images, size=train.images.shape[1])
        augment = encode_images(encoder, augment_images, use_cache)
    metadata = {"encoder": encoder.config(), "structure": space.config(), "dataset": dataset.name,
                "source": dataset.source, "n_augment": 0 if augment is None else int(len(augment))}
    model = GESSDecoder(**decoder_options)
    return model.fit(train.fmri, stim_features[rows], structure, augment_embeddings=augment, metadata=metadata)


def decode(model: GESSDecoder, dataset: Dataset) -> tuple[Decoded, np.ndarray]:
    """Decode the dataset's test fMRI, repeats averaged: returns (outputs, stimulus ids)."""
    test = dataset.test.averaged()
    model.check_compatible(n_voxels=test.n_voxels, source=dataset.source)
    return model.decode(test.fmri, source=dataset.source), test.stimulus_ids
