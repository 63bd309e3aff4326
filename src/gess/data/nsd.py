"""Natural Scenes Dataset, one subject's repeat-averaged betas, in Brain-Diffuser's file names.

Files (per subject N, in one directory), as written by ``gess prepare nsd`` (see
``gess.data.nsd_prepare`` and docs/data.md) or by Brain-Diffuser's
``data/prepare_nsddata.py -sub N`` (github.com/ozcelikfu/brain-diffuser) from the NSD
release (naturalscenesdataset.org; terms: NSD data-use agreement):

* ``nsd_train_fmriavg_nsdgeneral_sub{N}.npy``  (n_train, v) float: betas of the
  nsdgeneral ROI, averaged over the (up to 3) repeats of each image;
* ``nsd_train_stim_sub{N}.npy``  (n_train, H, W, 3) uint8: the stimuli;
* ``nsd_test_fmriavg_nsdgeneral_sub{N}.npy`` and ``nsd_test_stim_sub{N}.npy``: the shared
  test images (Brain-Diffuser: the 982 seen at least once in sessions 1-37, rows in order of
  first presentation; ``gess prepare nsd``: the ``--test-set`` it names, rows by 73k id).

They may sit in ``processed_data/subj0N/`` as in that repository; one preparation per subject
under the directory (two would be ambiguous, and are refused). Stimulus ids are ``train-0000`` /
``test-0000`` in file order unless ``nsd_{train,test}_ids_sub{N}.npy`` beside them supplies NSD
ids; ``manifest.json`` beside them (``gess prepare nsd``) names the test set and sessions.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from gess.data.dataset import Dataset, Split, paired_split
from gess.errors import GessInputError

PROVENANCE = "Natural Scenes Dataset (Allen et al. 2022), nsdgeneral betas averaged per image, Brain-Diffuser preprocessing"
PATTERN = "nsd_{side}_fmriavg_nsdgeneral_sub{subject}.npy"


def load_array(path: Path, mmap: bool = True) -> np.ndarray:
    """A .npy array, memory-mapped; a truncated or foreign file is bad input naming it."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise GessInputError(path, None, "a complete .npy array", f"unreadable ({exc})") from None


def find_nsd_subjects(directory: Path) -> list[int]:
    return sorted({int(m.group(1)) for p in directory.rglob("nsd_train_fmriavg_nsdgeneral_sub*.npy")
                   if (m := re.search(r"sub(\d+)\.npy$", p.name))})


def provenance(directory: Path) -> str:
    """Brain-Diffuser's preprocessing, or what ``gess prepare nsd`` recorded in ``manifest.json``."""
    path = directory / "manifest.json"
    try:
        manifest = json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or "test_set" not in manifest:
        return PROVENANCE
    zscore = manifest.get("options", {}).get("zscore", "?")
    return (f"Natural Scenes Dataset (Allen et al. 2022), nsdgeneral betas averaged per image, gess prepare nsd: "
            f"sessions 1-{manifest.get('sessions')}, test set {manifest['test_set']} ({manifest.get('test_images')} "
            f"images), z-scored per session ({zscore})")


def load_nsd(directory: str | Path, subject: int | None = None) -> Dataset:
    """Load one NSD subject in the Brain-Diffuser layout (see module doc)."""
    directory = Path(directory)
    subjects = find_nsd_subjects(directory) if directory.is_dir() else []
    if not subjects:
        raise GessInputError(directory, None, f"NSD files named like {PATTERN.format(side='train', subject=1)}", "none found")
    subject = subject if subject is not None else subjects[0]
    if subject not in subjects:
        raise GessInputError(directory, "subject", f"one of {subjects}", str(subject))
    found = sorted(directory.rglob(PATTERN.format(side="train", subject=subject)))
    if len(found) > 1:  # e.g. two test sets prepared side by side: say which
        raise GessInputError(directory, "path", f"one preparation of subject {subject} (point the path at one folder)",
                             ", ".join(str(p.parent) for p in found))
    folder = found[0].parent

    def one(side: str) -> Split:
        fmri_path = folder / PATTERN.format(side=side, subject=subject)
        stim_path = fmri_path.with_name(f"nsd_{side}_stim_sub{subject}.npy")
        for path, what in ((fmri_path, f"the {side} betas"), (stim_path, f"the {side} stimuli")):
            if not path.is_file():
                raise GessInputError(path, None, f"{what} beside {found[0].name}", "no such file")
        fmri = load_array(fmri_path)
        stim = load_array(stim_path)
        split = paired_split(np.asarray(fmri), np.asarray(stim), None, side if side == "test" else "train", fmri_path, side)
        ids_path = fmri_path.with_name(f"nsd_{side}_ids_sub{subject}.npy")
        if ids_path.is_file():
            ids = load_array(ids_path, mmap=False).astype(str)
            split.trial_ids, split.stimulus_ids = ids.copy(), ids.copy()
        return split

    return Dataset(one("train"), one("test"), name=f"nsd-sub{subject}", source=str(directory),
                   provenance=provenance(folder))
