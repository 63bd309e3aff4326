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

* ``nsd_{train,test}_fmriavg_nsdgeneral_subN.npy``: betas of the mask's voxels, z-scored per
  session and voxel (``--zscore``), averaged over each image's repeats (float32 or float16);
* ``nsd_{train,test}_stim_subN.npy``: the stimuli resized once to ``--image-size``;
* ``nsd_{train,test}_ids_subN.npy``: stimulus ids ``nsd-<73k id>`` (the manual's 1-based ids);
* ``nsd_{train,test}_nsd73k_subN.npy``, ``nsd_{train,test}_repeats_subN.npy``: 73k ids, repeats;
* ``nsd_{train,test}_brain_diffuser_order_subN.npy``: rows are sorted by 73k id; row ``order[k]``
  holds Brain-Diffuser's row k (images by first presentation), so ``array[order]`` is in its order;
* ``nsd_trials_fmri_subN.npy`` + ``nsd_trials_ids_subN.npy``: every single trial, kept;
* ``manifest.json``: sizes, sessions, options and sha256 of every file.

Test sets (``--test-set``), of the 1,000 shared images: ``seen-once``, those seen at least once
in the sessions read (Brain-Diffuser's and MindEye1's set with 37 sessions, MindEye2's 1,000
with 40); ``three-repeats``, those seen three times. Sessions (``--sessions``): by default the
release the papers used, each subject's sessions but the last three.

Out of core: one session is in memory at a time; single trials go straight into a
memory-mapped file, averages are taken voxel block by voxel block. A re-run resumes:
finished sessions (recorded in ``progress.json``) are not read again.
"""
from __future__ import annotations

import hashlib
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from gess.errors import GessInputError
from gess.io import claim_output_dir, exclusive_lock, read_json, save_npy, write_json
from gess.options import AT_LEAST_1, Options

BETA_SCALE = 300.0  # int16 betas / 300 = percent signal change (NSD data manual)
# Sessions the papers used: all but each subject's last three (held back from the first public release).
PAPERS_SESSIONS = {1: 37, 2: 37, 3: 29, 4: 27, 5: 37, 6: 29, 7: 37, 8: 27}
LEAST_SEEN = {"seen-once": 1, "three-repeats": 3}


@dataclass
class NSDPrepareOptions(Options):
    """What `gess prepare nsd` writes."""

    subject: int = field(default=1, metadata={"help": "NSD subject, 1-8", "range": AT_LEAST_1})
    sessions: int | None = field(default=None, metadata={
        "help": "read sessions 1..N (default: the release the papers used, 37 for subjects 1, 2, 5, 7; "
                "all but the last three for the others)", "range": AT_LEAST_1})
    # 'all' is the old name of seen-once: refused, naming the new one
    test_set: Literal["seen-once", "three-repeats", "all"] = field(default="seen-once", metadata={
        "help": "seen-once: the shared images seen at least once in the sessions read (Brain-Diffuser's and "
                "MindEye1's 982 for subject 1 with 37 sessions, MindEye2's 1,000 with 40); three-repeats: "
                "those seen three times"})
    zscore: Literal["train-trials", "all-trials", "none"] = field(default="train-trials", metadata={
        "help": "per-session, per-voxel z-scoring with the mean and sd of the training-image trials, of every "
                "trial (test-image trials included), or none (betas / 300)"})
    image_size: int = field(default=425, metadata={"help": "side the stimuli are resized to once", "range": AT_LEAST_1})
    dtype: Literal["float32", "float16"] = field(default="float32", metadata={"help": "precision of the written betas"})
    betas: str = field(default="betas_fithrf_GLMdenoise_RR", metadata={"help": "the beta version folder"})
    keep_trials: bool = field(default=True, metadata={"help": "also write every single trial"})

    def __post_init__(self) -> None:
        if self.test_set == "all":
            raise GessInputError(None, "test_set", "seen-once (the new name of 'all') or three-repeats", "'all'")


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


def zscore_session(betas: np.ndarray, use: np.ndarray | None = None) -> np.ndarray:
    """Per voxel, with the mean and sd of the trials ``use`` selects (all by default); sd 0 is taken as 1."""
    ref = betas if use is None else betas[use]
    mean = ref.mean(0, dtype=np.float64)
    std = ref.std(0, dtype=np.float64)
    std[std < 1e-8] = 1.0
    return ((betas - mean) / std).astype(np.float32)


def normalise_session(betas: np.ndarray, images: np.ndarray, shared: np.ndarray, how: str, path: Path) -> np.ndarray:
    """One session's betas, z-scored as ``--zscore`` says; ``images`` are its trials' 73k ids."""
    if how == "none":
        return betas
    if how == "all-trials":
        return zscore_session(betas)
    use = ~np.isin(images, shared)  # training-image trials: the test set stays out of the statistics
    if use.sum() < 2:
        raise GessInputError(path, "betas", "at least 2 training-image trials to z-score the session with "
                             "(--zscore all-trials uses every trial)", f"{int(use.sum())}")
    return zscore_session(betas, use)


def split_images(trial_ids: np.ndarray, shared: np.ndarray, test_set: str) -> tuple[dict, np.ndarray, np.ndarray]:
    """({"train": 73k ids, "test": 73k ids}, each sorted; every image seen; its number of trials)."""
    unique, counts = np.unique(trial_ids, return_counts=True)
    is_shared = np.isin(unique, shared)
    test = is_shared & (counts >= LEAST_SEEN[test_set])
    return {"train": unique[~is_shared], "test": unique[test]}, unique, counts


def first_shown_order(images: np.ndarray, trial_ids: np.ndarray) -> np.ndarray:
    """Rows of ``images`` in the order of their first trial (Brain-Diffuser's row order)."""
    unique, first = np.unique(trial_ids, return_index=True)
    return np.argsort(first[np.searchsorted(unique, images)], kind="stable").astype(np.int64)


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
    claim_output_dir(out, "prepared NSD subject")
    with exclusive_lock(out):
        return _prepare(release, out, opts, console, progress_bar if progress else None)


@dataclass
class _Plan:
    """What one preparation reads: the design, the mask, the session files."""

    trial_ids: np.ndarray
    shared: np.ndarray
    mask: np.ndarray
    files: list
    found: int
    record: dict


def _plan(release: NSDRelease, opts: NSDPrepareOptions, console=None) -> _Plan:
    sub = opts.subject
    trial_ids, shared = read_design(release.expdesign, sub)
    mask = read_mask(release.mask)
    found = release.sessions_found()
    n = opts.sessions or PAPERS_SESSIONS.get(sub, found)
    if n > found:
        source = "--sessions" if opts.sessions else "the default, the release the papers used"
        raise GessInputError(release.betas_dir / f"betas_session{found + 1:02d}.hdf5", "sessions",
                             f"sessions 1-{n} of subject {sub} ({source}; --sessions N reads fewer)", f"{found} found")
    if found > n:
        ignored = f"session {found}" if found == n + 1 else f"sessions {n + 1}-{found}"
        why = f"--sessions {n}" if opts.sessions else "the default: the sessions of Brain-Diffuser's and MindEye1's tables"
        message = (f"NSD subject {sub}: {ignored} present and not read ({why}; --sessions {found} reads them, "
                   "as MindEye2 did)")
        if console is not None:
            console.print(f"warning: {message}", soft_wrap=True, highlight=False, markup=False)
        else:
            warnings.warn(message, stacklevel=4)
    files = [release.session_file(s) for s in range(1, n + 1)]  # every file exists before any work
    record = {"subject": sub, "sessions": n, "options": asdict(opts), "voxels": int(mask.sum())}
    return _Plan(trial_ids, shared, mask, files, found, record)


def _read_sessions(release: NSDRelease, out: Path, plan: _Plan, opts: NSDPrepareOptions, progress_bar) -> Path:
    """Every session normalised into ``nsd_trials_fmri_subN.npy``, resuming after the sessions done."""
    from numpy.lib.format import open_memmap

    progress_path = out / "progress.json"
    state = read_json(progress_path) if progress_path.is_file() else {"record": plan.record, "done": []}
    if state["record"] != plan.record:
        raise GessInputError(progress_path, "options", f"{state['record']} to resume this preparation "
                             "(delete the directory to start over)", str(plan.record))
    trials_path = out / f"nsd_trials_fmri_sub{opts.subject}.npy"
    partial = trials_path.with_name(trials_path.name + ".partial")
    sessions = list(range(1, len(plan.files) + 1))
    trials = None
    for session in (progress_bar(sessions, "NSD sessions") if progress_bar else sessions):
        if session in state["done"]:
            continue
        path = plan.files[session - 1]
        betas = read_session(path, plan.mask)
        per_session = state.get("trials_per_session") or len(betas)
        if len(betas) != per_session:
            raise GessInputError(path, "betas", f"{per_session} trials like the sessions before", f"{len(betas)}")
        first = (session - 1) * len(betas)
        if first + len(betas) > len(plan.trial_ids):
            raise GessInputError(release.expdesign, "masterordering", f"an image for each of the {first + len(betas)} "
                                 f"trials up to session {session}", f"{len(plan.trial_ids)} trials")
        betas = normalise_session(betas, plan.trial_ids[first:first + len(betas)], plan.shared, opts.zscore, path)
        if trials is None:
            trials = (open_memmap(partial, mode="r+") if partial.is_file() else open_memmap(
                partial, mode="w+", dtype=np.float32, shape=(len(sessions) * len(betas), betas.shape[1])))
        trials[first:first + len(betas)] = betas
        trials.flush()
        state["done"].append(session)
        state["trials_per_session"] = len(betas)
        write_json(progress_path, state)
    if partial.is_file():
        partial.replace(trials_path)
    return trials_path


def _prepare(release: NSDRelease, out: Path, opts: NSDPrepareOptions, console, progress_bar) -> dict:
    sub = opts.subject
    start_time = time.time()
    plan = _plan(release, opts, console)
    finished = _finished(out, plan, opts)
    if finished is not None:
        return finished
    trials_path = _read_sessions(release, out, plan, opts, progress_bar)
    trials = np.load(trials_path, mmap_mode="r")
    ids = plan.trial_ids[:len(trials)]
    save_npy(out / f"nsd_trials_ids_sub{sub}.npy", np.array([f"nsd-{i:05d}" for i in ids]))
    sides, unique, counts = split_images(ids, plan.shared, opts.test_set)
    for side, images in sides.items():
        if not len(images):
            raise GessInputError(release.expdesign, "test_set" if side == "test" else "sessions",
                                 f"{side} images in sessions 1-{len(plan.files)} ({opts.test_set})", "none")
    dtype = np.float16 if opts.dtype == "float16" else np.float32
    for side, images in sides.items():
        _write_side(out, sub, side, images, ids, trials, dtype, opts.image_size, release.stimuli, counts, unique)
    n_sessions = plan.record["sessions"]
    dropped = set() if opts.keep_trials else set(_trial_files(out, sub))
    manifest = {**plan.record, "sessions_present": plan.found, "test_set": opts.test_set, "trials": int(len(trials)),
                "train_images": int(len(sides["train"])), "test_images": int(len(sides["test"])),
                "test_trials": int(np.isin(ids, sides["test"]).sum()), "seconds": round(time.time() - start_time, 1),
                "files": {p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)}
                          for p in sorted(out.glob("nsd_*.npy")) if p not in dropped}}
    n_trials = len(trials)
    del trials  # the memory map closed before its file goes
    # the manifest first: a run killed after it finds the preparation finished and drops the trials it left
    write_json(out / "manifest.json", manifest)
    (out / "progress.json").unlink(missing_ok=True)
    for path in dropped:
        path.unlink(missing_ok=True)
    if console is not None:
        console.print(f"NSD subject {sub}: {n_trials} trials of {n_sessions} sessions, {plan.record['voxels']} voxels, "
                      f"{len(sides['train'])} training and {len(sides['test'])} test images ({opts.test_set}) -> {out}")
    return manifest


