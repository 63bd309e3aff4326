"""What `gess prepare nsd` costs per NSD session and per stimulus, on a synthetic release of NSD's shapes.

    python benchmarks/nsd_prepare_cost.py --sessions 2 --images 1000

Writes a release in NSD's file layout with full-size sessions (750 trials x 81 x 104 x 83 int16,
about 1 GB each), a mask of about 15,700 voxels and a brick of ``--images`` 425 px stimuli, times
the preparation, and extrapolates to subject 1 (37 sessions, 10,000 images). The estimate
assumes the real files read as fast as these (same disk); it is not a measurement on real NSD.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def write_release(root: Path, sessions: int, images: int, rng) -> None:
    import h5py
    import nibabel
    import scipy.io

    volume = (81, 104, 83)
    per_session = 750
    trials = 30000
    subjectim = np.tile(np.arange(1, 10001), (8, 1))
    order = rng.integers(1, min(images, 10000) + 1, trials)
    (root / "nsddata/experiments/nsd").mkdir(parents=True)
    scipy.io.savemat(root / "nsddata/experiments/nsd/nsd_expdesign.mat",
                     {"masterordering": order[None], "subjectim": subjectim, "sharedix": np.arange(1, 101)[None]})
    mask = np.zeros(volume, np.float32)
    flat = mask.reshape(-1)
    flat[rng.choice(flat.size, 15724, replace=False)] = 1
    roi = root / "nsddata/ppdata/subj01/func1pt8mm/roi"
    roi.mkdir(parents=True)
    nibabel.save(nibabel.Nifti1Image(mask, np.eye(4)), roi / "nsdgeneral.nii.gz")
    betas = root / "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR"
    betas.mkdir(parents=True)
    for s in range(1, sessions + 1):
        with h5py.File(betas / f"betas_session{s:02d}.hdf5", "w") as fh:
            data = fh.create_dataset("betas", (per_session,) + tuple(reversed(volume)), dtype=np.int16)
            for start in range(0, per_session, 50):
                data[start:start + 50] = rng.integers(-3000, 3000, (50,) + tuple(reversed(volume)), dtype=np.int16)
    stim = root / "nsddata_stimuli/stimuli/nsd"
    stim.mkdir(parents=True)
    with h5py.File(stim / "nsd_stimuli.hdf5", "w") as fh:
        brick = fh.create_dataset("imgBrick", (images, 425, 425, 3), dtype=np.uint8)
        for start in range(0, images, 100):
            brick[start:start + 100] = rng.integers(0, 256, (min(100, images - start), 425, 425, 3), dtype=np.uint8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=2)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--image-size", type=int, default=425)
    args = ap.parse_args()
    from gess.data.nsd_prepare import NSDPrepareOptions, NSDRelease, prepare_nsd, read_mask, read_session

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        root = Path(tmp) / "nsd"
        write_release(root, args.sessions, args.images, rng)
        cold = os.system("sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null") == 0  # read from disk, not from memory
        release = NSDRelease(root, 1)
        mask = read_mask(release.mask)
        start = time.perf_counter()
        for s in range(1, args.sessions + 1):
            read_session(release.session_file(s), mask)
        per_session = (time.perf_counter() - start) / args.sessions
        os.system("sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null")
        start = time.perf_counter()
        manifest = prepare_nsd(root, Path(tmp) / "out", NSDPrepareOptions(subject=1, sessions=args.sessions,
                                                                          image_size=args.image_size), progress=False)
        total = time.perf_counter() - start
        stimuli = manifest["train_images"] + manifest["test_images"]
    rest = total - per_session * args.sessions
    estimate = 37 * per_session + rest * 10000 / max(stimuli, 1)
    print(f"({'page cache dropped: files read from disk' if cold else 'page cache NOT dropped: files may be read from memory'}) "
          f"{args.sessions} full-size sessions: {per_session:.1f} s per session to read and select the mask's voxels; "
          f"whole preparation {total:.1f} s ({stimuli} stimuli at {args.image_size} px). Estimated for subject 1 "
          f"(37 sessions, 10,000 stimuli): {estimate / 60:.0f} min")


if __name__ == "__main__":
    main()
