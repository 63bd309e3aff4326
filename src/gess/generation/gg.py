"""GG, gradient guidance: steer each step by a gated semantic + structural objective.

At step t, estimate z0 = (z_t - sqrt(1 - abar) eps) / sqrt(abar), move it

    z0' = z0 - scale * numel * pi_s * d/dz0 mean (F(z0) - F(s))^2            (structure)
             - semantic_scale * pi_c * g / rms(g),  g = d/dz0 (1 - cos(E(D(z0)), c))   (semantics)

and continue the DDIM update with the noise prediction that z0' implies,
eps' = (z_t - sqrt(abar) z0') / sqrt(1 - abar).

Why this form: a step in z0 has the same size at every t, whereas classifier
guidance in epsilon form (eps + s sqrt(1 - abar) dL/dz_t) grows like
(1 - abar) / abar at high noise and overshoots. The structural loss is quadratic,
so its plain gradient step is well behaved (scale 0.2 removes about 40% of the
low-pass error per step). The encoder's raw gradient is not: followed with a
fixed scale it writes adversarial high-frequency patterns, so the semantic step
is normalised to a fixed RMS. By default d/dz0 holds eps fixed (no backward pass
through the denoiser); ``backprop_denoiser=True`` takes it through.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from gess.encoders.base import resize_tensor
from gess.generation.filters import lowpass
from gess.options import AT_LEAST_1, NON_NEGATIVE, SHARE, Options


@dataclass
class GGOptions(Options):
    """Gradient guidance."""

    scale: float = field(default=0.2, metadata={"help": "structural step (per-element gradient units)",
                                                "range": NON_NEGATIVE})
    semantic_scale: float = field(default=0.02, metadata={"help": "RMS of the semantic step in z0 per guided step",
                                                          "range": NON_NEGATIVE})
    lowpass_factor: float = field(default=2.0, metadata={"help": "low-pass of the structural loss", "range": NON_NEGATIVE})
    encoder_size: int | None = field(default=128, metadata={"help": "side the encoder sees x0 at (null: its own)",
                                                            "range": AT_LEAST_1})
    backprop_denoiser: bool = field(default=False, metadata={"help": "take d/dz0 through the denoiser"})
    fraction: float = field(default=0.9, metadata={"help": "guide the first share of the steps, leave the last free",
                                                   "range": SHARE})
    semantic_every: int = field(default=3, metadata={"help": "the semantic step (an encoder backward pass) every k-th "
                                                             "guided step (its cost: docs/generation.md)", "range": AT_LEAST_1})


class GradientGuidance:
    """The GG hook for :func:`gess.generation.sampling.sample`.

    Parameters
    ----------
    pi_s : (N,) weights of the structural loss (:func:`gess.generation.methods.structure_weight`).
    pi_c : (N,) weights of the semantic loss.
    target_embedding : (N, d) decoded embedding c in the encoder's raw space.
    reference : (N, C, H, W) structural reference in the generator's space.
    encoder : an :class:`~gess.encoders.base.ImageEncoder` (differentiable ``encode_tensor``);
        None disables the semantic term.
    to_images : generator space -> images in [0, 1], differentiable.
    """

    def __init__(self, pi_s, pi_c, target_embedding: torch.Tensor, reference: torch.Tensor, encoder, to_images: Callable,
                 options: GGOptions | None = None, steps: int = 50):
        self.shape = (-1,) + (1,) * (reference.ndim - 1)
        self.pi_s = torch.as_tensor(np.asarray(pi_s, np.float32), device=reference.device)
        self.pi_c = torch.as_tensor(np.asarray(pi_c, np.float32), device=reference.device)
        self.target = torch.nn.functional.normalize(target_embedding.float(), dim=-1)
        self.reference = reference
        self.encoder = encoder
        self.to_images = to_images
        self.options = options or GGOptions()
        self.active_steps = max(1, int(self.options.fraction * steps))
        self._ref_low = lowpass(reference, self.options.lowpass_factor)
        self._semantic_now = True

    def structure_loss(self, z0: torch.Tensor) -> torch.Tensor:
        """Per-sample mean squared low-pass error against the structural reference."""
        return ((lowpass(z0, self.options.lowpass_factor) - self._ref_low) ** 2).flatten(1).mean(1)

    def semantic_loss(self, z0: torch.Tensor) -> torch.Tensor:
        """Per-sample 1 - cosine between the encoder's embedding of D(z0) and c."""
        images = self.to_images(z0).clamp(0, 1)
        if self.options.encoder_size:
            images = resize_tensor(images, self.options.encoder_size)
        emb = torch.nn.functional.normalize(self.encoder.encode_tensor(images).float(), dim=-1)
        return 1 - (emb * self.target).sum(-1)

    def loss(self, z0: torch.Tensor) -> torch.Tensor:
        """The gated objective (for inspection): sum of pi_c * semantic + pi_s * structure."""
        total = self.pi_s * self.structure_loss(z0)
        if self.encoder is not None:
            total = total + self.pi_c * self.semantic_loss(z0)
        return total.sum()

    def step(self, z0: torch.Tensor, z_in: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
        """The move of z0 (same shape) prescribed by both terms."""
        o = self.options
        move = torch.zeros_like(z0)
        if o.scale:
            g, = torch.autograd.grad((self.pi_s * self.structure_loss(z0)).sum(), z_in, retain_graph=True)
            move = move + o.scale * z0[0].numel() * g * abar.sqrt()
        if o.semantic_scale and self.encoder is not None and bool((self.pi_c > 0).any()) and self._semantic_now:
            g, = torch.autograd.grad(self.semantic_loss(z0).sum(), z_in)
            rms = g.flatten(1).pow(2).mean(1).sqrt().clamp_min(1e-12).view(self.shape)
            move = move + o.semantic_scale * self.pi_c.view(self.shape) * g / rms
        return move

    def noise(self, i: int, t, z: torch.Tensor, noise_fn: Callable, scheduler) -> torch.Tensor:
        abar = scheduler.alphas_cumprod[int(t)].to(z)
        if i >= self.active_steps:
            with torch.no_grad():
                return noise_fn(z)
        self._semantic_now = i % max(1, self.options.semantic_every) == 0
        v_model = getattr(scheduler.config, "prediction_type", "epsilon") == "v_prediction"
        with torch.enable_grad():
            z_in = z.detach().requires_grad_(True)
            if self.options.backprop_denoiser:
                out = noise_fn(z_in)
            else:
                with torch.no_grad():
                    out = noise_fn(z)
            # a v-predicting model (v = sqrt(abar) eps - sqrt(1 - abar) x0) is read as its implied eps
            eps = abar.sqrt() * out + (1 - abar).sqrt() * z_in if v_model else out
            z0 = (z_in - (1 - abar).sqrt() * eps) / abar.sqrt()
            move = self.step(z0, z_in, abar)
        z0_new = z0.detach() - move
        eps_new = (z - abar.sqrt() * z0_new) / (1 - abar).sqrt()
        return abar.sqrt() * eps_new - (1 - abar).sqrt() * z0_new if v_model else eps_new
