"""`gess prepare nsd` on a tiny release written here in NSD's own file layout, checked against values computed here."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from test_cli_errors import assert_one_line_error, run_cli

VOLUME = (5, 4, 3)          # X, Y, Z
TRIALS_PER_SESSION = 10
SESSIONS = 4                # session 4 plays NSD's sessions 38-40: the papers' release is sessions 1-3
SUBJECT = 2
N_SHARED = 5                # the first 5 of the subject's images, as NSD's first 1,000
# positions in the subject's image list, trial by trial; shared 0-3 seen 3, 3, 2, 2 times in sessions 1-3 and
# shared 4 only in session 4 (as the 18 of NSD's shared images first shown after session 37)
ORDER = np.array([0, 1, 2, 3, 5, 6, 7, 8, 9, 10,
                  0, 1, 2, 11, 12, 13, 14, 5, 6, 7,
                  0, 1, 3, 8, 9, 10, 11, 12, 13, 15,
                  2, 3, 4, 14, 15, 5, 6, 7, 8, 9]) + 1
# test images, counted by hand from ORDER: (test set, sessions) -> how many
COUNTS = {("seen-once", 3): 4, ("three-repeats", 3): 2, ("seen-once", 4): 5, ("three-repeats", 4): 4}


def write_release(root, seed=0, nii_session=None, shared_offset=0):
    """nsd_expdesign.mat, betas_sessionNN.hdf5 (trials x Z x Y x X, int16), nsdgeneral.nii.gz, nsd_stimuli.hdf5.

    ``shared_offset`` is added to the betas of every shared-image trial (the training trials stay the same)."""
    import h5py
    import nibabel
    import scipy.io

    rng = np.random.default_rng(seed)
    n_images = 16
    perm = (np.arange(n_images) * 7) % n_images  # 73k ids not in the order of the list: sorted != first shown
    subjectim = np.arange(1, 9)[:, None] * 100 + perm[None] + 1  # 8 x n, 1-based 73k ids
    shared = subjectim[SUBJECT - 1][:N_SHARED]
    (root / "nsddata/experiments/nsd").mkdir(parents=True)
    scipy.io.savemat(root / "nsddata/experiments/nsd/nsd_expdesign.mat",
                     {"masterordering": ORDER[None], "subjectim": subjectim, "sharedix": shared[None]})
    mask = np.zeros(VOLUME, np.float32) - 1
    mask[1:4, 1:3, :2] = 1
    mask[0, 0, 0] = 0
    roi = root / f"nsddata/ppdata/subj{SUBJECT:02d}/func1pt8mm/roi"
    roi.mkdir(parents=True)
    nibabel.save(nibabel.Nifti1Image(mask, np.eye(4)), roi / "nsdgeneral.nii.gz")
    betas_dir = root / f"nsddata_betas/ppdata/subj{SUBJECT:02d}/func1pt8mm/betas_fithrf_GLMdenoise_RR"
    betas_dir.mkdir(parents=True)
    volumes = rng.integers(-3000, 3000, (SESSIONS, TRIALS_PER_SESSION) + VOLUME).astype(np.int16)  # X, Y, Z
    is_shared = (ORDER <= N_SHARED).reshape(SESSIONS, TRIALS_PER_SESSION)
    volumes[is_shared] += np.int16(shared_offset)
    for s in range(SESSIONS):
        if nii_session == s + 1:
            nibabel.save(nibabel.Nifti1Image(np.moveaxis(volumes[s], 0, -1), np.eye(4)), betas_dir / f"betas_session{s + 1:02d}.nii.gz")
        else:
            with h5py.File(betas_dir / f"betas_session{s + 1:02d}.hdf5", "w") as fh:
                fh["betas"] = np.transpose(volumes[s], (0, 3, 2, 1))  # trials x Z x Y x X, as the release stores them
    stim_dir = root / "nsddata_stimuli/stimuli/nsd"
    stim_dir.mkdir(parents=True)
    brick = rng.integers(0, 256, (subjectim.max() + 1, 12, 12, 3), dtype=np.uint8)
    with h5py.File(stim_dir / "nsd_stimuli.hdf5", "w") as fh:
        fh["imgBrick"] = brick
    return {"volumes": volumes, "mask": mask > 0.5, "ids73k": subjectim[SUBJECT - 1][ORDER - 1],
            "shared": set(shared.tolist()), "brick": brick, "subjectim": subjectim}


def expected(release, sessions, zscore):
    """Betas / 300 z-scored per session (statistics from training-image trials, all trials or none), then
    averaged per image over the sessions read; computed here without gess."""
    rows = []
    ids = release["ids73k"][:sessions * TRIALS_PER_SESSION]
    for s in range(sessions):
        b = np.stack([v[release["mask"]] for v in release["volumes"][s]]).astype(np.float64) / 300.0
        session_ids = ids[s * TRIALS_PER_SESSION:(s + 1) * TRIALS_PER_SESSION]
        ref = b[[i not in release["shared"] for i in session_ids]] if zscore == "train-trials" else b
        sd = ref.std(0)
        sd[sd < 1e-8] = 1
        rows.append(b if zscore == "none" else (b - ref.mean(0)) / sd)
    trials = np.concatenate(rows)
    return trials, {i: trials[ids == i].mean(0) for i in np.unique(ids)}, {i: int((ids == i).sum()) for i in np.unique(ids)}


def brain_diffuser_sides(release, sessions):
    """Brain-Diffuser's prepare_nsddata.py selection: trials whose position in the subject's list is among the
    shared ones are test trials; images in the order of their first trial."""
    sig_train, sig_test = {}, {}
    for idx in range(sessions * TRIALS_PER_SESSION):
        nsd_id = int(release["subjectim"][SUBJECT - 1, ORDER[idx] - 1])
        (sig_train if ORDER[idx] > N_SHARED else sig_test).setdefault(nsd_id, []).append(idx)
    return sig_train, sig_test


def prepare(tmp_path, out_name, *flags, release_dir="nsd"):
    from gess.cli import main

    out = tmp_path / out_name
    with pytest.raises(SystemExit) as exc:
        main(["prepare", "nsd", "--nsd-root", str(tmp_path / release_dir), "--subject", str(SUBJECT), "--out", str(out),
              "--image-size", "8", *map(str, flags)])
    assert exc.value.code == 0
    return out


@pytest.mark.parametrize("test_set,sessions,zscore,nii", [
    ("seen-once", None, None, None),               # the defaults: the papers' sessions (1-3 here), train-trial z-scores
    ("three-repeats", 3, "all-trials", 2),
    ("seen-once", 4, "none", None),
    ("three-repeats", 4, "train-trials", 4),
])
def test_prepare_matches_an_independent_computation(tmp_path, monkeypatch, capsys, test_set, sessions, zscore, nii):
    import gess.data.nsd_prepare as prep
    from gess.data import load_dataset

    monkeypatch.setitem(prep.PAPERS_SESSIONS, SUBJECT, 3)  # NSD's 37 of 40, scaled down
    release = write_release(tmp_path / "nsd", nii_session=nii)
    flags = ["--test-set", test_set] + (["--sessions", sessions] if sessions else []) + (["--zscore", zscore] if zscore else [])
    capsys.readouterr()
    out = prepare(tmp_path, "prepared", *flags)
    read = sessions or 3
    said = [line for line in capsys.readouterr().err.splitlines() if "not read" in line]
    why = "--sessions 3" if sessions else "the default: the sessions of Brain-Diffuser's and MindEye1's tables"
    assert said == ([f"warning: NSD subject {SUBJECT}: session 4 present and not read ({why}; --sessions 4 reads "
                     "them, as MindEye2 did)"] if read == 3 else [])
    trials, means, counts = expected(release, read, zscore or "train-trials")
    stored = np.load(out / f"nsd_trials_fmri_sub{SUBJECT}.npy")
    np.testing.assert_allclose(stored, trials, rtol=1e-5, atol=1e-5)
    assert stored.shape == (read * TRIALS_PER_SESSION, 12) and release["mask"].sum() == 12
    sig_train, sig_test = brain_diffuser_sides(release, read)
    least = 3 if test_set == "three-repeats" else 1
    bd_order = {"train": list(sig_train), "test": [i for i, t in sig_test.items() if len(t) >= least]}
    assert len(bd_order["test"]) == COUNTS[(test_set, read)]
    for side in ("train", "test"):
        ids = np.load(out / f"nsd_{side}_nsd73k_sub{SUBJECT}.npy")
        assert ids.tolist() == sorted(bd_order[side])  # gess's rows: sorted by 73k id
        order = np.load(out / f"nsd_{side}_brain_diffuser_order_sub{SUBJECT}.npy")
        assert ids[order].tolist() == bd_order[side]   # the mapping gives Brain-Diffuser's rows
        avg = np.load(out / f"nsd_{side}_fmriavg_nsdgeneral_sub{SUBJECT}.npy")
        np.testing.assert_allclose(avg, np.stack([means[i] for i in ids]), rtol=1e-5, atol=1e-5)
        assert np.load(out / f"nsd_{side}_repeats_sub{SUBJECT}.npy").tolist() == [counts[i] for i in ids]
        assert np.load(out / f"nsd_{side}_stim_sub{SUBJECT}.npy").shape == (len(ids), 8, 8, 3)
    test_ids = np.load(out / f"nsd_test_nsd73k_sub{SUBJECT}.npy")
    ds = load_dataset(out, "nsd", subject=SUBJECT)  # the loader reads the layout, memory-mapped
    assert list(ds.test.stimulus_ids) == [f"nsd-{i:05d}" for i in test_ids] and test_set in ds.provenance
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["trials"] == read * TRIALS_PER_SESSION and manifest["voxels"] == 12
    assert manifest["sessions"] == read and manifest["sessions_present"] == SESSIONS and manifest["test_set"] == test_set
    assert manifest["test_trials"] == sum(counts[i] for i in test_ids)
    assert all(len(f["sha256"]) == 64 for f in manifest["files"].values())


def test_test_trials_stay_out_of_the_normalisation(tmp_path):
    """Shifting every shared-image trial leaves the training arrays alone with train-trials z-scores only."""
    write_release(tmp_path / "a")
    write_release(tmp_path / "b", shared_offset=700)
    arrays = {}
    for zscore in ("train-trials", "all-trials"):
        for name in ("a", "b"):
            out = prepare(tmp_path, f"{name}-{zscore}", "--sessions", SESSIONS, "--zscore", zscore, release_dir=name)
            arrays[name, zscore] = np.load(out / f"nsd_train_fmriavg_nsdgeneral_sub{SUBJECT}.npy")
    np.testing.assert_array_equal(arrays["a", "train-trials"], arrays["b", "train-trials"])
    assert np.abs(arrays["a", "all-trials"] - arrays["b", "all-trials"]).max() > 0.1


def test_sessions_left_out_warn_from_python_too_and_two_preparations_are_refused(tmp_path):
    import gess.data.nsd_prepare as prep

    write_release(tmp_path / "nsd")
    with pytest.warns(UserWarning, match="session 4 present and not read"):
        manifest = prep.prepare_nsd(tmp_path / "nsd", tmp_path / "out", prep.NSDPrepareOptions(
            subject=SUBJECT, sessions=3, image_size=8), progress=False)
    assert manifest["sessions"] == 3 and manifest["test_images"] == COUNTS[("seen-once", 3)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # all sessions read: no warning
        prep.prepare_nsd(tmp_path / "nsd", tmp_path / "all", prep.NSDPrepareOptions(
            subject=SUBJECT, sessions=4, image_size=8), progress=False)
    from gess.data import load_dataset
    from gess.errors import GessInputError

    with pytest.raises(GessInputError, match="one preparation of subject 2"):  # two test sets side by side
        load_dataset(tmp_path, "nsd", subject=SUBJECT)
    assert len(load_dataset(tmp_path / "all", "nsd", subject=SUBJECT).test.stimulus_ids) == COUNTS[("seen-once", 4)]


def test_prepare_resumes_without_rereading_finished_sessions(tmp_path, monkeypatch):
    import gess.data.nsd_prepare as prep

    write_release(tmp_path / "nsd")
    out = tmp_path / "prepared"
    opts = prep.NSDPrepareOptions(subject=SUBJECT, sessions=SESSIONS, image_size=8)
    real = prep.read_session
    read = []

    def failing_on_third(path, mask):
        read.append(path.name)
        if len(read) == 3:
            raise KeyboardInterrupt
        return real(path, mask)

    monkeypatch.setattr(prep, "read_session", failing_on_third)
    with pytest.raises(KeyboardInterrupt):
        prep.prepare_nsd(tmp_path / "nsd", out, opts, progress=False)
    read.clear()
    monkeypatch.setattr(prep, "read_session", lambda path, mask: read.append(path.name) or real(path, mask))
    manifest = prep.prepare_nsd(tmp_path / "nsd", out, opts, progress=False)
    assert read == ["betas_session03.hdf5", "betas_session04.hdf5"] and manifest["trials"] == 40
    straight = tmp_path / "straight"
    prep.prepare_nsd(tmp_path / "nsd", straight, opts, progress=False)
    for name, entry in json.loads((straight / "manifest.json").read_text())["files"].items():
        assert manifest["files"][name]["sha256"] == entry["sha256"], name


def test_a_finished_preparation_is_kept_and_another_plan_for_it_refused(tmp_path, monkeypatch):
    import dataclasses

    import gess.data.nsd_prepare as prep
    from gess.errors import GessInputError

    write_release(tmp_path / "nsd")
    out = tmp_path / "prepared"
    opts = prep.NSDPrepareOptions(subject=SUBJECT, sessions=SESSIONS, image_size=8)
    manifest = prep.prepare_nsd(tmp_path / "nsd", out, opts, progress=False)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    read = []
    real = prep.read_session
    monkeypatch.setattr(prep, "read_session", lambda path, mask: read.append(path.name) or real(path, mask))
    assert prep.prepare_nsd(tmp_path / "nsd", out, opts, progress=False) == manifest
    assert read == [] and {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps  # nothing redone
    other = dataclasses.replace(opts, test_set="three-repeats" if opts.test_set != "three-repeats" else "seen-once")
    with pytest.raises(GessInputError, match="manifest.json.*another directory"):
        prep.prepare_nsd(tmp_path / "nsd", out, other, progress=False)
    assert read == [] and {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    assert not list(out.glob("*.partial")) and not list(out.glob("*.tmp"))


@pytest.mark.parametrize("fault", ["missing session", "mask shape", "no such subject", "truncated hdf5",
                                   "fewer sessions than the default", "old test-set name", "no sessions",
                                   "empty test set"])
def test_bad_input_exits_2_naming_it(tmp_path, capsys, fault):
    import nibabel

    release_root = tmp_path / "nsd"
    write_release(release_root)
    betas = release_root / f"nsddata_betas/ppdata/subj{SUBJECT:02d}/func1pt8mm/betas_fithrf_GLMdenoise_RR"
    subject, extra = SUBJECT, ["--sessions", SESSIONS]
    if fault == "missing session":
        (betas / "betas_session02.hdf5").unlink()
        needles = ["betas_session02", "sessions"]
    elif fault == "mask shape":
        roi = release_root / f"nsddata/ppdata/subj{SUBJECT:02d}/func1pt8mm/roi/nsdgeneral.nii.gz"
        nibabel.save(nibabel.Nifti1Image(np.ones((6, 4, 3), np.float32), np.eye(4)), roi)
        needles = ["betas_session01"]
    elif fault == "no such subject":
        subject, needles = 9, ["subj09"]
    elif fault == "truncated hdf5":
        raw = (betas / "betas_session02.hdf5").read_bytes()
        (betas / "betas_session02.hdf5").write_bytes(raw[: len(raw) // 3])
        needles = ["betas_session02"]
    elif fault == "fewer sessions than the default":  # 37 for subject 2; the tiny release has 4
        extra, needles = [], ["betas_session05", "sessions 1-37", "--sessions N reads fewer"]
    elif fault == "old test-set name":
        extra, needles = ["--test-set", "all"], ["test_set", "seen-once (the new name of 'all')"]
    elif fault == "no sessions":
        extra, needles = ["--sessions", 0], ["sessions", "at least 1"]
    else:
        extra, needles = ["--sessions", 1, "--test-set", "three-repeats"], ["nsd_expdesign.mat", "test_set"]
    args = ["prepare", "nsd", "--nsd-root", release_root, "--subject", str(subject), "--out", tmp_path / "out", *extra]
    code, err = run_cli(args, capsys)
    if fault == "empty test set":  # found once the sessions are read: after the progress bar and a warning
        err = err.strip().splitlines()[-1]
    assert_one_line_error(code, err, *needles)
