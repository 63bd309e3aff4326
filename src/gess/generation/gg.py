"""GG, gradient guidance: steer each step by the gradient of a gated semantic + structural loss.

At step t, estimate z0 = (z_t - sqrt(1 - abar) eps) / sqrt(abar), take one
gradient step on

    L(z0) = pi_c * (1 - cos(E(D(z0)), c)) + pi_s * mean (F(z0) - F(s))^2

    z0' = z0 - scale * numel(z0) * dL/dz0          (a per-element step, the same at every t)

and continue the DDIM update with the noise prediction that z0' implies,
eps' = (z_t - sqrt(abar) z0') / sqrt(1 - abar). Writing the guidance as a step in
z0 rather than as classifier guidance in epsilon form (eps + s sqrt(1 - abar)
dL/dz_t) keeps the step bounded at high noise, where the latter grows like
(1 - abar) / abar and overshoots. By default dL/dz0 holds eps fixed, which avoids a
backward pass through the denoiser; ``backprop_denoiser=True`` takes it through.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch

from gess.encoders.base import resize_tensor
from gess.generation.filters import lowpass


@dataclass
class GGOptions:
    scale: float = 0.2
    structure_weight: float = 1.0
    semantic_weight: float = 1.0
    lowpass_factor: float = 2.0
    encoder_size: int | None = 128   # the encoder sees x0 at this side during guidance (None: its own)
    backprop_denoiser: bool = False
    fraction: float = 1.0            # guide only the first share of the steps

    def to_dict(self) -> dict:
        return asdict(self)


class GradientGuidance:
    """The GG hook for :func:`gess.generation.sampling.sample`.

    Parameters
    ----------
    pi_c : (N,) semantic confidences (pi_s = 1 - pi_c).
    target_embedding : (N, d) decoded embedding c in the encoder's raw space.
    reference : (N, C, H, W) structural reference in the generator's space.
    encoder : an :class:`~gess.encoders.base.ImageEncoder` (differentiable ``encode_tensor``).
    to_images : generator space -> images in [0, 1], differentiable.
    """

    def __init__(self, pi_c, target_embedding: torch.Tensor, reference: torch.Tensor, encoder, to_images: Callable,
                 options: GGOptions | None = None, steps: int = 50):
        shape = (-1,) + (1,) * (reference.ndim - 1)
        self.pi_c = torch.as_tensor(np.asarray(pi_c, np.float32), device=reference.device)
        self.target = torch.nn.functional.normalize(target_embedding.float(), dim=-1)
        self.reference = reference
        self.encoder = encoder
        self.to_images = to_images
        self.options = options or GGOptions()
        self.active_steps = max(1, int(self.options.fraction * steps))
        self._shape = shape
        self._ref_low = lowpass(reference, self.options.lowpass_factor)

    def loss(self, z0: torch.Tensor) -> torch.Tensor:
        o = self.options
        per_sample = torch.zeros(len(z0), device=z0.device)
        if o.semantic_weight:
            images = self.to_images(z0).clamp(0, 1)
            if o.encoder_size:
                images = resize_tensor(images, o.encoder_size)
            emb = torch.nn.functional.normalize(self.encoder.encode_tensor(images).float(), dim=-1)
            per_sample = per_sample + o.semantic_weight * self.pi_c * (1 - (emb * self.target).sum(-1))
        if o.structure_weight:
            diff = (lowpass(z0, o.lowpass_factor) - self._ref_low) ** 2
            per_sample = per_sample + o.structure_weight * (1 - self.pi_c) * diff.flatten(1).mean(1)
        return per_sample.sum()

    def noise(self, i: int, t, z: torch.Tensor, noise_fn: Callable, scheduler) -> torch.Tensor:
        abar = scheduler.alphas_cumprod[int(t)].to(z)
        if i >= self.active_steps:
            with torch.no_grad():
                return noise_fn(z)
        with torch.enable_grad():
            z_in = z.detach().requires_grad_(True)
            if self.options.backprop_denoiser:
                eps = noise_fn(z_in)
            else:
                with torch.no_grad():
                    eps = noise_fn(z)
            z0 = (z_in - (1 - abar).sqrt() * eps) / abar.sqrt()
            grad, = torch.autograd.grad(self.loss(z0), z_in)
        grad_z0 = grad * abar.sqrt()  # dL/dz0 when eps is held fixed
        z0_new = z0.detach() - self.options.scale * z0[0].numel() * grad_z0
        return (z - abar.sqrt() * z0_new) / (1 - abar).sqrt()