def _trial_files(out: Path, sub: int) -> list[Path]:
    """The all-trials array and its ids (kept only with ``keep_trials``)."""
    return [out / f"nsd_trials_fmri_sub{sub}.npy", out / f"nsd_trials_ids_sub{sub}.npy"]


def _finished(out: Path, plan: _Plan, opts: NSDPrepareOptions) -> dict | None:
    """The manifest of a finished preparation of the same plan (nothing is redone); refused for another plan."""
    path = out / "manifest.json"
    if not path.is_file():
        return None
    manifest = read_json(path)
    done = {key: manifest.get(key) for key in plan.record}
    if done != plan.record:
        raise GessInputError(path, "options", f"{done} (a finished preparation; prepare into another directory, or "
                             "delete this one, to change them)", str(plan.record))
    missing = [name for name in manifest.get("files", {}) if not (out / name).is_file()]
    if missing:
        raise GessInputError(path, "files", "every file this finished preparation lists (delete the directory to "
                             "prepare it again)", f"{missing[0]} missing")
    if not opts.keep_trials:
        for leftover in _trial_files(out, opts.subject):
            leftover.unlink(missing_ok=True)
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
    save_npy(out / f"nsd_{side}_ids_sub{sub}.npy", np.array([f"nsd-{i:05d}" for i in images]))
    save_npy(out / f"nsd_{side}_nsd73k_sub{sub}.npy", images.astype(np.int64))
    index = {int(u): c for u, c in zip(unique, counts)}
    save_npy(out / f"nsd_{side}_repeats_sub{sub}.npy", np.array([index[int(i)] for i in images], np.int64))
    save_npy(out / f"nsd_{side}_brain_diffuser_order_sub{sub}.npy", first_shown_order(images, trial_ids))


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
