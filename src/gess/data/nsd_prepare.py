"""``gess prepare nsd``: the NSD release -> gess's NSD layout, out of core and resumable.

Reads the release as NSD's data manual names its files (under ``--nsd-root``):

* ``nsddata/experiments/nsd/nsd_expdesign.mat``: ``masterordering`` (the 10,000-image
  index of every trial, 1-based), ``subjectim`` (8 x 10,000: each subject's images as
  1-based 73k ids), ``sharedix`` (the 1,000 shared 73k ids);
* ``nsddata_betas/ppdata/subjNN/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_sessionSS.hdf5``
  (dataset ``betas``, trials x Z x Y x X, int16) or ``betas_sessionSS.nii.gz`` (X x Y x Z x trials);
  betas / 300 are percent signal change;
* ``nsddata/ppdata/subjNN/func1pt8mm/roi/nsdgeneral.nii.gz`` (X x Y x Z; 1 inside the ROI);
* ``nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5`` (dataset ``imgBrick``, 73,000 x 425 x 425 x 3).

Writes, for subject N, the files :func:`gess.data.nsd.load_nsd` reads (Brain-Diffuser's
names, so tools that read those read these) plus what they lack:

* ``nsd_{train,test}_fmriavg_nsdgeneral_subN.npy``: z-scored (per session, per voxel)
  betas of the mask's voxels, averaged over each image's repeats (float32 or float16);
* ``nsd_{train,test}_stim_subN.npy``: the stimuli resized once to ``--image-size``;
* ``nsd_{train,test}_ids_subN.npy``: stimulus ids ``nsd-<73k id>`` (the manual's 1-based ids);
* ``nsd_{train,test}_nsd73k_subN.npy``, ``nsd_{train,test}_repeats_subN.npy``: 73k ids, repeats;
* ``nsd_trials_fmri_subN.npy`` + ``nsd_trials_ids_subN.npy``: every single trial, kept;
* ``manifest.json``: sizes, sessions, options and sha256 of every file.

The test set is the shared 1,000 images: ``--test-set three-repeats`` keeps those seen
three times within the sessions read (982 for subject 1 in the 37 public sessions, the
Brain-Diffuser set), ``all`` every shared image seen at least once (MindEye's 1,000).

Out of core: one session is in memory at a time; single trials go straight into a
memory-mapped file, averages are taken voxel block by voxel block. A re-run resumes:
finished sessions (recorded in ``progress.json``) are not read again.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from gess.errors import GessInputError
from gess.io import claim_output_dir, exclusive_lock, read_json, write_json

BETA_SCALE = 300.0  # int16 betas / 300 = percent signal change (NSD data manual)


@dataclass
class NSDPrepareOptions:
    """What `gess prepare nsd` writes."""

    subject: int = field(default=1, metadata={"help": "NSD subject, 1-8"})
    sessions: int | None = field(default=None, metadata={"help": "read sessions 1..N (default: every session file found)"})
    test_set: Literal["three-repeats", "all"] = field(default="three-repeats", metadata={
        "help": "shared images seen three times (982 for subject 1) or all shared images seen at least once"})
    image_size: int = field(default=425, metadata={"help": "side the stimuli are resized to once"})
    dtype: Literal["float32", "float16"] = field(default="float32", metadata={"help": "precision of the written betas"})
    betas: str = field(default="betas_fithrf_GLMdenoise_RR", metadata={"help": "the beta version folder"})
    keep_trials: bool = field(default=True, metadata={"help": "also write every single trial"})


class NSDRelease:
    """Paths of one subject's files in an NSD release, with clear errors when one is missing."""

    def __init__(self, root: str | Path, subject: int, betas: str = "betas_fithrf_GLMdenoise_RR"):
        self.root = Path(root)
        self.subject = subject
        tag = f"subj{subject:02d}"
        self.expdesign = self.root / "nsddata" / "experiments" / "nsd" / "nsd_expdesign.mat"
        self.mask = self.root / "nsddata" / "ppdata" / tag / "func1pt8mm" / "roi" / "nsdgeneral.nii.gz"
        self.betas_dir = self.root / "nsddata_betas" / "ppdata" / tag / "func1pt8mm" / betas
        self.stimuli = self.root / "nsddata_stimuli" / "stimuli" / "nsd" / "nsd_stimuli.hdf5"
        for path, what in ((self.expdesign, "the experiment design"), (self.mask, "the subject's nsdgeneral mask"),
                           (self.stimuli, "the stimulus brick")):
            if not path.is_file():
                raise GessInputError(path, None, f"{what} of the NSD release (see docs/data.md)", "no such file")

    def session_file(self, session: int) -> Path:
        for suffix in (".hdf5", ".nii.gz"):
            path = self.betas_dir / f"betas_session{session:02d}{suffix}"
            if path.is_file():
                return path
        raise GessInputError(self.betas_dir / f"betas_session{session:02d}.hdf5", None,
                             f"the betas of session {session} of subject {self.subject}", "no such file")

    def sessions_found(self) -> int:
        count = 0
        while any((self.betas_dir / f"betas_session{count + 1:02d}{s}").is_file() for s in (".hdf5", ".nii.gz")):
            count += 1
        return count


