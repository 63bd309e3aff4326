"""The self-supervised M_s (Beliy et al.): shapes, losses, resume, persistence and the CLI, at tiny sizes."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import write_mat
from test_cli_errors import assert_one_line_error, run_cli

from gess.decoding.selfsupervised import (ImageToVoxels, SelfSupervisedOptions, SelfSupervisedStructuralDecoder,
                                          VoxelsToImage)

TINY = dict(steps=6, encoder_steps=4, batch_size=4, width=4, checkpoint_every=2)


@pytest.mark.parametrize("side,channels", [(8, 1), (7, 3), (16, 1)])
def test_networks_map_images_and_voxels_both_ways(side, channels):
    e, d = ImageToVoxels(channels, side, 13, 4), VoxelsToImage(13, channels, side, 4)
    assert e(torch.rand(2, channels, side, side)).shape == (2, 13)
    assert d(torch.randn(2, 13)).shape == (2, channels, side, side)


def test_decoder_starts_as_its_readout():
    """The refinement's last layer starts at zero: an untrained D is the ridge it was given."""
    d = VoxelsToImage(10, 1, 6, 4)
    z = torch.randn(3, 10)
    torch.testing.assert_close(d(z), d.linear(z))


def _problem(seed=0, n=12, voxels=20, side=8):
    rng = np.random.default_rng(seed)
    targets = rng.random((n, side, side, 1)).astype(np.float32)
    coef = rng.normal(size=(voxels, side * side)).astype(np.float32) * 0.01
    fmri = rng.normal(size=(n, voxels)).astype(np.float32)
    return fmri, targets, coef, np.full(side * side, 0.5, np.float32), rng.random((30, side, side, 1)).astype(np.float32)


def test_each_loss_is_used_and_unpaired_fmri_can_be_left_out():
    fmri, targets, coef, intercept, extra = _problem()
    both = SelfSupervisedStructuralDecoder(SelfSupervisedOptions(**TINY)).fit(
        fmri, targets, coef, intercept, extra, fmri[:5])
    assert set(both.losses_) == {"encoder", "pairs", "image_cycle", "fmri_cycle"}
    assert all(np.isfinite(v) and v >= 0 for v in both.losses_.values())
    assert both.predict(fmri[:3]).shape == (3, 8, 8, 1)
    pairs_only = SelfSupervisedStructuralDecoder(SelfSupervisedOptions(**TINY, image_cycle=0.0)).fit(
        fmri, targets, coef, intercept, extra, None)
    assert set(pairs_only.losses_) == {"encoder", "pairs"}


def test_training_lowers_the_pairs_loss():
    fmri, targets, coef, intercept, extra = _problem()
    opts = dict(TINY, steps=60, image_cycle=0.0, learning_rate=3e-3)
    short = SelfSupervisedStructuralDecoder(SelfSupervisedOptions(**dict(opts, steps=1))).fit(fmri, targets, coef, intercept)
    long = SelfSupervisedStructuralDecoder(SelfSupervisedOptions(**opts)).fit(fmri, targets, coef, intercept)
    error = lambda m: float(((m.predict(fmri) - targets) ** 2).mean())
    assert error(long) < 0.8 * error(short)


def test_interrupted_training_resumes_to_the_same_weights(tmp_path, monkeypatch):
    import gess.checkpoint as checkpoint

    fmri, targets, coef, intercept, extra = _problem()
    opts = SelfSupervisedOptions(**TINY)
    straight = SelfSupervisedStructuralDecoder(opts).fit(fmri, targets, coef, intercept, extra, fmri[:4])

    class StopAfter:
        def __init__(self, steps):
            self.calls = 0
            self.steps = steps

        def __enter__(self):
            def interrupted():
                self.calls += 1
                return self.calls >= self.steps
            return interrupted

        def __exit__(self, *exc):
            return False

    ckpt = tmp_path / "checkpoint"
    for stop_at in (3, 6):  # once while E trains, once while D trains (after the residuals)
        monkeypatch.setattr(checkpoint, "deferred_interrupts", lambda: StopAfter(stop_at))
        with pytest.raises(KeyboardInterrupt):
            SelfSupervisedStructuralDecoder(opts).fit(fmri, targets, coef, intercept, extra, fmri[:4], checkpoint=ckpt)
        assert (ckpt / "state.json").is_file()
    monkeypatch.undo()
    assert json.loads((ckpt / "state.json").read_text())["step"] >= 6
    resumed = SelfSupervisedStructuralDecoder(opts).fit(fmri, targets, coef, intercept, extra, fmri[:4], checkpoint=ckpt)
    assert not ckpt.exists()
    for name, value in straight.state().items():
        np.testing.assert_array_equal(value, resumed.state()[name], err_msg=name)


