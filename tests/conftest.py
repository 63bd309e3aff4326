from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(os.environ.get("GESS_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
DIGIT69 = SHARED / "digit69" / "digit69_28x28.mat"
IMAGENET_SAMPLE = SHARED / "imagenet-sample"

# gess's default thread count follows the machine's load, and the thread count changes float rounding: a
# fixture trained under one load differed in the last bits from the same fixture under another, so a test
# comparing bytes passed or failed by the load. Pinned for the session (a test may still set its own).
os.environ.setdefault("GESS_THREADS", "1")


def _session_cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp() / "gess-cache"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # features cached per test session, never in the user's cache
    monkeypatch.setenv("GESS_CACHE", str(_session_cache_dir(tmp_path_factory)))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import torch

    threads = torch.get_num_threads()  # the CLI sets torch's threads; no test sees another test's choice
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory):
    """The test session's feature cache, holding the demo's simulated world (all 1,797 scikit-learn digits) encoded.

    Tests that run `gess run` in subprocesses (one thread each) read it instead of each encoding the world again.
    """
    from gess.encoders import get_encoder
    from gess.run import DEMO_CONFIG
    from gess.runconfig import load_run_config
    from gess.stages import encode_images

    cache = _session_cache_dir(tmp_path_factory)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GESS_CACHE", str(cache))
        cfg = load_run_config(DEMO_CONFIG)
        pool, _ = cfg.simulation()
        encode_images(get_encoder(cfg.encoder, device=cfg.device), pool.world()[0])
    return cache


def needs(path: Path):
    return pytest.mark.skipif(not path.exists(), reason=f"real data not found at {path} (set GESS_SHARED_DATA)")


@pytest.fixture(scope="session")
def imagenet_sample():
    """(images 128 px, ids, EfficientNet-Lite0 semantic features) of the 1000 shared images."""
    if not IMAGENET_SAMPLE.exists():
        pytest.skip(f"real data not found at {IMAGENET_SAMPLE}")
    from gess.data.images import load_image_folder
    from gess.encoders import get_encoder
    from gess.encoders.features import semantic_features

    images, ids = load_image_folder(IMAGENET_SAMPLE)
    return images, ids, semantic_features(get_encoder("efficientnet-lite0"), images, progress=False)


def write_mat(path: Path, n_train=12, n_test=4, voxels=30, side=8, channels=1, dtype=np.uint8, seed=0, **overrides):
    """A small file in the digit69 .mat layout (images flattened column-major)."""
    import scipy.io

    rng = np.random.default_rng(seed)

    def images(n):
        shape = (n, side, side) if channels == 1 else (n, side, side, 3)
        imgs = rng.integers(0, 256, shape).astype(np.uint8)
        flat = np.stack([im.reshape(-1, order="F") for im in imgs])
        if np.issubdtype(dtype, np.floating):
            flat = flat.astype(dtype) / 255.0
        return imgs, flat.astype(dtype)

    tr_img, tr = images(n_train)
    te_img, te = images(n_test)
    fields = dict(fmriTrn=rng.normal(size=(n_train, voxels)), fmriTest=rng.normal(size=(n_test, voxels)),
                  stimTrn=tr, stimTest=te, labelTrn=np.ones((n_train, 1)), labelTest=np.ones((n_test, 1)))
    fields.update(overrides)
    scipy.io.savemat(str(path), fields)
    return tr_img, te_img


def write_folder_dataset(folder: Path, n_train=10, n_test=3, voxels=20, side=12, seed=0) -> Path:
    """A user's own experiment in gess's folder layout: images/ + fmri.npz."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    ids = [f"im{i:02d}" for i in range(n_train + n_test)]
    for sid in ids:
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(folder / "images" / f"{sid}.png")
    np.savez(folder / "fmri.npz", fmri_train=rng.normal(size=(n_train, voxels)), fmri_test=rng.normal(size=(n_test, voxels)),
             train_ids=np.array(ids[:n_train]), test_ids=np.array(ids[n_train:]))
    return folder
