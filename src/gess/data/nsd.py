"""Natural Scenes Dataset as preprocessed by the public Brain-Diffuser pipeline.

Files (per subject N, in one directory), as written by Brain-Diffuser's
``data/prepare_nsddata.py -sub N`` (github.com/ozcelikfu/brain-diffuser) from
the NSD release (naturalscenesdataset.org; terms: NSD data-use agreement):

* ``nsd_train_fmriavg_nsdgeneral_sub{N}.npy``  (n_train, v) float: betas of the
  nsdgeneral ROI, averaged over the (up to 3) repeats of each image;
* ``nsd_train_stim_sub{N}.npy``  (n_train, 425, 425, 3) uint8: the stimuli;
* ``nsd_test_fmriavg_nsdgeneral_sub{N}.npy`` and ``nsd_test_stim_sub{N}.npy``:
  the 982 shared test images seen by subjects 1, 2, 5 and 7.

They may sit in ``processed_data/subj0N/`` as in that repository. Stimulus ids
are ``train-0000`` / ``test-0000`` in file order (the arrays carry no NSD ids);
``nsd_{train,test}_ids_sub{N}.npy`` beside them, if present, supplies NSD ids.
"""
from __future__ import annotations

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


def load_nsd(directory: str | Path, subject: int | None = None) -> Dataset:
    """Load one NSD subject in the Brain-Diffuser layout (see module doc)."""
    directory = Path(directory)
    subjects = find_nsd_subjects(directory) if directory.is_dir() else []
    if not subjects:
        raise GessInputError(directory, None, f"NSD files named like {PATTERN.format(side='train', subject=1)}", "none found")
    subject = subject if subject is not None else subjects[0]
    if subject not in subjects:
        raise GessInputError(directory, "subject", f"one of {subjects}", str(subject))

    def one(side: str) -> Split:
        fmri_path = next(directory.rglob(PATTERN.format(side=side, subject=subject)))
        stim_path = fmri_path.with_name(f"nsd_{side}_stim_sub{subject}.npy")
        if not stim_path.is_file():
            raise GessInputError(stim_path, None, f"the {side} stimuli beside {fmri_path.name}", "no such file")
        fmri = load_array(fmri_path)
        stim = load_array(stim_path)
        split = paired_split(np.asarray(fmri), np.asarray(stim), None, side if side == "test" else "train", fmri_path, side)
        ids_path = fmri_path.with_name(f"nsd_{side}_ids_sub{subject}.npy")
        if ids_path.is_file():
            ids = load_array(ids_path, mmap=False).astype(str)
            split.trial_ids, split.stimulus_ids = ids.copy(), ids.copy()
        return split

    return Dataset(one("train"), one("test"), name=f"nsd-sub{subject}", source=str(directory), provenance=PROVENANCE)
