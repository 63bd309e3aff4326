"""CS, component substitution: replace the low frequencies of z_{t-1} by those of the noised structure.

    z_{t-1} = z_{t-1,c} - w_i * F_s(z_{t-1,c}) + w_i * F_s(z_{t-1,s})

with w_i = pi_s * exp(-tau * i) during the first ``fraction`` of the steps and 0
after. For the gated method, ``min_structure_weight`` keeps pi_s from falling
below a floor (``gated_structure_weight``): the conformal pi_c of the most typical
samples reaches 1, which would switch CS off and leave the pixels to the decoded
semantics alone (measured on digit69's held-out training folds: pixel correlation
0.46 for semantics alone against 0.73 with any pi_s >= 0.3).

``PRESETS`` names the paper's equation (every step, no decay, reference noised
to t-1) and the authors' released behaviour (factor-6 low-pass, first 5% of
steps, tau 0.5, reference noised to the current t).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch

from gess.generation.filters import lowpass

PRESETS = {
    "paper": dict(lowpass_factor=2.0, fraction=1.0, tau=0.0, noise_at="previous"),
    "released": dict(lowpass_factor=6.0, fraction=0.05, tau=0.5, noise_at="current"),
}


@dataclass
class CSOptions:
    lowpass_factor: float = 2.0
    fraction: float = 1.0       # share of the steps (from the noisiest) that substitute
    tau: float = 0.0            # temporal decay of the weight
    noise_at: str = "previous"  # reference noised to t-1 ("previous", the paper) or t ("current", released)
    min_structure_weight: float = 0.0  # floor on the gated pi_s (0: the paper's pi_s = 1 - pi_c)

    @classmethod
    def preset(cls, name: str, **overrides) -> "CSOptions":
        return cls(**{**PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}})

    def to_dict(self) -> dict:
        return asdict(self)


def gated_structure_weight(pi_c, min_structure_weight: float = 0.0) -> np.ndarray:
    """pi_s = max(floor, 1 - pi_c): the gate's structural weight, never below the floor."""
    pi_s = 1.0 - np.asarray(pi_c, np.float32)
    return np.maximum(np.float32(min_structure_weight), pi_s)


class ComponentSubstitution:
    """The CS hook for :func:`gess.generation.sampling.sample`.

    Parameters
    ----------
    reference : (N, C, H, W) structural reference in the generator's space.
    pi_s : (N,) structural weights (1 - pi_c).
    seed : seeds the noise added to the reference (independent of the sampler's noise);
        one seed per sample makes each sample's result independent of its batch.
    """

    def __init__(self, reference: torch.Tensor, pi_s, options: CSOptions | None = None, steps: int = 50,
                 seed: int | Sequence[int] = 0):
        self.reference = reference
        self.pi_s = torch.as_tensor(np.asarray(pi_s, np.float32), device=reference.device).view(-1, *[1] * (reference.ndim - 1))
        self.options = options or CSOptions()
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
        f = self.options.lowpass_factor
        return z_prev - w * lowpass(z_prev, f) + w * lowpass(ref, f)
