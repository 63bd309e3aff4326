"""Extra images without fMRI: loading, and the refusal of any set holding a test stimulus."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import DIGIT69, SHARED, needs, write_mat
from test_cli_errors import assert_one_line_error, run_cli

from gess.data.extra import (check_no_test_stimuli, load_extra_images, match_images, near_copies, subset,
                             without_copies)
from gess.errors import GessInputError


def test_npz_of_grey_or_float_images_loads_as_uint8(tmp_path):
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (5, 9, 9)).astype(np.uint8)
    np.savez(tmp_path / "a.npz", images=grey)
    np.savez(tmp_path / "b.npz", images=grey[..., None] / 255.0)
    a, b = load_extra_images(tmp_path / "a.npz"), load_extra_images(tmp_path / "b.npz")
    assert a.shape == b.shape == (5, 9, 9, 1) and a.dtype == b.dtype == np.uint8
    np.testing.assert_array_equal(a[..., 0], grey)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_folder_of_grey_pngs_loads_one_channel(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.full((6, 6), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    images = load_extra_images(tmp_path)
    assert images.shape == (3, 6, 6, 1)


@pytest.mark.parametrize("content,needles", [
    ({"pictures": np.zeros((2, 4, 4), np.uint8)}, ["images", "an 'images' array", "pictures"]),
    ({"images": np.zeros((2, 4), np.uint8)}, ["images", "shaped"]),
    ({"images": np.full((2, 4, 4), -1.0)}, ["images", "non-negative"]),
])
def test_bad_npz_names_the_file_and_field(tmp_path, content, needles):
    np.savez(tmp_path / "x.npz", **content)
    with pytest.raises(GessInputError) as err:
        load_extra_images(tmp_path / "x.npz")
    message = str(err.value)
    assert "x.npz" in message and all(n in message for n in needles), message


def test_neither_folder_nor_npz_is_refused(tmp_path):
    (tmp_path / "x.txt").write_text("no")
    with pytest.raises(GessInputError, match="a folder of images or an .npz"):
        load_extra_images(tmp_path / "x.txt")


def test_near_copies_find_exact_and_resized_copies_only():
    rng = np.random.default_rng(1)
    refs = rng.integers(0, 256, (4, 16, 16, 1)).astype(np.uint8)
    others = rng.integers(0, 256, (50, 16, 16, 3)).astype(np.uint8)
    resized = match_images(match_images(refs[2:3], 24, 1), 16, 3)  # up, back down, as RGB
    pool = np.concatenate([others, match_images(refs[1:2], 16, 3), resized])
    found = {(i, j) for i, j, _ in near_copies(pool, refs)}
    assert found == {(50, 1), (51, 2)}


def test_without_copies_drops_a_held_out_folds_stimuli():
    rng = np.random.default_rng(3)
    pool = rng.integers(0, 256, (10, 8, 8, 1)).astype(np.uint8)
    kept = without_copies(pool, pool[[2, 7]])
    assert len(kept) == 8 and not near_copies(kept, pool[[2, 7]])


def test_check_no_test_stimuli_names_the_stimulus(tmp_path):
    refs = np.random.default_rng(2).integers(0, 256, (3, 8, 8, 1)).astype(np.uint8)
    with pytest.raises(GessInputError) as err:
        check_no_test_stimuli(np.concatenate([refs[:0], refs[2:]]), refs, np.array(["a", "b", "c"]), tmp_path / "x.npz")
    assert "test stimulus c" in str(err.value) and "x.npz" in str(err.value)
    check_no_test_stimuli(np.zeros((2, 8, 8, 1), np.uint8), refs, np.array(["a", "b", "c"]), None)  # constant: no match


def test_subset_is_seeded_and_ordered():
    images = np.arange(100).reshape(100, 1, 1, 1).astype(np.uint8)
    a, b = subset(images, 10, seed=3), subset(images, 10, seed=3)
    np.testing.assert_array_equal(a, b)
    assert len(a) == 10 and (np.diff(a.ravel().astype(int)) > 0).all()
    assert subset(images, None) is images


def _prior_args(data, extra, out):
    return ["prior", "train", "--images", data, "--extra-images", extra, "--out", out, "--steps", "2",
            "--image-size", "8", "--block-out-channels", "[8, 16]", "--batch-size", "4"]


def test_prior_train_refuses_extra_images_holding_a_test_stimulus(tmp_path, capsys):
    data = tmp_path / "x.mat"
    _, test_images = write_mat(data, n_train=8, side=8)
    pool = np.random.default_rng(5).integers(0, 256, (20, 8, 8)).astype(np.uint8)
    np.savez(tmp_path / "bad.npz", images=np.concatenate([pool, test_images[1:2]]))
    code, err = run_cli(_prior_args(data, tmp_path / "bad.npz", tmp_path / "p"), capsys)
    assert_one_line_error(code, err, "bad.npz", "images", "test stimulus test-0001")
    assert not (tmp_path / "p").exists()
    np.savez(tmp_path / "good.npz", images=pool)
    code, err = run_cli(_prior_args(data, tmp_path / "good.npz", tmp_path / "p"), capsys)
    assert code == 0, err
    import json

    assert json.loads((tmp_path / "p" / "training.json").read_text())["n_images"] == 28


def test_run_refuses_extra_images_holding_a_test_stimulus(tmp_path, capsys):
    import yaml

    data = tmp_path / "x.mat"
    _, test_images = write_mat(data, n_train=8, side=8)
    np.savez(tmp_path / "bad.npz", images=test_images[:2])
    config = {"dataset": {"path": str(data), "extra_images": "bad.npz"}, "methods": ["semantic"],
              "generator": {"training": {"steps": 2, "image_size": 8, "block_out_channels": [8, 16]}}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    code, err = run_cli(["run", tmp_path / "run.yaml", "--out", tmp_path / "out"], capsys)
    assert_one_line_error(code, err, "bad.npz", "test stimulus")


@needs(SHARED / "mnist" / "mnist_minus_digit69_test.npz")
@needs(DIGIT69)
def test_shared_mnist_holds_digit69_training_stimuli_but_no_test_stimulus():
    """Same orientation as digit69's .mat once read, every training stimulus found, no test stimulus."""
    from gess.data import load_mat

    dataset = load_mat(DIGIT69)
    mnist = load_extra_images(SHARED / "mnist" / "mnist_minus_digit69_test.npz")
    assert mnist.shape == (69990, 28, 28, 1)
    assert len({j for _, j, _ in near_copies(mnist, dataset.train.images)}) == len(dataset.train.stimulus_ids)
    check_no_test_stimuli(mnist, dataset.test.images, dataset.test.stimulus_ids, None)
