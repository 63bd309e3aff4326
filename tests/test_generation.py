"""CS / GG properties on tiny random models of the real classes (diffusers' testing style)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gess.generation import (ComponentSubstitution, CSOptions, GGOptions, GradientGuidance, SamplingOptions, lowpass,
                             generate_images, sample, structure_weight)
from gess.generation.backends import default_scheduler
from gess.generation.backends.pixel import PixelBackend
from gess.generation.backends.pixel import PixelPrior
from gess.generation.sampling import previous_timestep


@pytest.fixture(scope="module")
def backend():
    torch.manual_seed(0)
    prior = PixelPrior(image_size=16, channels=1, cond_dim=8, block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4)
    return PixelBackend(prior)


def cond_for(backend, n=3, seed=0):
    rng = np.random.default_rng(seed)
    return backend.condition(rng.normal(size=(n, 8)), rng.normal(size=(n, 8)))


def test_lowpass_keeps_low_and_removes_high_frequencies():
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    smooth = torch.cos(2 * np.pi * xx / 32)[None, None]
    checker = ((-1.0) ** (xx + yy))[None, None]
    assert torch.allclose(lowpass(smooth, 2), smooth, atol=0.05)
    assert lowpass(checker, 2).abs().max() < 0.05
    assert torch.equal(lowpass(checker, 1), checker)


def test_sampling_is_seeded_per_sample(backend):
    cond = cond_for(backend)
    a = sample(backend, cond, [1, 2, 3], steps=5)
    b = sample(backend, cond[[1]], [2], steps=5)
    assert torch.allclose(a[1], b[0], atol=1e-4)  # float reduction order differs by batch size (1.8e-5 on 1 thread)
    assert not torch.allclose(a[0], a[1])


def test_cs_with_zero_weight_is_plain_sampling_bit_for_bit(backend):
    cond = cond_for(backend)
    plain = sample(backend, cond, [7, 8, 9], steps=8)
    ref = torch.randn(3, 1, 16, 16)
    cs = ComponentSubstitution(ref, np.zeros(3), CSOptions(), steps=8)
    assert torch.equal(sample(backend, cond, [7, 8, 9], steps=8, substitution=cs), plain)


def test_cs_with_full_weight_at_every_step_is_ilvr(backend):
    """pi_s = 1, every step, reference noised to t-1: z_{t-1} = z' - F(z') + F(q(y, t-1)) (ILVR, Choi et al. 2021)."""
    steps, factor = 6, 2.0
    cond = cond_for(backend, n=2)
    ref = torch.randn(2, 1, 16, 16).clamp(-1, 1)
    cs = ComponentSubstitution(ref, np.ones(2), CSOptions(lowpass_factor=factor, fraction=1.0, tau=0.0, noise_at="previous"), steps, seed=[5, 6])
    ours = sample(backend, cond, [0, 1], steps=steps, substitution=cs)

    # an independent ILVR loop
    from gess.generation.sampling import guided_noise, initial_noise

    sched = default_scheduler()
    sched.set_timesteps(steps)
    gens = [torch.Generator().manual_seed(5), torch.Generator().manual_seed(6)]
    z = initial_noise([0, 1], (1, 16, 16))
    for t in sched.timesteps:
        with torch.no_grad():
            z = sched.step(guided_noise(backend, z, t, cond, 5.0), t, z).prev_sample
        t_prev = previous_timestep(sched, t)
        y = ref if t_prev < 0 else sched.add_noise(ref, torch.stack([torch.randn(ref.shape[1:], generator=g) for g in gens]), torch.full((2,), t_prev))
        z = z - lowpass(z, factor) + lowpass(y, factor)
    assert torch.allclose(ours, z, atol=1e-6)
    # and the result carries the reference's low frequencies (F is not idempotent, so approximately)
    assert (lowpass(ours, factor) - lowpass(ref, factor)).abs().mean() < 0.05


def test_released_cs_schedule():
    ref = torch.zeros(2, 1, 8, 8)
    cs = ComponentSubstitution(ref, [0.8, 0.4], CSOptions(preset="released"), steps=50)
    assert cs.active_steps == 2
    assert torch.allclose(cs.weight(1).flatten(), torch.tensor([0.8, 0.4]) * np.exp(-0.5))
    assert cs.weight(2) is None
    few = ComponentSubstitution(ref, [1.0, 1.0], CSOptions(preset="released"), steps=10)
    assert few.active_steps == 10  # int(0.05 * 10) = 0: applied at every step, as released


def test_gradient_guidance_pulls_toward_the_structure(backend):
    cond = cond_for(backend, n=2)
    ref = torch.full((2, 1, 16, 16), 0.8)
    plain = sample(backend, cond, [3, 4], steps=10)
    gg = GradientGuidance(np.ones(2), np.zeros(2), torch.zeros(2, 8), ref, encoder=None, to_images=backend.to_images,
                          options=GGOptions(scale=0.2, fraction=1.0), steps=10)
    guided = sample(backend, cond, [3, 4], steps=10, guidance=gg)
    err = lambda z: (lowpass(z, 2) - lowpass(ref, 2)).pow(2).mean()
    assert err(guided) < err(plain)


def test_gradient_guidance_semantic_term_uses_the_encoder(backend, tmp_path):
    from test_encoders import tiny_clip

    from gess.encoders import get_encoder

    enc = get_encoder(str(tiny_clip(tmp_path)))
    ref = torch.zeros(2, 1, 16, 16)
    gg = GradientGuidance(np.zeros(2), np.ones(2), torch.randn(2, enc.dim), ref, enc, backend.to_images, GGOptions(encoder_size=32), 4)
    z = torch.randn(2, 1, 16, 16, requires_grad=True)
    loss = gg.loss(z)
    loss.backward()
    assert loss.item() > 0 and z.grad.abs().sum() > 0


@pytest.mark.parametrize("method", ["semantic", "cs-equal", "cs"])
def test_reconstruct_shapes_and_batch_independence(backend, method):
    rng = np.random.default_rng(0)
    c = rng.normal(size=(3, 8)).astype(np.float32)
    s = rng.random((3, 12, 12, 1)).astype(np.float32)
    pi = np.array([0.2, 0.5, 0.9], np.float32)
    a = generate_images(backend, c, c, s, pi, method, SamplingOptions(steps=4, batch_size=3))
    b = generate_images(backend, c, c, s, pi, method, SamplingOptions(steps=4, batch_size=1))
    assert a.shape == (3, 16, 16, 3) and a.dtype == np.uint8
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_structure_floor_of_gated_cs(backend):
    pi_c = np.array([0.0, 0.6, 0.95, 1.0], np.float32)
    for method in ("cs", "gg"):
        assert np.allclose(structure_weight(method, pi_c), 1 - pi_c)
        assert np.allclose(structure_weight(method, pi_c, 0.2), [1.0, 0.4, 0.2, 0.2])
    assert np.allclose(structure_weight("cs-equal", pi_c, 0.7), 0.5) and np.allclose(structure_weight("semantic", pi_c, 0.7), 0)
    rng = np.random.default_rng(0)
    c = rng.normal(size=(2, 8)).astype(np.float32)
    s = rng.random((2, 16, 16, 1)).astype(np.float32)
    certain = np.ones(2, np.float32)
    run = lambda method, floor: generate_images(backend, c, c, s, certain, method,
                                            SamplingOptions(steps=4, min_structure_weight=floor))
    # pi_c = 1: the paper's gated CS is semantic sampling; a floor of 0.5 makes it cs-equal, bit for bit.
    assert np.array_equal(run("cs", 0.0), run("semantic", 0.0))
    assert np.array_equal(run("cs", 0.5), run("cs-equal", 0.0))
    assert np.array_equal(run("cs-equal", 0.3), run("cs-equal", 0.0))  # the floor is the gated method's only


def test_prior_save_load_roundtrip(backend, tmp_path):
    backend.prior.save_pretrained_files(tmp_path / "p")
    loaded = PixelBackend.from_pretrained(tmp_path / "p")
    cond = cond_for(backend)
    assert torch.allclose(sample(loaded, cond, [1, 2, 3], steps=3), sample(backend, cond, [1, 2, 3], steps=3), atol=1e-6)


def test_prior_training_resumes(tmp_path):
    from gess.generation.train import TrainOptions, train_pixel_prior

    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 255, (6, 12, 12, 1), dtype=np.uint8)
    emb = rng.normal(size=(6, 5)).astype(np.float32)
    opts = TrainOptions(steps=6, batch_size=4, image_size=16, block_out_channels=(8, 16), checkpoint_every=3)
    # interrupted run: stop after the first checkpoint
    part = TrainOptions(**{**opts.__dict__, "steps": 3, "checkpoint_every": 2})
    from gess.encoders import EncoderSpec

    spec = EncoderSpec("enc", "enc", 5)
    train_pixel_prior(imgs, emb, tmp_path / "a", spec, part, progress=False)
    full = train_pixel_prior(imgs, emb, tmp_path / "b", spec, opts, progress=False)
    assert (full / "model.safetensors").is_file() and not (full / "checkpoint").exists()
    assert PixelBackend.from_pretrained(full).encoder_spec == spec


def test_tune_cs_tries_the_grid_then_the_floors_and_returns_the_best(backend):
    from gess.generation.tuning import tune_cs

    rng = np.random.default_rng(1)
    folds = [{"c_prime": rng.normal(size=(2, 8)).astype(np.float32), "c": rng.normal(size=(2, 8)).astype(np.float32),
              "s": rng.random((2, 16, 16, 1)).astype(np.float32), "pi_c": np.array([0.3, 1.0], np.float32),
              "target": rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)} for _ in range(2)]
    best, floor, grid = tune_cs(backend, folds, lowpass_factors=(2.0,), fractions=(0.5, 1.0),
                                sampling=SamplingOptions(steps=4, guidance_scale=1.0), min_structure_weights=(0.0, 0.5, 0.8),
                                reference_gains=(1.0, 1.5))
    first, floors = grid[:4], grid[4:]
    assert {(r["fraction"], r["reference_gain"]) for r in first} == {(0.5, 1.0), (0.5, 1.5), (1.0, 1.0), (1.0, 1.5)}
    assert all(r["min_structure_weight"] == 0.0 for r in first)
    top = max(first, key=lambda r: r["pixcorr"])
    assert [r["min_structure_weight"] for r in floors] == [0.5, 0.8]
    assert all((r["fraction"], r["reference_gain"]) == (top["fraction"], top["reference_gain"]) for r in floors)
    winner = max(grid, key=lambda r: r["pixcorr"])
    assert (best.fraction, best.reference_gain, floor) == (winner["fraction"], winner["reference_gain"],
                                                          winner["min_structure_weight"])


def test_tune_cs_takes_its_grids_from_the_options_and_floors_for_cs_only(backend):
    from gess.generation.tuning import tune_cs

    rng = np.random.default_rng(2)
    folds = [{"c_prime": rng.normal(size=(2, 8)).astype(np.float32), "c": rng.normal(size=(2, 8)).astype(np.float32),
              "s": rng.random((2, 16, 16, 1)).astype(np.float32), "pi_c": np.array([0.3, 1.0], np.float32),
              "target": rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)}]
    base = CSOptions(tune_lowpass_factors=(2.0,), tune_fractions=(1.0,), tune_reference_gains=(1.0, 2.0),
                     tune_min_structure_weights=(0.0, 0.3))
    sampling = SamplingOptions(steps=3, guidance_scale=1.0)
    _, _, equal = tune_cs(backend, folds, sampling=sampling, method="cs-equal", base=base)
    _, _, gated = tune_cs(backend, folds, sampling=sampling, method="cs", base=base)
    assert [(r["reference_gain"], r["min_structure_weight"]) for r in equal] == [(1.0, 0.0), (2.0, 0.0)]
    assert [r["min_structure_weight"] for r in gated] == [0.0, 0.0, 0.3]


def test_reference_gain_stretches_each_reference_about_its_own_mean():
    from gess.generation.cs import ComponentSubstitution

    ref = torch.randn(3, 2, 8, 8)
    cs = ComponentSubstitution(ref, np.ones(3), CSOptions(reference_gain=2.0), steps=4)
    mean = ref.mean(dim=(2, 3), keepdim=True)
    assert torch.allclose(cs.reference, 2 * ref - mean, atol=1e-6)
    assert torch.allclose(cs.reference.mean(dim=(2, 3)), mean[..., 0, 0], atol=1e-6)
    assert ComponentSubstitution(ref, np.ones(3), CSOptions(), steps=4).reference is ref


def test_gradient_guidance_speaks_v_prediction(backend):
    """With no move, GG hands back exactly what a v-predicting model said (its z0 arithmetic is in eps form)."""
    from diffusers import DDIMScheduler

    sched = DDIMScheduler(num_train_timesteps=1000, prediction_type="v_prediction")
    sched.set_timesteps(10)
    ref = torch.zeros(2, 1, 16, 16)
    gg = GradientGuidance(np.zeros(2), np.zeros(2), torch.zeros(2, 8), ref, encoder=None, to_images=backend.to_images,
                          options=GGOptions(scale=0.0, fraction=1.0), steps=10)
    z = torch.randn(2, 1, 16, 16)
    v = torch.randn(2, 1, 16, 16)
    out = gg.noise(0, sched.timesteps[3], z, lambda x: v, sched)
    assert torch.allclose(out, v, atol=1e-4)


def test_min_snr_weighting_is_plain_mse_at_zero_and_caps_the_clean_steps():
    from gess.generation.train import _weighted_loss as _weighted_noise_loss

    gen = torch.Generator().manual_seed(0)
    predicted, noise = torch.randn(4, 1, 4, 4, generator=gen), torch.randn(4, 1, 4, 4, generator=gen)
    alpha_bar = torch.tensor([0.01, 0.5, 0.9, 0.999])
    assert torch.equal(_weighted_noise_loss(predicted, noise, alpha_bar, 0.0), torch.nn.functional.mse_loss(predicted, noise))
    per_sample = (predicted - noise).pow(2).flatten(1).mean(1)
    # SNR = alpha_bar / (1 - alpha_bar): 0.0101, 1, 9, 999; weights min(SNR, 5) / SNR
    expected = per_sample * torch.tensor([1.0, 1.0, 5 / 9, 5 / 999])
    assert torch.allclose(_weighted_noise_loss(predicted, noise, alpha_bar, 5.0), expected.mean())


def test_a_v_prediction_prior_learns_v_and_samples_with_its_saved_prediction_type(tmp_path, monkeypatch):
    import gess.generation.train as train
    from gess.encoders import EncoderSpec

    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 255, (6, 8, 8, 1), dtype=np.uint8)
    emb = rng.normal(size=(6, 5)).astype(np.float32)
    seen = []
    real_loss, real_forward = train._weighted_loss, PixelPrior.forward
    monkeypatch.setattr(PixelPrior, "forward", lambda self, x, t, c: seen.append((x, t)) or real_forward(self, x, t, c))
    monkeypatch.setattr(train, "_weighted_loss", lambda p, target, *a: seen.append(target) or real_loss(p, target, *a))
    opts = train.TrainOptions(steps=2, batch_size=3, image_size=8, block_out_channels=(8, 16), augment=False,
                              prediction_type="v_prediction")
    out = train.train_pixel_prior(imgs, emb, tmp_path / "v", EncoderSpec("enc", "enc", 5), opts, progress=False)
    abar = train.training_scheduler("v_prediction").alphas_cumprod.float()
    data = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1
    for (xt, t), v in zip(seen[0::2], seen[1::2]):
        a = abar[t].view(-1, 1, 1, 1)
        x0 = a.sqrt() * xt - (1 - a).sqrt() * v        # what v = sqrt(abar) eps - sqrt(1 - abar) x0 implies
        assert all(torch.isclose(x, data, atol=1e-4).flatten(1).all(1).any() for x in x0)   # a training image
    backend = PixelBackend.from_pretrained(out)
    assert backend.scheduler.config.prediction_type == "v_prediction"
    z = sample(backend, backend.condition(emb[:2]), [1, 2], steps=3, guidance_scale=2.0)
    assert z.shape == (2, 1, 8, 8) and torch.isfinite(z).all()


def test_an_unknown_prediction_type_is_refused_from_python_too():
    from gess.errors import GessInputError
    from gess.generation.train import TrainOptions

    with pytest.raises(GessInputError, match="prediction_type.*epsilon, v_prediction"):
        TrainOptions(prediction_type="v")


@pytest.mark.parametrize("build", [lambda: SamplingOptions(scheduler="euler"), lambda: CSOptions(lowpass_kernel="nearest"),
                                   lambda: CSOptions(noise_at="later")])
def test_a_choice_outside_its_literal_is_refused_from_python(build):
    from gess.errors import GessInputError

    with pytest.raises(GessInputError, match="expected one of"):
        build()


def test_cs_tunes_by_default_and_uses_settings_given_by_hand():
    from gess.generation.cs import CSOptions

    default = CSOptions()
    assert default.tune and default.preset == "paper" and default.reference_gain == 1.0
    for given in ({"lowpass_factor": 3.0}, {"fraction": 0.5}, {"reference_gain": 2.0}, {"preset": "released"}):
        assert not CSOptions(**given).tune, given
    assert CSOptions(lowpass_factor=3.0, tune=True).tune and not CSOptions(tune=False).tune
    given = CSOptions(lowpass_factor=3.0).to_dict()
    assert CSOptions(**given).to_dict() == given  # a manifest's settings read back as they were