def read_design(path: Path, subject: int) -> tuple[np.ndarray, np.ndarray]:
    """(73k id of every trial in order, 1-based; the shared 73k ids)."""
    import scipy.io

    try:
        design = scipy.io.loadmat(str(path))
    except Exception as exc:
        raise GessInputError(path, None, "a readable nsd_expdesign.mat", f"unreadable ({exc})") from None
    for key in ("masterordering", "subjectim", "sharedix"):
        if key not in design:
            raise GessInputError(path, key, "the NSD experiment design fields masterordering, subjectim, sharedix",
                                 "missing")
    subjectim = np.asarray(design["subjectim"])
    if not 1 <= subject <= subjectim.shape[0]:
        raise GessInputError(path, "subjectim", f"a row for subject {subject}", f"{subjectim.shape[0]} subjects")
    order = np.asarray(design["masterordering"]).reshape(-1).astype(np.int64)
    return subjectim[subject - 1][order - 1].astype(np.int64), np.asarray(design["sharedix"]).reshape(-1).astype(np.int64)


def read_mask(path: Path) -> np.ndarray:
    """The nsdgeneral ROI as a boolean (X, Y, Z) volume."""
    import nibabel

    try:
        return np.asarray(nibabel.load(str(path)).get_fdata()) > 0.5
    except Exception as exc:
        raise GessInputError(path, None, "a readable NIfTI mask", f"unreadable ({exc})") from None


def read_session(path: Path, mask: np.ndarray) -> np.ndarray:
    """(trials, voxels) float32 percent signal change of the mask's voxels, for one session."""
    try:
        if path.suffix == ".hdf5":
            import h5py

            with h5py.File(path, "r") as fh:
                if "betas" not in fh:
                    raise GessInputError(path, "betas", "a 'betas' dataset (trials x Z x Y x X)", f"keys {list(fh)}")
                data = fh["betas"]
                volume = tuple(reversed(mask.shape))  # HDF5 holds the NIfTI volume transposed
                if tuple(data.shape[1:]) != volume:
                    raise GessInputError(path, "betas", f"volumes of {volume} (the mask is {mask.shape} in X, Y, Z)",
                                         f"{tuple(data.shape[1:])}")
                # voxels in the NIfTI (X, Y, Z) order, whichever file they come from
                rows = [np.asarray(data[t]).T[mask] for t in range(data.shape[0])]
        else:
            import nibabel

            img = nibabel.load(str(path))
            if tuple(img.shape[:3]) != mask.shape:
                raise GessInputError(path, "betas", f"volumes of {mask.shape} like the mask", f"{tuple(img.shape[:3])}")
            rows = [np.asarray(img.dataobj[..., t])[mask] for t in range(img.shape[3])]
    except GessInputError:
        raise
    except Exception as exc:  # a truncated or damaged file
        raise GessInputError(path, None, "a complete betas file", f"unreadable ({type(exc).__name__}: {exc})") from None
    return (np.stack(rows).astype(np.float32) / BETA_SCALE)


