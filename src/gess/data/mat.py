"""Loader for the fmriTrn/fmriTest/stimTrn/stimTest ``.mat`` layout (digit69 and kin)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from gess.data.dataset import Dataset, merge_repeated_images, paired_split
from gess.errors import GessInputError

MAT_FIELDS = ("fmriTrn", "fmriTest", "stimTrn", "stimTest")
PROVENANCE = (
    "van Gerven et al. 2010 '69' handwritten-digit fMRI (V1-V3), as redistributed with the DGMM code "
    "(Du et al. 2017, github.com/ChangdeDu/DGMM); Donders data-use agreement. The same layout is used "
    "by other small public fMRI decoding sets."
)


def load_mat(path: str | Path) -> Dataset:
    """Read a ``.mat`` file with fields fmriTrn, fmriTest, stimTrn, stimTest (labels optional).

    Images are stored one per row, column-major (MATLAB order), square, grey
    (side*side values) or RGB (3*side*side values); pixels may be integer or
    float. MATLAB v7.3 (HDF5) files are read too. Trials that show the same image
    (identical pixels) share one stimulus id, so test repeats are averaged and a
    repeated image is never its own "other" candidate in identification.

    Examples
    --------
    >>> ds = load_mat("../shared/data/digit69/digit69_28x28.mat")  # doctest: +SKIP
    >>> ds.train.fmri.shape
    (90, 3092)
    """
    path = Path(path)
    fields = _read_fields(path)
    missing = [f for f in MAT_FIELDS if f not in fields]
    if missing:
        raise GessInputError(path, missing[0], f"a .mat file with fields {', '.join(MAT_FIELDS)}",
                             f"fields {sorted(k for k in fields if not k.startswith('__'))}")
    fmri_tr, fmri_te = fields["fmriTrn"], fields["fmriTest"]
    img_tr = _rows_to_images(fields["stimTrn"], path, "stimTrn")
    img_te = _rows_to_images(fields["stimTest"], path, "stimTest")
    if img_tr.shape[1:] != img_te.shape[1:]:
        raise GessInputError(path, "stimTest", f"images of shape {img_tr.shape[1:]} as in stimTrn", str(img_te.shape[1:]))
    lab_tr = _labels(fields.get("labelTrn"), len(img_tr))
    lab_te = _labels(fields.get("labelTest"), len(img_te))
    train = paired_split(fmri_tr, img_tr, lab_tr, "train", path, "fmriTrn/stimTrn")
    test = paired_split(fmri_te, img_te, lab_te, "test", path, "fmriTest/stimTest")
    train, test = merge_repeated_images(train), merge_repeated_images(test)
    return Dataset(train, test, name=path.stem, source=str(path), provenance=PROVENANCE)


def _read_fields(path: Path) -> dict:
    if not path.is_file():
        raise GessInputError(path, None, "an existing .mat file", "no such file")
    import scipy.io

    try:
        return scipy.io.loadmat(str(path))
    except NotImplementedError:  # MATLAB v7.3 is HDF5
        return _read_hdf5_mat(path)
    except Exception as exc:  # truncated or not a .mat file at all
        raise GessInputError(path, None, "a readable MATLAB .mat file", f"unreadable ({type(exc).__name__}: {exc})") from None


def _read_hdf5_mat(path: Path) -> dict:
    import h5py

    try:
        with h5py.File(path, "r") as fh:
            # HDF5 stores MATLAB arrays transposed
            return {k: np.asarray(fh[k]).T for k in fh.keys() if isinstance(fh[k], h5py.Dataset)}
    except OSError as exc:
        raise GessInputError(path, None, "a readable MATLAB v7.3 .mat file", f"unreadable ({exc})") from None


def _rows_to_images(stim: np.ndarray, path: Path, name: str) -> np.ndarray:
    stim = np.asarray(stim)
    if stim.ndim in (3, 4):  # already (n, H, W[, C])
        return stim
    if stim.ndim != 2:
        raise GessInputError(path, name, "one flattened image per row", f"shape {stim.shape}")
    n, length = stim.shape
    if n == 0:
        raise GessInputError(path, name, "at least one image (one per trial)", "none (0 rows)")
    side = math.isqrt(length)
    if side * side == length:
        return np.stack([r.reshape(side, side, order="F") for r in stim])[..., None]
    side = math.isqrt(length // 3)
    if length % 3 == 0 and side * side * 3 == length:
        return np.stack([r.reshape(side, side, 3, order="F") for r in stim])
    raise GessInputError(path, name, "rows of side*side (grey) or 3*side*side (RGB) pixels", f"{length} values per row")


def _labels(labels, n: int):
    if labels is None:
        return None
    labels = np.asarray(labels).reshape(-1)
    return labels.astype(np.int64) if labels.size == n else None