def test_resuming_with_other_options_is_refused(tmp_path, monkeypatch):
    import gess.checkpoint as checkpoint
    from gess.errors import GessInputError

    fmri, targets, coef, intercept, extra = _problem()

    class StopAtOnce:
        def __enter__(self):
            return lambda: True

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(checkpoint, "deferred_interrupts", lambda: StopAtOnce())
    with pytest.raises(KeyboardInterrupt):
        SelfSupervisedStructuralDecoder(SelfSupervisedOptions(**TINY)).fit(fmri, targets, coef, intercept,
                                                                           checkpoint=tmp_path / "c")
    monkeypatch.undo()
    with pytest.raises(GessInputError, match="steps"):
        SelfSupervisedStructuralDecoder(SelfSupervisedOptions(**dict(TINY, steps=9))).fit(
            fmri, targets, coef, intercept, checkpoint=tmp_path / "c")


def test_gess_decoder_saves_and_loads_a_self_supervised_ms(tmp_path):
    from gess.decoding import GESSDecoder

    rng = np.random.default_rng(0)
    X, C, S = rng.normal(size=(20, 15)), rng.normal(size=(20, 6)), rng.random((20, 6, 6, 1))
    model = GESSDecoder(n_neighbors=3, structural_decoder="self-supervised", self_supervised=TINY).fit(
        X, C, S, extra_structure=rng.random((10, 6, 6, 1)), unpaired_fmri=rng.normal(size=(4, 15)))
    model.save(tmp_path / "m")
    loaded = GESSDecoder.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.decode(X[:4]).s, model.decode(X[:4]).s, rtol=1e-5, atol=1e-6)
    assert loaded.get_params()["structural_decoder"] == "self-supervised"


def test_self_supervised_ms_needs_pixel_targets():
    from gess.decoding import GESSDecoder
    from gess.errors import GessInputError

    rng = np.random.default_rng(0)
    with pytest.raises(GessInputError, match="pixels"):
        GESSDecoder(n_neighbors=3, structural_decoder="self-supervised", self_supervised=TINY).fit(
            rng.normal(size=(20, 15)), rng.normal(size=(20, 6)), rng.normal(size=(20, 4, 3, 3, 2)))


def _fit_args(data, out, *extra):
    return ["fit", "--data", data, "--out", out, "--structural-decoder", "self-supervised", "--ss-steps", "4",
            "--ss-encoder-steps", "2", "--ss-width", "4", "--ss-batch-size", "4", "--n-neighbors", "3", *extra]


def test_cli_fits_a_self_supervised_ms_with_extra_images(tmp_path, capsys):
    data = tmp_path / "x.mat"
    write_mat(data, n_train=10, side=8)
    np.savez(tmp_path / "extra.npz", images=np.random.default_rng(9).integers(0, 256, (16, 8, 8)).astype(np.uint8))
    code, err = run_cli(_fit_args(data, tmp_path / "m", "--extra-images", tmp_path / "extra.npz"), capsys)
    assert code == 0, err
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["params"]["self_supervised"]["steps"] == 4
    assert config["metadata"]["self_supervised_data"]["n_extra_images"] == 16
    assert config["metadata"]["self_supervised_data"]["n_unpaired_fmri"] == 4
    code, err = run_cli(_fit_args(data, tmp_path / "m", "--extra-images", tmp_path / "extra.npz"), capsys)
    assert code == 0 and "up to date" in " ".join(err.split())


def test_cli_extra_images_with_a_ridge_ms_is_refused(tmp_path, capsys):
    data = tmp_path / "x.mat"
    write_mat(data, n_train=10, side=8)
    np.savez(tmp_path / "extra.npz", images=np.zeros((3, 8, 8), np.uint8))
    code, err = run_cli(["fit", "--data", data, "--out", tmp_path / "m", "--extra-images", tmp_path / "extra.npz"], capsys)
    assert_one_line_error(code, err, "--extra-images", "self-supervised")


def test_cli_fit_refuses_extra_images_holding_a_test_stimulus(tmp_path, capsys):
    data = tmp_path / "x.mat"
    _, test_images = write_mat(data, n_train=10, side=8)
    pool = np.random.default_rng(4).integers(0, 256, (12, 8, 8)).astype(np.uint8)
    np.savez(tmp_path / "bad.npz", images=np.concatenate([pool, test_images[2:3]]))
    code, err = run_cli(_fit_args(data, tmp_path / "m", "--extra-images", tmp_path / "bad.npz"), capsys)
    assert code == 2 and "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert "bad.npz" in last and "test stimulus test-0002" in last, last
    assert not (tmp_path / "m" / "config.json").exists()
