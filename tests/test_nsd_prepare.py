"""`gess prepare nsd` on a tiny release written here in NSD's own file layout, checked against values computed here."""
from __future__ import annotations

import json

import numpy as np
import pytest

from test_cli_errors import assert_one_line_error, run_cli

VOLUME = (5, 4, 3)          # X, Y, Z
TRIALS_PER_SESSION = 10
SESSIONS = 3
SUBJECT = 2


def write_release(root, seed=0, nii_session=None):
    """nsd_expdesign.mat, betas_sessionNN.hdf5 (trials x Z x Y x X, int16), nsdgeneral.nii.gz, nsd_stimuli.hdf5."""
    import h5py
    import nibabel
    import scipy.io

    rng = np.random.default_rng(seed)
    n_images = 14  # the subject's images (1-based 73k ids below)
    subjectim = np.tile(np.arange(1, 9)[:, None] * 100, (1, n_images)) + np.arange(n_images)[None] + 1  # 8 x n
    # trials: shared images 0-3; 0, 1, 2 shown three times, 3 twice; the rest once or twice
    order = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 10, 11, 12, 13, 4, 5, 0, 1, 2, 6, 7, 8, 9, 10, 11, 12]) + 1
    shared = subjectim[SUBJECT - 1][[0, 1, 2, 3]]
    (root / "nsddata/experiments/nsd").mkdir(parents=True)
    scipy.io.savemat(root / "nsddata/experiments/nsd/nsd_expdesign.mat",
                     {"masterordering": order[None], "subjectim": subjectim, "sharedix": shared[None]})
    mask = np.zeros(VOLUME, np.float32) - 1
    mask[1:4, 1:3, :2] = 1
    mask[0, 0, 0] = 0
    roi = root / f"nsddata/ppdata/subj{SUBJECT:02d}/func1pt8mm/roi"
    roi.mkdir(parents=True)
    nibabel.save(nibabel.Nifti1Image(mask, np.eye(4)), roi / "nsdgeneral.nii.gz")
    betas_dir = root / f"nsddata_betas/ppdata/subj{SUBJECT:02d}/func1pt8mm/betas_fithrf_GLMdenoise_RR"
    betas_dir.mkdir(parents=True)
    volumes = rng.integers(-3000, 3000, (SESSIONS, TRIALS_PER_SESSION) + VOLUME).astype(np.int16)  # X, Y, Z
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
    ids73k = subjectim[SUBJECT - 1][order - 1]
    return {"volumes": volumes, "mask": mask > 0.5, "ids73k": ids73k, "shared": set(shared.tolist()), "brick": brick}


def expected(release):
    """z-scored per session, then averaged per image; computed here without gess."""
    rows = []
    for s in range(SESSIONS):
        b = np.stack([v[release["mask"]] for v in release["volumes"][s]]).astype(np.float64) / 300.0
        sd = b.std(0)
        sd[sd < 1e-8] = 1
        rows.append((b - b.mean(0)) / sd)
    trials = np.concatenate(rows)
    ids = release["ids73k"]
    return trials, {i: trials[ids == i].mean(0) for i in np.unique(ids)}, {i: int((ids == i).sum()) for i in np.unique(ids)}


