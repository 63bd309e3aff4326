"""The self-supervised M_s (Beliy et al.): shapes, losses, resume, persistence and the CLI, at tiny sizes."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import write_mat
from test_cli_errors import assert_one_line_error, run_cli

from gess.decoding.selfsupervised import (ImageToVoxels, SelfSupervisedOptions, SelfSupervisedStructuralDecoder,
                                          VoxelsToImage, validation_split)

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
    """Without early stopping (on random pairs it would keep the start: nothing generalises)."""
    fmri, targets, coef, intercept, extra = _problem()
    opts = dict(TINY, steps=60, image_cycle=0.0, learning_rate=3e-3, validation_fraction=0.0)
    short = SelfSupervisedStructuralDecoder(SelfSupervisedOptions(**dict(opts, steps=1))).fit(fmri, targets, coef, intercept)
    long = SelfSupervisedStructuralDecoder(SelfSupervisedOptions(**opts)).fit(fmri, targets, coef, intercept)
    error = lambda m: float(((m.predict(fmri) - targets) ** 2).mean())
    assert error(long) < 0.8 * error(short)


@pytest.mark.parametrize("validation_fraction", [0.0, 0.2])
def test_interrupted_training_resumes_to_the_same_weights(tmp_path, monkeypatch, validation_fraction):
    """Also with early stopping: the best weights so far and the held-out curve travel in the checkpoint."""
    import gess.checkpoint as checkpoint

    fmri, targets, coef, intercept, extra = _problem()
    opts = SelfSupervisedOptions(**dict(TINY, validation_fraction=validation_fraction, validation_every=2))
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
    assert resumed.validation_ == straight.validation_
    assert [step for step, _ in straight.validation_["curve"]] == ([0, 2, 4, 6] if validation_fraction else [])


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
    saved = json.loads((tmp_path / "m" / "config.json").read_text())["self_supervised"]["validation"]
    assert saved == loaded.structural_.validation_ and saved["held_out_pairs"] == 4 and saved["curve"][0][0] == 0


# ------------------------------------------------------------------ early stopping
def _held_out_loss(model, cross, targets):
    """The pairs loss of a fitted model on the pairs its fit held out."""
    _, held = validation_split(targets, model.options.validation_fraction, model.options.seed)
    with torch.no_grad():
        decoded = model.decoder_.refine(torch.as_tensor(cross[held]).permute(0, 3, 1, 2))
    return float(((decoded.permute(0, 2, 3, 1).numpy() - targets[held]) ** 2).mean())


def test_early_stopping_keeps_the_ridge_start_when_training_hurts_held_out_pairs():
    """Targets unrelated to the fMRI: every step fits the training pairs' noise, which the held-out pairs do not share."""
    fmri, targets, coef, intercept, _ = _problem(n=40)
    cross = (fmri @ coef + intercept).reshape(targets.shape)
    opts = dict(TINY, steps=60, image_cycle=0.0, learning_rate=3e-3, validation_every=5)
    model = SelfSupervisedStructuralDecoder(SelfSupervisedOptions(**opts)).fit(fmri, targets, coef, intercept,
                                                                              cross_fitted=cross)
    v = model.validation_
    assert v["held_out_pairs"] == 8 and [s for s, _ in v["curve"]] == list(range(0, 61, 5))
    assert v["curve"][-1][1] > v["start_loss"]          # the construction: training did hurt the held-out pairs
    assert v["chosen_step"] == 0 and v["chosen_loss"] == v["start_loss"]
    assert _held_out_loss(model, cross, targets) <= v["start_loss"] + 1e-7
    np.testing.assert_allclose(model.predict(fmri), cross, atol=1e-5)  # the ridge itself
    off = SelfSupervisedStructuralDecoder(SelfSupervisedOptions(**dict(opts, validation_fraction=0.0))).fit(
        fmri, targets, coef, intercept, cross_fitted=cross)
    assert off.validation_ == {"held_out_pairs": 0, "curve": [], "chosen_step": 60}
    assert np.abs(off.predict(fmri) - cross).max() > 1e-3  # without it, D ends where training left it


def test_early_stopping_keeps_training_that_helps_held_out_pairs():
    """Targets the ridge's outputs plus a constant: the refinement learns it, the held-out pairs improve."""
    fmri, _, coef, intercept, _ = _problem(n=40)
    cross = (fmri @ coef + intercept).reshape(40, 8, 8, 1)
    targets = cross + 0.3
    opts = dict(TINY, steps=60, image_cycle=0.0, learning_rate=3e-3, validation_every=5)
    model = SelfSupervisedStructuralDecoder(SelfSupervisedOptions(**opts)).fit(fmri, targets, coef, intercept,
                                                                              cross_fitted=cross)
    v = model.validation_
    assert v["chosen_step"] > 0 and v["chosen_loss"] < 0.5 * v["start_loss"]
    assert v["chosen_loss"] == min(loss for _, loss in v["curve"])
    assert _held_out_loss(model, cross, targets) == pytest.approx(v["chosen_loss"], rel=1e-4)


def test_validation_split_never_splits_a_stimulus():
    rng = np.random.default_rng(3)
    images = rng.random((30, 4, 4, 1)).astype(np.float32)
    trials = rng.permutation(np.repeat(np.arange(30), 3))        # 3 repeats of each stimulus, shuffled
    names = np.array([f"stim-{i}" for i in trials])
    for groups in (names, None):                                  # named, or told apart by their targets
        kept, held = validation_split(images[trials], 0.2, 0, groups)
        assert sorted(np.concatenate([kept, held]).tolist()) == list(range(90))
        assert not set(trials[kept]) & set(trials[held])
        assert len(set(trials[held])) == 6 and len(held) == 18
    np.testing.assert_array_equal(validation_split(images[trials], 0.2, 0, names)[1],
                                  validation_split(images[trials], 0.2, 0, names)[1])   # seeded
    assert not np.array_equal(validation_split(images[trials], 0.2, 0, names)[1],
                              validation_split(images[trials], 0.2, 1, names)[1])
    assert len(validation_split(images[trials], 0.0, 0)[1]) == 0


def test_fit_holds_out_whole_stimuli():
    fmri, targets, coef, intercept, _ = _problem(n=30)
    groups = np.repeat(np.arange(10), 3)  # 10 stimuli of 3 trials each
    model = SelfSupervisedStructuralDecoder(SelfSupervisedOptions(**TINY)).fit(fmri, targets, coef, intercept,
                                                                              groups=groups)
    assert model.validation_["held_out_pairs"] == 6


@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5, float("nan"), float("inf")])
def test_bad_validation_fractions_are_refused(value):
    from gess.errors import GessInputError
    from gess.options import build

    with pytest.raises(GessInputError, match="validation_fraction"):
        SelfSupervisedOptions(validation_fraction=value)
    with pytest.raises(GessInputError, match="validation_fraction"):
        build(SelfSupervisedOptions, {"validation_fraction": value}, None, "self_supervised")


def test_early_stopping_needs_two_stimuli_and_a_positive_interval():
    from gess.errors import GessInputError

    fmri, targets, coef, intercept, _ = _problem()
    with pytest.raises(GessInputError, match="validation_fraction"):
        SelfSupervisedStructuralDecoder(SelfSupervisedOptions(**TINY)).fit(fmri, np.repeat(targets[:1], 12, 0), coef,
                                                                           intercept)
    with pytest.raises(GessInputError, match="validation_every"):
        SelfSupervisedOptions(validation_every=0)


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
