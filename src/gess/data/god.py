"""Generic Object Decoding (Horikawa & Kamitani 2017): bdpy BData ``.h5`` + stimulus images."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from gess.data.dataset import Dataset, Split
from gess.data.images import IMAGE_SUFFIXES, load_image
from gess.errors import GessInputError

PROVENANCE = (
    "Generic Object Decoding (Horikawa & Kamitani 2017). Preprocessed fMRI: Subject1-5.h5 (BData) from "
    "figshare.com/articles/Generic_Object_Decoding/7387130; raw data: OpenNeuro ds001246. The stimulus "
    "images (ImageNet) are distributed by the Kamitani lab on request (github.com/KamitaniLab/GenericObjectDecoding). "
    "DataType 1 = training (1200 images), 2 = test (50 images x 35 repeats), 3 = imagery (ignored)."
)
TRAINING, TEST = 1, 2


def god_image_name(stimulus_id: float) -> str:
    """GOD's float stimulus id (e.g. 1518878.010042) -> ImageNet file stem ``n01518878_10042``."""
    wnid = int(np.floor(stimulus_id))
    number = int(round((stimulus_id - wnid) * 1e6))
    return f"n{wnid:08d}_{number}"


def _image_index(image_dir: Path) -> dict[str, Path]:
    if not image_dir.is_dir():
        raise GessInputError(image_dir, None, "a directory of GOD stimulus images named by ImageNet id (n01518878_10042.JPEG)", "no such directory")
    return {p.stem: p for p in image_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES}


def load_god(h5_path: str | Path, image_dir: str | Path, roi: str = "ROI_VC", image_size: int | None = 256) -> Dataset:
    """Read one GOD subject.

    Parameters
    ----------
    h5_path : ``SubjectN.h5`` (BData) with ``VoxelData``, ``DataType`` and ``stimulus_id``.
    image_dir : stimulus images, searched recursively, named by ImageNet id.
    roi : ROI selection passed to ``BData.select`` (``ROI_VC`` = visual cortex).
    image_size : images are resized to this square side (None keeps the first image's size).
    """
    try:
        from bdpy import BData
    except ImportError:
        raise GessInputError(h5_path, None, "the bdpy package to read GOD BData files (pip install bdpy)", "not installed") from None
    h5_path = Path(h5_path)
    if not h5_path.is_file():
        raise GessInputError(h5_path, None, "an existing GOD BData .h5 file", "no such file")
    try:
        bd = BData(str(h5_path))
        fmri = bd.select(roi, verbose=False)
        data_type = bd.select("DataType", verbose=False).ravel()
        stim = bd.select("stimulus_id", verbose=False).ravel()
    except Exception as exc:  # bdpy raises a variety of errors for bad files and unknown ROIs
        raise GessInputError(h5_path, roi, "a BData file with VoxelData, DataType, stimulus_id and the ROI", f"{type(exc).__name__}: {exc}") from None
    images = _image_index(Path(image_dir))

    def side(kind: int, name: str) -> Split:
        rows = data_type == kind
        if not rows.any():
            raise GessInputError(h5_path, "DataType", f"trials of type {kind} ({name})", "none")
        trial_ids = np.array([god_image_name(s) for s in stim[rows]])
        unique = list(dict.fromkeys(trial_ids.tolist()))
        missing = [u for u in unique if u not in images]
        if missing:
            raise GessInputError(image_dir, f"{name} images", f"an image file for every {name} stimulus",
                                 f"{len(missing)} missing (e.g. {missing[0]})")
        first = load_image(images[unique[0]], image_size)
        size = image_size or first.shape[0]
        pics = np.stack([first] + [load_image(images[u], size) for u in unique[1:]])
        labels = np.array([int(u[1:9]) for u in unique])
        return Split(fmri[rows], trial_ids, pics, np.array(unique), labels)

    return Dataset(side(TRAINING, "training"), side(TEST, "test"), name=f"god-{h5_path.stem}",
                   source=str(h5_path), provenance=PROVENANCE, extra={"roi": roi})
