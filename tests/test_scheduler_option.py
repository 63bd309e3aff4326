"""SamplingOptions.scheduler: ``ddim`` (the paper's, the default) is the loop as it was, bit for bit; ``model``
steps with the scheduler class the generator's saved config names; bad values are refused in one line."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gess.errors import GessInputError
from gess.generation import ComponentSubstitution, CSOptions, GGOptions, GradientGuidance, SamplingOptions, sample
from gess.generation.backends import SCHEDULERS, default_scheduler, load_backend, sampling_scheduler
from gess.generation.backends.pixel import PixelBackend, PixelPrior
from gess.generation.sampling import guided_noise, initial_noise, previous_timestep

from test_cli_errors import assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def prior():
    torch.manual_seed(0)
    return PixelPrior(image_size=8, channels=1, cond_dim=8, block_out_channels=(8, 16), layers_per_block=1,
                      norm_num_groups=4)


@pytest.fixture(scope="module")
def backend(prior):
    return PixelBackend(prior)


def cond_for(backend, n=3, seed=0):
    rng = np.random.default_rng(seed)
    return backend.condition(rng.normal(size=(n, 8)), rng.normal(size=(n, 8)))


def saved_prior(prior, directory, class_name: str | None):
    """The tiny prior saved as `gess prior train` saves one, its scheduler config naming ``class_name``."""
    prior.save_pretrained_files(directory)
    config = {k: v for k, v in dict(default_scheduler().config).items() if not k.startswith("_")}
    if class_name is not None:
        config["_class_name"] = class_name
    (directory / "scheduler_config.json").write_text(json.dumps(config))
    return directory


def old_loop(backend, cond, seeds, steps, substitution=None):
    """The DDIM loop as it was before the option (a copy, to hold the default to it)."""
    scheduler = backend.scheduler
    scheduler.set_timesteps(steps)
    z = initial_noise(seeds, backend.latent_shape(), device=cond.device, dtype=cond.dtype)
    for i, t in enumerate(scheduler.timesteps):
        with torch.no_grad():
            eps = guided_noise(backend, z, t, cond, 5.0)
            z_prev = scheduler.step(eps, t, z, eta=0.0).prev_sample
            if substitution is not None:
                t_prev = int(t) - scheduler.config.num_train_timesteps // scheduler.num_inference_steps
                z_prev = substitution(i, int(t), t_prev, z_prev, scheduler)
        z = z_prev
    return z


def cs_hook(n, steps, seed=5):
    ref = torch.linspace(-1, 1, 64).view(1, 1, 8, 8).expand(n, 1, 8, 8).contiguous()
    return ComponentSubstitution(ref, np.full(n, 0.7), CSOptions(fraction=1.0, noise_at="previous"), steps,
                                 seed=[seed + i for i in range(n)])


def test_the_default_is_ddim_and_the_loop_as_it_was(backend):
    assert SamplingOptions().scheduler == "ddim" and SCHEDULERS == ("ddim", "model")
    assert SamplingOptions().to_dict()["scheduler"] == "ddim"  # recorded in every manifest's settings
    cond = cond_for(backend)
    assert torch.equal(sample(backend, cond, [1, 2, 3], steps=3), old_loop(backend, cond, [1, 2, 3], 3))
    assert torch.equal(sample(backend, cond, [1, 2, 3], steps=3, scheduler="ddim", substitution=cs_hook(3, 3)),
                       old_loop(backend, cond, [1, 2, 3], 3, substitution=cs_hook(3, 3)))
    assert sampling_scheduler(backend, "ddim") is backend.scheduler


def test_model_without_a_saved_class_is_the_backends_own_ddim(backend, prior, tmp_path):
    cond = cond_for(backend)
    plain = sample(backend, cond, [1, 2, 3], steps=3)
    assert torch.equal(sample(backend, cond, [1, 2, 3], steps=3, scheduler="model"), plain)  # made in Python
    loaded = load_backend(saved_prior(prior, tmp_path / "p", None))  # as `gess prior train` writes it: no _class_name
    assert type(sampling_scheduler(loaded, "model")).__name__ == "DDIMScheduler"
    assert torch.equal(sample(loaded, cond, [1, 2, 3], steps=3, scheduler="model"), plain)


def test_model_steps_with_a_saved_ddpm_scheduler(backend, prior, tmp_path):
    loaded = load_backend(saved_prior(prior, tmp_path / "p", "DDPMScheduler"))
    assert type(sampling_scheduler(loaded, "model")).__name__ == "DDPMScheduler"
    assert type(loaded.scheduler).__name__ == "DDIMScheduler"  # the default still samples with DDIM
    cond = cond_for(loaded)
    z = sample(loaded, cond, [1, 2, 3], steps=3, scheduler="model")
    assert torch.isfinite(z).all() and not torch.allclose(z, sample(loaded, cond, [1, 2, 3], steps=3))
    assert torch.equal(z, sample(loaded, cond, [1, 2, 3], steps=3, scheduler="model"))  # DDPM's noise is seeded
    one = sample(loaded, cond[[1]], [2], steps=3, scheduler="model")
    assert torch.allclose(z[1], one[0], atol=1e-4)  # per sample, whatever the batch
    # the methods' hooks run on it: CS noises its reference with DDPM's alpha-bar, GG reads x0 through it
    cs = sample(loaded, cond, [1, 2, 3], steps=3, scheduler="model", substitution=cs_hook(3, 3))
    assert torch.isfinite(cs).all() and not torch.equal(cs, z)
    gg = GradientGuidance(np.ones(3), np.zeros(3), torch.zeros(3, 8), torch.full((3, 1, 8, 8), 0.8), encoder=None,
                          to_images=loaded.to_images, options=GGOptions(scale=0.2, fraction=1.0), steps=3)
    assert torch.isfinite(sample(loaded, cond, [1, 2, 3], steps=3, scheduler="model", guidance=gg)).all()


def test_previous_timestep_of_another_scheduler_is_its_next_timestep(prior, tmp_path):
    scheduler = sampling_scheduler(load_backend(saved_prior(prior, tmp_path / "p", "DDPMScheduler")), "model")
    scheduler.set_timesteps(4)
    ts = [int(t) for t in scheduler.timesteps]
    assert [previous_timestep(scheduler, t, i) for i, t in enumerate(ts)] == ts[1:] + [-1]
    ddim = default_scheduler()
    ddim.set_timesteps(4)
    assert [previous_timestep(ddim, t, i) for i, t in enumerate(ddim.timesteps)] == \
        [previous_timestep(ddim, t) for t in ddim.timesteps]


@pytest.mark.parametrize("class_name,needle", [("EulerDiscreteScheduler", "sigma-space"),
                                               ("NoSuchScheduler", "a diffusers scheduler class")])
def test_model_refuses_a_scheduler_the_loop_cannot_use(prior, tmp_path, class_name, needle):
    loaded = load_backend(saved_prior(prior, tmp_path / "p", class_name))
    with pytest.raises(GessInputError, match=needle) as exc:
        sample(loaded, cond_for(loaded), [1], steps=2, scheduler="model")
    assert "scheduler_config.json" in str(exc.value) and "\n" not in str(exc.value)


def test_bad_scheduler_values_are_refused():
    from gess.runconfig import load_run_config

    with pytest.raises(GessInputError, match="scheduler.*ddim, model"):
        SamplingOptions(scheduler="euler")
    with pytest.raises(GessInputError, match="sampling.scheduler"):
        load_run_config({"dataset": {"path": "x.mat"}, "sampling": {"scheduler": "euler"}})
    assert load_run_config({"dataset": {"path": "x.mat"}, "sampling": {"scheduler": "model"}}).sampling.scheduler == "model"


@pytest.mark.parametrize("value", ["euler", "DDIM", "1"])
def test_a_bad_scheduler_flag_exits_2_in_one_line(tmp_path, capsys, value):
    code, err = run_cli(["reconstruct", "--model", tmp_path / "m", "--data", tmp_path / "x.mat", "--generator",
                         tmp_path / "p", "--scheduler", value, "--out", tmp_path / "r"], capsys)
    assert_one_line_error(code, err, "scheduler", "ddim, model")
    assert not (tmp_path / "r").exists()
