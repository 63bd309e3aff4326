"""CS, component substitution: replace the low frequencies of z_{t-1} by those of the noised structure.

    z_{t-1} = z_{t-1,c} - w_i * F_s(z_{t-1,c}) + w_i * F_s(z_{t-1,s})

with w_i = pi_s * exp(-tau * i) during the first ``fraction`` of the steps and 0
after; pi_s comes from :func:`gess.generation.methods.structure_weight`.

``reference_gain`` stretches the reference about its own spatial mean before it is
noised (1, the default, keeps it as decoded): a ridge decode is shrunk toward the
mean image, so the low frequencies it hands CS are fainter than a real image's.

``PRESETS`` names the paper's equation (every step, no decay, reference noised
to t-1, torch's bicubic low-pass) and the authors' released behaviour (factor-6
low-pass with ILVR's ``Resizer``, first 5% of steps, tau 0.5, reference noised to
the current t). A field left unset takes the preset's value; the default preset,
``paper``, keeps the ``bicubic`` kernel every measured figure in the docs used.

CS settings do not transfer across resolutions and spaces (docs/generation.md):
``tune=True`` chooses the low-pass factor, the share of steps, the reference gain
and the floor on pi_s on held-out folds of the training data (:mod:`gess.generation.tuning`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal, Sequence

import numpy as np
import torch

from gess.errors import GessInputError
from gess.generation.filters import LOWPASS_KERNELS, lowpass
from gess.options import AT_LEAST_1, FOLDS, NON_NEGATIVE, SHARE, Options, described

PRESETS = {
    "paper": dict(lowpass_factor=2.0, lowpass_kernel="bicubic", fraction=1.0, tau=0.0, noise_at="previous",
                  reference_gain=1.0),
    "released": dict(lowpass_factor=6.0, lowpass_kernel="resizer", fraction=0.05, tau=0.5, noise_at="current",
                     reference_gain=1.0),
}


TUNED_SETTINGS = ("lowpass_factor", "fraction", "reference_gain")  # what tune chooses (with the floor on pi_s)
SUBSTITUTION_FIELDS = ("lowpass_factor", "lowpass_kernel", "fraction", "tau", "noise_at", "reference_gain")


@dataclass
class CSOptions(Options):
    """Component substitution; unset (None) fields take the preset's value."""

    preset: Literal[tuple(PRESETS)] | None = field(default=None, metadata=described(
        "paper | released: defaults of the fields below (unset: paper)"))
    lowpass_factor: float | None = field(default=None, metadata=described("F_s: resize down by this factor and back",
                                                                          NON_NEGATIVE))
    lowpass_kernel: Literal[LOWPASS_KERNELS] | None = field(
        default=None, metadata=described("F_s's resize: bicubic (torch's; the paper preset, the default) or resizer "
                                         "(ILVR's Resizer, as released; the released preset)"))
    fraction: float | None = field(default=None, metadata=described("share of the steps (from the noisiest) that substitute", SHARE))
    tau: float | None = field(default=None, metadata=described("temporal decay of the CS weight", NON_NEGATIVE))
    noise_at: Literal["previous", "current"] | None = field(
        default=None, metadata=described("reference noised to t-1 (previous, the paper) or t (current, released)"))
    reference_gain: float | None = field(default=None, metadata=described(
        "stretch the structural reference about its own mean by this factor (unset: the preset's, 1 = as decoded)",
        NON_NEGATIVE))
    tune: bool | None = field(default=None, metadata=described(
        "choose lowpass_factor, fraction, reference_gain and the pi_s floor on held-out folds of the training data "
        "(unset: yes, unless the preset or one of those three is given)"))
    tune_stimuli: int | None = field(default=200, metadata=described(
        "with tune: at most this many held-out training stimuli are reconstructed per setting (one seeded subset "
        "drawn across the folds; null: all of them): the tuning's cost grows with them", AT_LEAST_1))
    tune_lowpass_factors: tuple[float, ...] = field(default=(1.5, 2.0), metadata=described("tuning grid of lowpass_factor",
                                                                                           NON_NEGATIVE))
    tune_fractions: tuple[float, ...] = field(default=(0.7, 0.9, 1.0), metadata=described("tuning grid of fraction", SHARE))
    tune_reference_gains: tuple[float, ...] = field(default=(1.0, 1.5, 2.0), metadata=described("tuning grid of reference_gain",
                                                                                      NON_NEGATIVE))
    tune_min_structure_weights: tuple[float, ...] = field(default=(0.0, 0.1, 0.2, 0.3),
                                                          metadata=described("tuning grid of the floor on pi_s (cs)", SHARE))
    tune_folds: int = field(default=5, metadata=described("held-out folds of the training stimuli for tuning", FOLDS))

    def __post_init__(self) -> None:
        if self.tune is None:  # settings given by hand (or a preset) are used as given; none: the folds choose them
            self.tune = all(getattr(self, name) is None for name in ("preset", *TUNED_SETTINGS))
        if self.preset is None:
            self.preset = "paper"
        if self.preset not in PRESETS:
            raise GessInputError(None, "preset", f"one of {', '.join(PRESETS)}", repr(self.preset))
        for name, value in PRESETS[self.preset].items():
            if getattr(self, name) is None:
                setattr(self, name, value)

    def substitution(self) -> dict:
        """The settings that act on sampling (what a reconstruction's manifest records)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in SUBSTITUTION_FIELDS}


class ComponentSubstitution:
    """The CS hook for :func:`gess.generation.sampling.sample`.

    Parameters
    ----------
    reference : (N, C, H, W) structural reference in the generator's space.
    pi_s : (N,) structural weights (:func:`gess.generation.methods.structure_weight`).
    seed : seeds the noise added to the reference (independent of the sampler's noise);
        one seed per sample makes each sample's result independent of its batch.
    """

    def __init__(self, reference: torch.Tensor, pi_s, options: CSOptions | None = None, steps: int = 50,
                 seed: int | Sequence[int] = 0):
        self.options = options or CSOptions()
        self.reference = stretched(reference, self.options.reference_gain)
        self.pi_s = torch.as_tensor(np.asarray(pi_s, np.float32), device=reference.device).view(-1, *[1] * (reference.ndim - 1))
        self.steps = steps
        seeds = [seed + i for i in range(len(reference))] if isinstance(seed, int) else list(seed)
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        n = int(self.options.fraction * steps)
        self.active_steps = n if n > 0 else steps  # released: 0 active steps means every step

    def weight(self, i: int) -> torch.Tensor | None:
        if i >= self.active_steps:
            return None
        return self.pi_s * float(np.exp(-self.options.tau * i))

    def noised_reference(self, t: int, scheduler) -> torch.Tensor:
        if t < 0:
            return self.reference
        shape = self.reference.shape[1:]
        noise = torch.stack([torch.randn(shape, generator=g) for g in self.generators]).to(self.reference)
        return scheduler.add_noise(self.reference, noise, torch.full((len(self.reference),), t, dtype=torch.long))

    def __call__(self, i: int, t: int, t_prev: int, z_prev: torch.Tensor, scheduler) -> torch.Tensor:
        w = self.weight(i)
        if w is None or not bool((w != 0).any()):
            return z_prev
        ref = self.noised_reference(t_prev if self.options.noise_at == "previous" else t, scheduler)
        f, kernel = self.options.lowpass_factor, self.options.lowpass_kernel
        return z_prev - w * lowpass(z_prev, f, kernel) + w * lowpass(ref, f, kernel)


def stretched(reference: torch.Tensor, gain: float) -> torch.Tensor:
    """Each sample's channels stretched about their own spatial mean by ``gain``."""
    if gain == 1.0:
        return reference
    mean = reference.mean(dim=tuple(range(2, reference.ndim)), keepdim=True)
    return mean + gain * (reference - mean)
