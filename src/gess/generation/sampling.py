"""The sampling loop: DDIM with classifier-free guidance, short and explicit.

``SamplingOptions.scheduler`` ``model`` swaps DDIM for the scheduler the generator's saved config names
(:func:`gess.generation.backends.sampling_scheduler`); the default, ``ddim``, is the paper's loop unchanged.

Methods act through two hooks, without forking the loop (diffusers' style):
``guidance`` may replace the noise prediction (gradient guidance), and
``substitution`` may edit z_{t-1} after each update (component substitution).
"""
from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass, field
from typing import Callable, Literal, Sequence

import numpy as np
import torch

from gess.device import resolve_device
from gess.generation.backends import SCHEDULERS, GeneratorBackend, sampling_scheduler
from gess.options import AT_LEAST_1, NON_NEGATIVE, SHARE, Options


CANDIDATE_REDUCTIONS = ("best", "mean")


@dataclass
class SamplingOptions(Options):
    """How every generator method samples."""

    steps: int = field(default=50, metadata={"help": "DDIM steps", "range": AT_LEAST_1})
    guidance_scale: float | None = field(default=None, metadata={
        "help": "classifier-free guidance scale (1: conditional only); null: the generator's own default (1 for gess's "
                "pixel priors, 5 for a generator that names none)", "range": NON_NEGATIVE})
    batch_size: int = field(default=16, metadata={"help": "stimuli per denoising call", "range": AT_LEAST_1})
    min_structure_weight: float = field(default=0.0, metadata={"help": "floor on the gated structural weight pi_s of "
                                                                       "cs and gg (0: the paper's 1 - pi_c)", "range": SHARE})
    candidates: int = field(default=1, metadata={"help": "draw N candidates per stimulus and keep the one whose "
                                                         "predicted brain response best matches the measured one",
                                                 "range": AT_LEAST_1})
    candidate_reduction: Literal[CANDIDATE_REDUCTIONS] = field(default="best", metadata={
        "help": "with several candidates, what is kept: best, the one whose predicted brain response matches the "
                "measured one best; mean, their pixelwise mean (an estimate of the posterior mean, which pixel "
                "metrics favour over any one draw; softer)"})
    tune_candidates: bool = field(default=False, metadata={
        "help": "choose the number of candidates among candidate_grid, and how they are reduced among "
                "candidate_reductions, on held-out folds of the training data: the smallest N within "
                "candidate_tolerance pixel correlation of the best (replaces candidates and candidate_reduction)"})
    candidate_reductions: tuple[Literal[CANDIDATE_REDUCTIONS], ...] = field(default=("best", "mean"), metadata={
        "help": "the reductions tune_candidates tries"})
    candidate_grid: tuple[int, ...] = field(default=(1, 2, 4, 8), metadata={
        "help": "the numbers of candidates tune_candidates tries", "range": AT_LEAST_1})
    candidate_tolerance: float = field(default=0.005, metadata={
        "help": "with tune_candidates: a larger N must raise the held-out pixel correlation by more than this",
        "range": NON_NEGATIVE})
    candidate_tuning_stimuli: int | None = field(default=200, metadata={
        "help": "with tune_candidates: at most this many held-out training stimuli get candidates (one seeded subset "
                "drawn across the folds; null: all of them): the tuning's cost grows with them",
        "range": AT_LEAST_1})
    scheduler: Literal[SCHEDULERS] = field(default="ddim", metadata={
        "help": "ddim: the paper's DDIM on the generator's noise schedule; model: the scheduler class the "
                "generator's saved scheduler config names (e.g. DDPMScheduler)"})


DEFAULT_GUIDANCE_SCALE = 5.0  # for a generator that names no default of its own (Stable unCLIP, a plugin)


def guidance_scale_for(sampling: SamplingOptions, backend) -> float:
    """The guidance scale sampling uses: the one asked for, else the generator's ``default_guidance_scale``."""
    if sampling.guidance_scale is not None:
        return float(sampling.guidance_scale)
    return float(getattr(backend, "default_guidance_scale", DEFAULT_GUIDANCE_SCALE))


