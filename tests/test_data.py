from __future__ import annotations

import numpy as np
import pytest

from gess.data import detect_format, load_dataset, load_folder, load_god, load_mat, load_nsd
from gess.data.dataset import Split, Dataset
from gess.data.god import god_image_name
from gess.data.simulated import SimulatedFMRIModel, simulate_dataset
from gess.errors import GessInputError

from conftest import DIGIT69, needs, write_mat


@needs(DIGIT69)
def test_digit69_layout():
    ds = load_mat(DIGIT69)
    assert ds.train.fmri.shape == (90, 3092) and ds.test.fmri.shape == (10, 3092)
    assert ds.train.fmri.dtype == np.float32
    assert ds.train.images.shape == (90, 28, 28, 1) and ds.train.images.dtype == np.uint8
    assert set(ds.test.labels.tolist()) == {1, 2}
    assert ds.test.stimulus_ids[0] == "test-0000"
    # column-major: a six/nine is upright, so its ink is spread over rows, not smeared to one side
    ink_rows = (ds.train.images[0, :, :, 0] > 128).any(1).sum()
    assert ink_rows >= 12


@pytest.mark.parametrize("side,channels,dtype", [(8, 1, np.uint8), (10, 3, np.uint8), (6, 1, np.float64), (12, 3, np.float32)])
def test_mat_any_layout(tmp_path, side, channels, dtype):
    path = tmp_path / "x.mat"
    tr_img, te_img = write_mat(path, n_train=7, n_test=3, voxels=11, side=side, channels=channels, dtype=dtype)
    ds = load_mat(path)
    assert ds.train.fmri.shape == (7, 11) and ds.test.fmri.shape == (3, 11)
    assert ds.train.images.shape == (7, side, side, channels)
    expected = tr_img if channels == 3 else tr_img[..., None]
    assert np.abs(ds.train.images.astype(int) - expected.astype(int)).max() <= 1


def test_standardize_uses_training_statistics(tmp_path):
    path = tmp_path / "x.mat"
    write_mat(path)
    ds = load_mat(path).standardized()
    assert np.allclose(ds.train.fmri.mean(0), 0, atol=1e-5)
    assert np.allclose(ds.train.fmri.std(0), 1, atol=1e-4)
    assert not np.allclose(ds.test.fmri.mean(0), 0, atol=1e-3)


def test_averaging_repeats():
    imgs = np.zeros((2, 4, 4, 1), np.uint8)
    fmri = np.array([[1.0, 2.0], [3.0, 4.0], [10.0, 10.0]], np.float32)
    split = Split(fmri, np.array(["a", "a", "b"]), imgs, np.array(["a", "b"]))
    avg = split.averaged()
    assert avg.fmri.tolist() == [[2.0, 3.0], [10.0, 10.0]]
    assert avg.stimulus_ids.tolist() == ["a", "b"]


