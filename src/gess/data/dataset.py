"""The one dataset type of gess: fMRI trials paired with the stimulus images."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from gess.errors import GessInputError


@dataclass
class Split:
    """One side (training or test) of an experiment.

    Attributes
    ----------
    fmri : (n_trials, n_voxels) float32
    trial_ids : (n_trials,) str, the stimulus id each trial showed
    images : (n_stimuli, H, W, C) uint8, one per stimulus
    stimulus_ids : (n_stimuli,) str, unique
    labels : (n_stimuli,) int or None, optional class labels
    """

    fmri: np.ndarray
    trial_ids: np.ndarray
    images: np.ndarray
    stimulus_ids: np.ndarray
    labels: np.ndarray | None = None

    @property
    def n_voxels(self) -> int:
        return int(self.fmri.shape[1])

    def image_index(self) -> np.ndarray:
        """For each trial, the row of ``images`` it showed."""
        lookup = {sid: i for i, sid in enumerate(self.stimulus_ids)}
        return np.array([lookup[t] for t in self.trial_ids], dtype=np.int64)

    def trial_images(self) -> np.ndarray:
        """The image of every trial, aligned with ``fmri`` rows."""
        return self.images[self.image_index()]

    def averaged(self) -> "Split":
        """Average repeated trials of one stimulus: one fMRI row per stimulus."""
        idx = self.image_index()
        n = len(self.stimulus_ids)
        sums = np.zeros((n, self.fmri.shape[1]), dtype=np.float64)
        np.add.at(sums, idx, self.fmri)
        counts = np.bincount(idx, minlength=n)
        keep = counts > 0
        fmri = (sums[keep] / counts[keep, None]).astype(np.float32)
        labels = self.labels[keep] if self.labels is not None else None
        return Split(fmri, self.stimulus_ids[keep].copy(), self.images[keep], self.stimulus_ids[keep].copy(), labels)

    def subset(self, stimulus_ids) -> "Split":
        """The trials and images of the given stimuli, in the given order."""
        wanted = [str(s) for s in stimulus_ids]
        lookup = {sid: i for i, sid in enumerate(self.stimulus_ids)}
        missing = [s for s in wanted if s not in lookup]
        if missing:
            raise GessInputError(None, "stimulus_ids", "ids present in the split", f"unknown {missing[:3]}")
        rows = np.array([lookup[s] for s in wanted], dtype=np.int64)
        trials = np.isin(self.trial_ids, wanted)
        labels = self.labels[rows] if self.labels is not None else None
        return Split(self.fmri[trials], self.trial_ids[trials], self.images[rows], self.stimulus_ids[rows], labels)


@dataclass
class Dataset:
    """Training and test fMRI with their stimuli, and where they came from.

    ``source`` names the file or directory read, ``provenance`` says where such
    data comes from and under which terms.
    """

    train: Split
    test: Split
    name: str = "dataset"
    source: str = ""
    provenance: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_split(self.train, self.source, "train")
        validate_split(self.test, self.source, "test")
        if self.train.n_voxels != self.test.n_voxels:
            raise GessInputError(
                self.source, "test fMRI", f"{self.train.n_voxels} voxels (as in the training fMRI)",
                f"{self.test.n_voxels}",
            )

    def averaged(self) -> "Dataset":
        """Repeated test trials averaged (the field's protocol); training trials kept."""
        return replace(self, test=self.test.averaged())

    def standardized(self) -> "Dataset":
        """Voxels z-scored with training statistics only."""
        mean, std = voxel_statistics(self.train.fmri)
        return replace(
            self,
            train=replace(self.train, fmri=((self.train.fmri - mean) / std).astype(np.float32)),
            test=replace(self.test, fmri=((self.test.fmri - mean) / std).astype(np.float32)),
        )

    def summary(self) -> str:
        tr, te = self.train, self.test
        h, w, c = tr.images.shape[1:]
        return (
            f"{self.name}: {tr.fmri.shape[0]} training trials of {len(tr.stimulus_ids)} stimuli, "
            f"{te.fmri.shape[0]} test trials of {len(te.stimulus_ids)} stimuli, {tr.n_voxels} voxels, "
            f"images {h}x{w}x{c}"
        )


def voxel_statistics(fmri: np.ndarray, rows: int = 1024, with_constant: bool = False):
    """Per-voxel mean and std (float64 sums over row blocks: no full-size transient).

    Constant voxels get std 1 (they carry nothing; z-scoring keeps them finite at 0);
    ``with_constant`` also returns how many there were.
    """
    n = len(fmri)
    total = np.zeros(fmri.shape[1], np.float64)
    for start in range(0, n, rows):
        total += np.asarray(fmri[start:start + rows], np.float64).sum(0)
    mean = total / n
    squares = np.zeros_like(total)
    for start in range(0, n, rows):
        squares += ((np.asarray(fmri[start:start + rows], np.float64) - mean) ** 2).sum(0)
    std = np.sqrt(squares / n)
    constant = std < 1e-8
    std[constant] = 1.0
    out = (mean.astype(np.float32), std.astype(np.float32))
    return out + (int(constant.sum()),) if with_constant else out


def validate_fmri(fmri: np.ndarray, file: str | Path, field_name: str) -> np.ndarray:
    """Return ``fmri`` as float32 (trials x voxels), or raise a clear error."""
    arr = np.asarray(fmri)
    if arr.ndim != 2:
        raise GessInputError(file, field_name, "a 2-D array (trials x voxels)", f"shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise GessInputError(file, field_name, "at least one trial and one voxel", f"shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise GessInputError(file, field_name, "real numeric values", f"dtype {arr.dtype}")
    if arr.dtype not in (np.float32, np.float16):  # float32/float16 (e.g. memory-mapped) are read as they are
        arr = arr.astype(np.float32)
    for start in range(0, arr.shape[0], 1024):  # row blocks: no full-size boolean array
        block = np.asarray(arr[start:start + 1024])
        bad = ~np.isfinite(block)
        if bad.any():
            t, v = np.argwhere(bad)[0]
            kinds = "NaN" if np.isnan(block[bad]).any() else "Inf"
            count = sum(int((~np.isfinite(np.asarray(arr[s:s + 1024]))).sum()) for s in range(0, arr.shape[0], 1024))
            raise GessInputError(
                file, field_name, "finite voxel values",
                f"{count} {kinds} values (first at trial {start + t}, voxel {v})",
            )
    return arr


def validate_images(images: np.ndarray, file: str | Path, field_name: str) -> np.ndarray:
    """Return images as uint8 (n, H, W, C) with C in {1, 3}, or raise a clear error."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3):
        raise GessInputError(file, field_name, "images shaped (n, H, W) or (n, H, W, 1|3)", f"shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = to_uint8(arr, file, field_name)
    return arr


def to_uint8(arr: np.ndarray, file, field_name) -> np.ndarray:
    """Integer or float pixels to uint8: [0, 1] floats are scaled, [0, 255] kept."""
    x = arr.astype(np.float64)
    if not np.isfinite(x).all():
        raise GessInputError(file, field_name, "finite pixel values", "NaN or Inf")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0:
        raise GessInputError(file, field_name, "non-negative pixel values", f"minimum {lo:g}")
    if hi <= 1.0 and np.issubdtype(arr.dtype, np.floating):
        x = x * 255.0
    elif hi > 255.0:
        x = x * (255.0 / hi)  # e.g. 16-bit images
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def validate_split(split: Split, file: str | Path, side: str) -> None:
    split.fmri = validate_fmri(split.fmri, file, f"{side} fMRI")
    split.images = validate_images(split.images, file, f"{side} images")
    split.trial_ids = np.asarray(split.trial_ids).astype(str)
    split.stimulus_ids = np.asarray(split.stimulus_ids).astype(str)
    n_trials = split.fmri.shape[0]
    if len(split.trial_ids) != n_trials:
        raise GessInputError(file, f"{side} trial ids", f"{n_trials} ids (one per fMRI trial)", f"{len(split.trial_ids)}")
    if len(split.stimulus_ids) != split.images.shape[0]:
        raise GessInputError(
            file, f"{side} images", f"{len(split.stimulus_ids)} images (one per stimulus id)", f"{split.images.shape[0]}"
        )
    if len(set(split.stimulus_ids.tolist())) != len(split.stimulus_ids):
        raise GessInputError(file, f"{side} stimulus ids", "unique ids", "duplicates")
    unknown = set(split.trial_ids.tolist()) - set(split.stimulus_ids.tolist())
    if unknown:
        raise GessInputError(
            file, f"{side} trials", "every trial to show a stimulus that has an image",
            f"{len(unknown)} trials' stimuli without images (e.g. {sorted(unknown)[:3]})",
        )
    if split.labels is not None:
        split.labels = np.asarray(split.labels).reshape(-1)
        if len(split.labels) != len(split.stimulus_ids):
            raise GessInputError(file, f"{side} labels", f"{len(split.stimulus_ids)} labels", f"{len(split.labels)}")


def paired_split(fmri, images, labels=None, prefix: str = "train", file="", side="train") -> Split:
    """A split whose i-th trial showed the i-th image (the .mat layout)."""
    fmri = validate_fmri(fmri, file, f"{side} fMRI")
    images = validate_images(images, file, f"{side} images")
    if images.shape[0] != fmri.shape[0]:
        raise GessInputError(
            file, f"{side} images", f"{fmri.shape[0]} images (one per fMRI trial)", f"{images.shape[0]}"
        )
    ids = np.array([f"{prefix}-{i:04d}" for i in range(fmri.shape[0])])
    return Split(fmri, ids.copy(), images, ids, labels)


def merge_repeated_images(split: Split) -> Split:
    """One stimulus per distinct image (by content): trials of a repeated image share its first id."""
    import hashlib

    first: dict[bytes, int] = {}
    keep = []
    owner = np.empty(len(split.stimulus_ids), dtype=np.int64)
    for i, image in enumerate(split.images):
        digest = hashlib.sha256(np.ascontiguousarray(image).tobytes()).digest()
        if digest not in first:
            first[digest] = i
            keep.append(i)
        owner[i] = first[digest]
    if len(keep) == len(split.stimulus_ids):
        return split
    id_of = {sid: split.stimulus_ids[owner[i]] for i, sid in enumerate(split.stimulus_ids)}
    trial_ids = np.array([id_of[t] for t in split.trial_ids])
    labels = split.labels[keep] if split.labels is not None else None
    return Split(split.fmri, trial_ids, split.images[keep], split.stimulus_ids[keep].copy(), labels)
