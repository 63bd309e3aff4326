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

from gess.data.dataset import Dataset, Split
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
        trial_ids = np.asarray(table[f"{name}_ids"]).astype(str)
        fmri = table[f"fmri_{name}"]
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
            raise GessInputError(files[odd], "image size", f"{pictures[0].shape[1]}x{pictures[0].shape[0]} like "
                                 f"{files[unique[0]].name} (or pass image_size to resize all)",
                                 f"{pictures[unique.index(odd)].shape[1]}x{pictures[unique.index(odd)].shape[0]}")
        return Split(fmri, trial_ids, np.stack(pictures), np.array(unique))

    return Dataset(side("train"), side("test"), name=directory.name, source=str(directory), provenance="user data")
