"""Turn decoded semantics and structure into images with one of the paper's four methods (see ``methods.py``)."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from gess.errors import GessInputError
from gess.generation.cs import ComponentSubstitution, CSOptions
from gess.generation.gg import GGOptions, GradientGuidance
from gess.generation.methods import CS_METHODS, GENERATOR_METHODS, structure_weight
from gess.generation.sampling import SamplingOptions, guidance_scale_for, sample
from gess.progress import progress_bar


def structure_reference(backend, structure: np.ndarray, kind: str = "pixels") -> torch.Tensor:
    """M_s's predictions in the backend's space: images (N, H, W, C) in [0, 1] are encoded, latents kept."""
    if kind == "latent":
        return torch.as_tensor(np.asarray(structure, np.float32), device=backend.device)
    x = torch.from_numpy(np.clip(np.asarray(structure, np.float32), 0, 1)).permute(0, 3, 1, 2)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    with torch.no_grad():
        return backend.from_images(x)


def generate_images(backend, c_prime: np.ndarray, c: np.ndarray, structure: np.ndarray, pi_c: np.ndarray, method: str = "cs",
                sampling: SamplingOptions | None = None, seeds: Sequence[int] | None = None, seed: int = 0,
                cs_options: CSOptions | None = None, gg_options: GGOptions | None = None, encoder=None,
                structure_kind: str = "pixels", on_batch: Callable[[np.ndarray, np.ndarray], None] | None = None,
                progress: bool = False) -> np.ndarray:
    """Generate one image per sample: uint8 (N, H, W, 3).

    Parameters
    ----------
    c_prime, c : (N, d) aligned and re-projected embeddings; structure : (N, H, W, C)
        structural predictions as images in [0, 1] (``structure_kind="pixels"``) or the
        backend's latents (``"latent"``); pi_c : (N,) semantic confidence.
    sampling : steps, guidance scale, batch size and the floor on the gated pi_s.
    seeds : one seed per sample (default ``seed + index``), so results do not depend on batching.
    encoder : the differentiable encoder for ``gg`` (the one the decoders were fitted with).
    on_batch : called with (indices, images) after each batch (for incremental, resumable writing).
    """
    if method not in GENERATOR_METHODS:
        raise GessInputError(None, "method", f"one of {', '.join(GENERATOR_METHODS)}", repr(method))
    if method == "gg" and encoder is None:
        raise GessInputError(None, "encoder", "the decoders' image encoder for gradient guidance", "none")
    sampling = sampling or SamplingOptions()
    n = len(c_prime)
    seeds = list(seeds) if seeds is not None else [seed + i for i in range(n)]
    pi_c = np.asarray(pi_c, np.float32)
    pi_s = structure_weight(method, pi_c, sampling.min_structure_weight)
    steps = sampling.steps
    parts = []
    batches = [np.arange(i, min(i + sampling.batch_size, n)) for i in range(0, n, sampling.batch_size)]
    for idx in progress_bar(batches, f"reconstructing ({method})", enabled=progress):
        cond = backend.condition(c_prime[idx], c[idx], seeds=[seeds[i] for i in idx])
        substitution = guidance = None
        if method in CS_METHODS:
            ref = structure_reference(backend, structure[idx], structure_kind)
            substitution = ComponentSubstitution(ref, pi_s[idx], cs_options, steps, seed=[seeds[i] + 10_000 for i in idx])
        elif method == "gg":
            ref = structure_reference(backend, structure[idx], structure_kind)
            target = torch.as_tensor(np.asarray(c[idx], np.float32), device=ref.device)
            guidance = GradientGuidance(pi_s[idx], pi_c[idx], target, ref, encoder, backend.to_images, gg_options, steps)
        z = sample(backend, cond, [seeds[i] for i in idx], steps, guidance_scale_for(sampling, backend), substitution=substitution,
                   guidance=guidance, scheduler=sampling.scheduler)
        with torch.no_grad():
            imgs = backend.to_images(z).clamp(0, 1).permute(0, 2, 3, 1).float().cpu().numpy()
        batch = np.rint(imgs * 255).astype(np.uint8)
        batch = np.ascontiguousarray(np.broadcast_to(batch, batch.shape[:3] + (3,)))
        parts.append(batch)
        if on_batch is not None:
            on_batch(idx, batch)
    # The empty case probes the decoder for the image size; otherwise the batches give it.
    return np.concatenate(parts) if parts else np.zeros((0,) + _image_shape(backend), np.uint8)


def _image_shape(backend) -> tuple[int, int, int]:
    with torch.no_grad():
        probe = backend.to_images(torch.zeros((1,) + tuple(backend.latent_shape()), device=backend.device))
    return (probe.shape[2], probe.shape[3], 3)