def candidate_seed(seed: int, index: int) -> int:
    """The seed of a stimulus's ``index``-th candidate: its own seed first, then seeds derived from (seed, index) alone,
    so a candidate never depends on the batch, the process count or how many candidates are drawn."""
    if index == 0:
        return int(seed)
    digest = hashlib.sha256(f"gess-candidate:{int(seed)}:{int(index)}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def candidate_mean(candidates: np.ndarray) -> np.ndarray:
    """What ``candidate_reduction`` ``mean`` keeps: the pixelwise mean of one stimulus's candidates (N, H, W, C),
    rounded to uint8 (in float64, so the same candidates give the same bytes anywhere)."""
    return np.rint(np.asarray(candidates, np.float64).mean(0)).clip(0, 255).astype(np.uint8)


def initial_noise(seeds: Sequence[int], shape: tuple[int, ...], device=None, dtype=torch.float32) -> torch.Tensor:
    """One seeded Gaussian draw per sample (on the CPU, then moved to ``device``, default the process device),
    so a sample's result does not depend on its batch or device."""
    noise = torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(int(s))) for s in seeds])
    return noise.to(device if device is not None else resolve_device(), dtype)


def guided_noise(backend: GeneratorBackend, z: torch.Tensor, t, cond: torch.Tensor, guidance_scale: float) -> torch.Tensor:
    """Classifier-free guidance with a zero embedding as the unconditional input."""
    tt = torch.full((z.shape[0],), int(t), device=z.device, dtype=torch.long)
    if guidance_scale == 1.0:
        return backend.predict_noise(z, tt, cond)
    both = backend.predict_noise(torch.cat([z, z]), torch.cat([tt, tt]), torch.cat([torch.zeros_like(cond), cond]))
    uncond, conditional = both.chunk(2)
    return uncond + guidance_scale * (conditional - uncond)


def previous_timestep(scheduler, t: int, i: int | None = None) -> int:
    """The timestep the update from ``t`` (the ``i``-th) lands on, negative after the last: DDIM's spacing;
    for another scheduler (``i`` given) the next timestep of its schedule, -1 after the last."""
    if i is not None and not _is_ddim(scheduler):
        timesteps = scheduler.timesteps
        return int(timesteps[i + 1]) if i + 1 < len(timesteps) else -1
    return int(t) - scheduler.config.num_train_timesteps // scheduler.num_inference_steps


def _is_ddim(scheduler) -> bool:
    from diffusers import DDIMScheduler

    return isinstance(scheduler, DDIMScheduler)


def scheduler_noise_seed(seed: int) -> int:
    """The seed of the noise a stochastic scheduler (DDPM) adds to a sample at each step: from the sample's own seed
    alone, apart from its initial noise, so a sample's result does not depend on its batch."""
    digest = hashlib.sha256(f"gess-scheduler-noise:{int(seed)}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def _stepper(scheduler, seeds: Sequence[int], eta: float) -> Callable:
    """``step(eps, t, z) -> z_prev``: DDIM's with ``eta``; another scheduler's with one seeded generator per sample
    when it draws noise."""
    if _is_ddim(scheduler):
        return lambda eps, t, z: scheduler.step(eps, t, z, eta=eta).prev_sample
    kwargs = {}
    if "generator" in inspect.signature(scheduler.step).parameters:
        kwargs["generator"] = [torch.Generator().manual_seed(scheduler_noise_seed(s)) for s in seeds]
    return lambda eps, t, z: scheduler.step(eps, t, z, **kwargs).prev_sample


def sample(backend: GeneratorBackend, cond: torch.Tensor, seeds: Sequence[int], steps: int = 50, guidance_scale: float = 5.0,
           eta: float = 0.0, substitution: Callable | None = None, guidance=None, scheduler: str = "ddim") -> torch.Tensor:
    """Run DDIM (or the ``scheduler`` chosen, :data:`~gess.generation.backends.SCHEDULERS`) from seeded noise;
    returns the final z in the backend's space.

    Parameters
    ----------
    cond : (N, d) or (N, T, d) conditioning tokens in the backend's normalised space.
    substitution : ``f(i, t, t_prev, z_prev, scheduler) -> z_prev`` applied after each update.
    guidance : object with ``noise(i, t, z, noise_fn, scheduler) -> eps`` replacing the noise prediction.
    scheduler : ``ddim`` (the paper's: ``backend.scheduler``) or ``model`` (the generator's saved scheduler class).
    """
    scheduler = sampling_scheduler(backend, scheduler)
    scheduler.set_timesteps(steps)
    device = cond.device
    z = initial_noise(seeds, backend.latent_shape(), device=device, dtype=cond.dtype)
    step = _stepper(scheduler, seeds, eta)
    for i, t in enumerate(scheduler.timesteps):
        if guidance is not None:
            eps = guidance.noise(i, t, z, lambda x: guided_noise(backend, x, t, cond, guidance_scale), scheduler)
        else:
            with torch.no_grad():
                eps = guided_noise(backend, z, t, cond, guidance_scale)
        with torch.no_grad():
            z_prev = step(eps, t, z)
            if substitution is not None:
                z_prev = substitution(i, int(t), previous_timestep(scheduler, t, i), z_prev, scheduler)
        z = z_prev
    return z