def zscore_session(betas: np.ndarray) -> np.ndarray:
    """Per voxel over the session's trials (constant voxels become 0)."""
    mean = betas.mean(0, dtype=np.float64)
    std = betas.std(0, dtype=np.float64)
    std[std < 1e-8] = 1.0
    return ((betas - mean) / std).astype(np.float32)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def prepare_nsd(nsd_root: str | Path, out: str | Path, options: NSDPrepareOptions | None = None, console=None,
                progress: bool = True) -> dict:
    """Prepare one subject (see the module doc); returns the manifest."""
    from gess.progress import progress_bar

    opts = options or NSDPrepareOptions()
    release = NSDRelease(nsd_root, opts.subject, opts.betas)
    out = Path(out)
    claim_output_dir(out, "prepared NSD subject", lambda d: (d / "progress.json").is_file() or (d / "manifest.json").is_file())
    with exclusive_lock(out):
        return _prepare(release, out, opts, console, progress_bar if progress else None)


def _prepare(release: NSDRelease, out: Path, opts: NSDPrepareOptions, console, progress_bar) -> dict:
    from numpy.lib.format import open_memmap

    sub = opts.subject
    start_time = time.time()
    trial_ids, shared = read_design(release.expdesign, sub)
    mask = read_mask(release.mask)
    n_sessions = opts.sessions or release.sessions_found()
    if n_sessions < 1:
        raise GessInputError(release.betas_dir, None, f"betas_session01.hdf5 (or .nii.gz) for subject {sub}", "none")
    files = [release.session_file(s) for s in range(1, n_sessions + 1)]  # every file exists before any work
    n_vox = int(mask.sum())
    record = {"subject": sub, "sessions": n_sessions, "options": asdict(opts), "voxels": n_vox}
    progress_path = out / "progress.json"
    state = read_json(progress_path) if progress_path.is_file() else {"record": record, "done": []}
    if state["record"] != record:
        raise GessInputError(progress_path, "options", f"{state['record']} to resume this preparation "
                             "(delete the directory to start over)", str(record))
    trials_path = out / f"nsd_trials_fmri_sub{sub}.npy"
    partial = trials_path.with_name(trials_path.name + ".partial")
    per_session = None
    sessions = list(range(1, n_sessions + 1))
    iterator = progress_bar(sessions, "NSD sessions") if progress_bar else sessions
    trials = None
    for session in iterator:
        if session in state["done"]:
            continue
        betas = zscore_session(read_session(files[session - 1], mask))
        per_session = state.get("trials_per_session", per_session) or len(betas)
        if len(betas) != per_session:
            raise GessInputError(files[session - 1], "betas", f"{per_session} trials like the sessions before",
                                 f"{len(betas)}")
        if trials is None:
            trials = (open_memmap(partial, mode="r+") if partial.is_file() else
                      open_memmap(partial, mode="w+", dtype=np.float32, shape=(n_sessions * len(betas), n_vox)))
        first = (session - 1) * len(betas)
        if first + len(betas) > len(trial_ids):
            raise GessInputError(release.expdesign, "masterordering", f"an image for each of the {first + len(betas)} "
                                 f"trials up to session {session}", f"{len(trial_ids)} trials")
        trials[first:first + len(betas)] = betas
        trials.flush()
        state["done"].append(session)
        state["trials_per_session"] = len(betas)
        write_json(progress_path, state)
    if partial.is_file():
        partial.replace(trials_path)
    trials = np.load(trials_path, mmap_mode="r")
    n_trials = len(trials)
    ids = trial_ids[:n_trials]
    np.save(out / f"nsd_trials_ids_sub{sub}.npy", np.array([f"nsd-{i:05d}" for i in ids]))

    unique, counts = np.unique(ids, return_counts=True)
    shared_set = set(shared.tolist())
    is_shared = np.array([u in shared_set for u in unique])
    test_keep = is_shared & ((counts >= 3) if opts.test_set == "three-repeats" else (counts >= 1))
    sides = {"train": unique[~is_shared], "test": unique[test_keep]}
    dtype = np.float16 if opts.dtype == "float16" else np.float32
    for side, images in sides.items():
        _write_side(out, sub, side, images, ids, trials, dtype, opts.image_size, release.stimuli, counts, unique)
    if not opts.keep_trials:
        trials_path.unlink()
        (out / f"nsd_trials_ids_sub{sub}.npy").unlink()
    manifest = {**record, "trials": int(n_trials), "train_images": int(len(sides["train"])),
                "test_images": int(len(sides["test"])), "seconds": round(time.time() - start_time, 1),
                "files": {p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)}
                          for p in sorted(out.glob("nsd_*.npy"))}}
    write_json(out / "manifest.json", manifest)
    progress_path.unlink(missing_ok=True)
    if console is not None:
        console.print(f"NSD subject {sub}: {n_trials} trials of {n_sessions} sessions, {n_vox} voxels, "
                      f"{len(sides['train'])} training and {len(sides['test'])} test images -> {out}")
    return manifest


