"""A user's own experiment: a folder of images plus an fMRI table.

Layout::

    experiment/
      images/              one file per stimulus, the file stem is the stimulus id
      fmri.npz | fmri.h5   arrays: fmri_train (n_tr, v), fmri_test (n_te, v),
                           train_ids (n_tr,), test_ids (n_te,)  -- the stimulus id of every trial

Repeated trials of one stimulus are allowed (test repeats are averaged later).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from gess.data.dataset import Dataset, Split, validate_fmri
from gess.data.images import list_images, load_image
from gess.errors import GessInputError

FMRI_KEYS = ("fmri_train", "fmri_test", "train_ids", "test_ids")


def _read_table(path: Path) -> dict[str, np.ndarray]:
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        import h5py

        with h5py.File(path, "r") as fh:
            return {k: np.asarray(fh[k]) for k in fh.keys()}
    except Exception as exc:
        raise GessInputError(path, None, "a readable fMRI table (.npz or .h5)", f"unreadable ({type(exc).__name__}: {exc})") from None


def _ids(values: np.ndarray, path: Path, key: str) -> np.ndarray:
    """A 1-D array of stimulus ids as text (strings, UTF-8 bytes or whole numbers), or bad input naming the key."""
    values = np.asarray(values)
    if values.ndim != 1:
        raise GessInputError(path, key, "a 1-D array of stimulus ids", f"shape {values.shape}")
    if values.dtype.kind == "S" or values.dtype.kind == "O" and all(isinstance(v, bytes) for v in values):
        try:
            return np.array([v.decode("utf-8") for v in values], dtype=str)
        except UnicodeDecodeError:
            raise GessInputError(path, key, "stimulus ids as UTF-8 text", "undecodable bytes") from None
    if values.dtype.kind not in "UiuO" or values.dtype.kind == "O" and not all(isinstance(v, str) for v in values):
        raise GessInputError(path, key, "stimulus ids (text or whole numbers)", f"dtype {values.dtype}")
    return values.astype(str)


def _file_size(path: Path) -> str:
    from PIL import Image

    with Image.open(path) as im:
        return f"{im.width}x{im.height}"


def load_folder(directory: str | Path, image_size: int | None = None) -> Dataset:
    """Load ``directory/images`` and ``directory/fmri.npz`` (or ``fmri.h5``)."""
    directory = Path(directory)
    table_path = next((directory / n for n in ("fmri.npz", "fmri.h5") if (directory / n).is_file()), None)
    if table_path is None:
        raise GessInputError(directory, None, "an fMRI table fmri.npz or fmri.h5", "neither found")
    table = _read_table(table_path)
    for key in FMRI_KEYS:
        if key not in table:
            raise GessInputError(table_path, key, f"arrays {', '.join(FMRI_KEYS)}", f"keys {sorted(table)}")
    files = {p.stem: p for p in list_images(directory / "images")}

    def side(name: str) -> Split:
        fmri = validate_fmri(table[f"fmri_{name}"], table_path, f"fmri_{name}")
        trial_ids = _ids(table[f"{name}_ids"], table_path, f"{name}_ids")
        if len(trial_ids) != len(fmri):
            raise GessInputError(table_path, f"{name}_ids", f"{len(fmri)} ids (one per row of fmri_{name})", f"{len(trial_ids)}")
        if len(trial_ids) == 0:
            raise GessInputError(table_path, f"fmri_{name}", f"at least one {name} trial", "none (0 rows)")
        unique = list(dict.fromkeys(trial_ids.tolist()))
        missing = [u for u in unique if u not in files]
        if missing:
            raise GessInputError(directory / "images", f"{name}_ids", "an image file for every stimulus id", f"{len(missing)} missing (e.g. {missing[0]})")
        pictures = [load_image(files[u], image_size) for u in unique]
        odd = next((u for u, p in zip(unique, pictures) if p.shape != pictures[0].shape), None)
        if odd is not None:
            first, other = pictures[0].shape[0], pictures[unique.index(odd)].shape[0]
            raise GessInputError(files[odd], "image size", f"{first}x{first} like {files[unique[0]].name} once "
                                 "centre-cropped to a square (or pass image_size to resize all)",
                                 f"{_file_size(files[odd])} ({other}x{other} once cropped)")
        return Split(fmri, trial_ids, np.stack(pictures), np.array(unique))

    return Dataset(side("train"), side("test"), name=directory.name, source=str(directory), provenance="user data")