@pytest.mark.parametrize("test_set,nii", [("three-repeats", None), ("all", 2)])
def test_prepare_matches_an_independent_computation(tmp_path, test_set, nii):
    from gess.cli import main
    from gess.data import load_dataset

    release = write_release(tmp_path / "nsd", nii_session=nii)
    out = tmp_path / "prepared"
    with pytest.raises(SystemExit) as exc:
        main(["prepare", "nsd", "--nsd-root", str(tmp_path / "nsd"), "--subject", str(SUBJECT), "--out", str(out),
              "--test-set", test_set, "--image-size", "8"])
    assert exc.value.code == 0
    trials, means, counts = expected(release)
    stored = np.load(out / f"nsd_trials_fmri_sub{SUBJECT}.npy")
    np.testing.assert_allclose(stored, trials, rtol=1e-5, atol=1e-5)
    assert stored.shape[1] == release["mask"].sum() == 12
    test_ids = np.load(out / f"nsd_test_nsd73k_sub{SUBJECT}.npy")
    want_test = sorted(i for i in release["shared"] if counts.get(i, 0) >= (3 if test_set == "three-repeats" else 1))
    assert sorted(test_ids.tolist()) == want_test
    train_ids = np.load(out / f"nsd_train_nsd73k_sub{SUBJECT}.npy")
    assert not set(train_ids) & release["shared"] and set(train_ids) | release["shared"] >= set(release["ids73k"])
    for side, ids in (("train", train_ids), ("test", test_ids)):
        avg = np.load(out / f"nsd_{side}_fmriavg_nsdgeneral_sub{SUBJECT}.npy")
        np.testing.assert_allclose(avg, np.stack([means[i] for i in ids]), rtol=1e-5, atol=1e-5)
        reps = np.load(out / f"nsd_{side}_repeats_sub{SUBJECT}.npy")
        assert reps.tolist() == [counts[i] for i in ids]
        stim = np.load(out / f"nsd_{side}_stim_sub{SUBJECT}.npy")
        assert stim.shape == (len(ids), 8, 8, 3)
    ds = load_dataset(out, "nsd", subject=SUBJECT)  # the loader reads the layout, memory-mapped
    assert list(ds.test.stimulus_ids) == [f"nsd-{i:05d}" for i in test_ids]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["trials"] == 30 and manifest["voxels"] == 12 and all(len(f["sha256"]) == 64 for f in manifest["files"].values())


def test_prepare_resumes_without_rereading_finished_sessions(tmp_path, monkeypatch):
    import gess.data.nsd_prepare as prep

    write_release(tmp_path / "nsd")
    out = tmp_path / "prepared"
    real = prep.read_session
    read = []

    def failing_on_third(path, mask):
        read.append(path.name)
        if len(read) == 3:
            raise KeyboardInterrupt
        return real(path, mask)

    monkeypatch.setattr(prep, "read_session", failing_on_third)
    with pytest.raises(KeyboardInterrupt):
        prep.prepare_nsd(tmp_path / "nsd", out, prep.NSDPrepareOptions(subject=SUBJECT, image_size=8), progress=False)
    read.clear()
    monkeypatch.setattr(prep, "read_session", lambda path, mask: read.append(path.name) or real(path, mask))
    manifest = prep.prepare_nsd(tmp_path / "nsd", out, prep.NSDPrepareOptions(subject=SUBJECT, image_size=8), progress=False)
    assert read == ["betas_session03.hdf5"] and manifest["trials"] == 30
    straight = tmp_path / "straight"
    prep.prepare_nsd(tmp_path / "nsd", straight, prep.NSDPrepareOptions(subject=SUBJECT, image_size=8), progress=False)
    for name, entry in json.loads((straight / "manifest.json").read_text())["files"].items():
        assert manifest["files"][name]["sha256"] == entry["sha256"], name


@pytest.mark.parametrize("fault", ["missing session", "mask shape", "no such subject", "truncated hdf5"])
def test_bad_release_exits_2_naming_the_file(tmp_path, capsys, fault):
    import nibabel

    release_root = tmp_path / "nsd"
    write_release(release_root)
    betas = release_root / f"nsddata_betas/ppdata/subj{SUBJECT:02d}/func1pt8mm/betas_fithrf_GLMdenoise_RR"
    subject, sessions = SUBJECT, None
    if fault == "missing session":
        (betas / "betas_session02.hdf5").unlink()
        sessions, needle = 3, "betas_session02"
    elif fault == "mask shape":
        roi = release_root / f"nsddata/ppdata/subj{SUBJECT:02d}/func1pt8mm/roi/nsdgeneral.nii.gz"
        nibabel.save(nibabel.Nifti1Image(np.ones((6, 4, 3), np.float32), np.eye(4)), roi)
        needle = "betas_session01"
    elif fault == "no such subject":
        subject, needle = 9, "subj09"
    else:
        raw = (betas / "betas_session02.hdf5").read_bytes()
        (betas / "betas_session02.hdf5").write_bytes(raw[: len(raw) // 3])
        needle = "betas_session02"
    args = ["prepare", "nsd", "--nsd-root", release_root, "--subject", str(subject), "--out", tmp_path / "out"]
    if sessions:
        args += ["--sessions", str(sessions)]
    code, err = run_cli(args, capsys)
    assert_one_line_error(code, err, needle)