@pytest.mark.parametrize("field,value,expected", [
    ("fmriTrn", "nan", "finite voxel values"),
    ("fmriTest", "inf", "finite voxel values"),
    ("stimTrn", "short", "one per fMRI trial"),
    ("fmriTest", "voxels", "voxels (as in the training fMRI)"),
])
def test_bad_mat_content(tmp_path, field, value, expected):
    path = tmp_path / "bad.mat"
    rng = np.random.default_rng(0)
    overrides = {}
    if value == "nan":
        x = rng.normal(size=(12, 30)); x[3, 4] = np.nan; overrides[field] = x
    elif value == "inf":
        x = rng.normal(size=(4, 30)); x[0, 0] = np.inf; overrides[field] = x
    elif value == "short":
        overrides[field] = rng.integers(0, 255, (10, 64)).astype(np.uint8)
    else:
        overrides[field] = rng.normal(size=(4, 29))
    write_mat(path, **overrides)
    with pytest.raises(GessInputError) as err:
        load_mat(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_truncated_and_foreign_files(tmp_path):
    good = tmp_path / "good.mat"
    write_mat(good)
    truncated = tmp_path / "trunc.mat"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(GessInputError, match="readable MATLAB .mat file"):
        load_mat(truncated)
    text = tmp_path / "notes.mat"
    text.write_text("not a mat file at all")
    with pytest.raises(GessInputError, match="notes.mat"):
        load_mat(text)
    with pytest.raises(GessInputError, match="fields fmriTrn"):
        import scipy.io

        scipy.io.savemat(str(tmp_path / "other.mat"), {"x": np.ones(3)})
        load_mat(tmp_path / "other.mat")


def _write_god(tmp_path, bad_roi=False):
    from bdpy import BData
    from PIL import Image

    train_ids = [1518878.010042, 1518878.012028, 1621127.019020]
    test_ids = [1443537.022563, 1677366.018182]
    rows = [(1, s) for s in train_ids] + [(2, s) for s in test_ids for _ in range(3)] + [(3, 1443537.0)]
    rng = np.random.default_rng(0)
    bd = BData()
    bd.add(rng.normal(size=(len(rows), 8)), "VoxelData")
    bd.add(np.array([[r[0]] for r in rows], float), "DataType")
    bd.add(np.array([[r[1]] for r in rows], float), "stimulus_id")
    bd.add_metadata("ROI_VC", np.array([1, 1, 1, 1, 1, 0, 0, 1], float), "visual cortex", where="VoxelData")
    h5 = tmp_path / "Subject1.h5"
    bd.save(str(h5))
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    for s in train_ids + test_ids:
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(img_dir / f"{god_image_name(s)}.JPEG")
    return h5, img_dir


def test_god_bdata(tmp_path):
    h5, img_dir = _write_god(tmp_path)
    ds = load_god(h5, img_dir, image_size=16)
    assert ds.train.fmri.shape == (3, 6)  # ROI_VC keeps 6 of 8 voxels
    assert ds.test.fmri.shape == (6, 6) and len(ds.test.stimulus_ids) == 2
    assert ds.test.stimulus_ids.tolist() == ["n01443537_22563", "n01677366_18182"]
    assert ds.averaged().test.fmri.shape == (2, 6)
    assert ds.train.images.shape == (3, 16, 16, 3)
    assert detect_format(tmp_path) == "god"
    assert load_dataset(tmp_path, image_size=16).train.fmri.shape == (3, 6)


def test_god_missing_image(tmp_path):
    h5, img_dir = _write_god(tmp_path)
    (img_dir / "n01443537_22563.JPEG").unlink()
    with pytest.raises(GessInputError, match="n01443537_22563"):
        load_god(h5, img_dir)


def test_nsd_layout(tmp_path):
    d = tmp_path / "processed_data" / "subj01"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for side, n in (("train", 6), ("test", 3)):
        np.save(d / f"nsd_{side}_fmriavg_nsdgeneral_sub1.npy", rng.normal(size=(n, 15)).astype(np.float32))
        np.save(d / f"nsd_{side}_stim_sub1.npy", rng.integers(0, 255, (n, 12, 12, 3), dtype=np.uint8))
    assert detect_format(tmp_path) == "nsd"
    ds = load_nsd(tmp_path)
    assert ds.train.fmri.shape == (6, 15) and ds.test.images.shape == (3, 12, 12, 3)
    with pytest.raises(GessInputError, match="subject"):
        load_nsd(tmp_path, subject=2)


def test_folder_layout(tmp_path):
    from PIL import Image

    (tmp_path / "images").mkdir()
    rng = np.random.default_rng(0)
    names = ["cat", "dog", "car", "tree"]
    for n in names:
        Image.fromarray(rng.integers(0, 255, (10, 10, 3), dtype=np.uint8)).save(tmp_path / "images" / f"{n}.png")
    np.savez(tmp_path / "fmri.npz", fmri_train=rng.normal(size=(3, 5)), fmri_test=rng.normal(size=(4, 5)),
             train_ids=np.array(["cat", "dog", "car"]), test_ids=np.array(["tree", "tree", "tree", "tree"]))
    ds = load_dataset(tmp_path)
    assert ds.averaged().test.fmri.shape == (1, 5)
    np.savez(tmp_path / "fmri.npz", fmri_train=rng.normal(size=(3, 5)), fmri_test=rng.normal(size=(1, 5)),
             train_ids=np.array(["cat", "dog", "zebra"]), test_ids=np.array(["tree"]))
    with pytest.raises(GessInputError, match="zebra"):
        load_folder(tmp_path)


def test_simulation_is_seeded_and_documented():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 255, (30, 16, 16, 3), dtype=np.uint8)
    emb = rng.normal(size=(30, 6)).astype(np.float32)
    ids = [f"im{i}" for i in range(30)]
    model = SimulatedFMRIModel(n_low=20, n_semantic=20, seed=3)
    a = simulate_dataset(imgs, ids, emb, ids[:20], ids[20:], model, test_repeats=2)
    b = simulate_dataset(imgs, ids, emb, ids[:20], ids[20:], model, test_repeats=2)
    assert np.array_equal(a.train.fmri, b.train.fmri)
    assert a.test.fmri.shape == (20, 40) and a.averaged().test.fmri.shape == (10, 40)
    assert a.extra["simulation"]["snr"] == 1.0
    c = simulate_dataset(imgs, ids, emb, ids[:20], ids[20:], SimulatedFMRIModel(n_low=20, n_semantic=20, seed=4))
    assert not np.array_equal(a.train.fmri, c.train.fmri)