def _write_side(out: Path, sub: int, side: str, images: np.ndarray, trial_ids: np.ndarray, trials, dtype, side_px: int,
                stimuli: Path, counts: np.ndarray, unique: np.ndarray, block: int = 2048) -> None:
    """Averages over repeats (voxel block by voxel block), stimuli resized once, ids; each file renamed when whole."""
    from numpy.lib.format import open_memmap

    fmri_path = out / f"nsd_{side}_fmriavg_nsdgeneral_sub{sub}.npy"
    if not fmri_path.is_file():
        from scipy.sparse import csr_matrix

        row_of = {int(im): r for r, im in enumerate(images)}
        rows = np.array([row_of.get(int(t), -1) for t in trial_ids])
        used = np.flatnonzero(rows >= 0)
        n_rep = np.bincount(rows[used], minlength=len(images)).astype(np.float64)
        # the averaging operator: image r <- mean of its trials
        average = csr_matrix((1.0 / n_rep[rows[used]], (rows[used], used)), shape=(len(images), len(trial_ids)))
        tmp = fmri_path.with_name(fmri_path.name + ".partial")
        avg = open_memmap(tmp, mode="w+", dtype=dtype, shape=(len(images), trials.shape[1]))
        for start in range(0, trials.shape[1], block):
            avg[:, start:start + block] = (average @ np.asarray(trials[:, start:start + block], np.float64)).astype(dtype)
        avg.flush()
        del avg
        tmp.replace(fmri_path)
    stim_path = out / f"nsd_{side}_stim_sub{sub}.npy"
    if not stim_path.is_file():
        _write_stimuli(stim_path, images, stimuli, side_px)
    np.save(out / f"nsd_{side}_ids_sub{sub}.npy", np.array([f"nsd-{i:05d}" for i in images]))
    np.save(out / f"nsd_{side}_nsd73k_sub{sub}.npy", images.astype(np.int64))
    index = {int(u): c for u, c in zip(unique, counts)}
    np.save(out / f"nsd_{side}_repeats_sub{sub}.npy", np.array([index[int(i)] for i in images], np.int64))


def _write_stimuli(path: Path, images: np.ndarray, stimuli: Path, side: int, block: int = 64) -> None:
    import h5py
    from numpy.lib.format import open_memmap

    from gess.data.images import resize_images

    tmp = path.with_name(path.name + ".partial")
    try:
        with h5py.File(stimuli, "r") as fh:
            brick = fh["imgBrick"]
            out = open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(images), side, side, 3))
            order = np.argsort(images)  # h5py wants increasing indices
            for start in range(0, len(images), block):
                pick = order[start:start + block]
                batch = brick[np.asarray(images[pick] - 1)]  # 1-based 73k ids
                out[pick] = resize_images(np.asarray(batch, np.uint8), side)
            out.flush()
            del out
    except (OSError, KeyError) as exc:
        raise GessInputError(stimuli, "imgBrick", "a readable stimulus brick (73,000 x 425 x 425 x 3)", f"{exc}") from None
    tmp.replace(path)
