"""Turn decoded semantics and structure into images with one of the paper's four methods.

``semantic``  c only (plain conditional sampling)            -- paper's c+LDM
``cs-equal``  c + s by CS with pi_s = 0.5 for every sample   -- c+s+CS
``cs``        c + s by CS gated by pi_s = 1 - pi_c           -- c+s+MOE+CS (GESS)
``gg``        c + s by gradient guidance gated by pi         -- c+s+MOE+GG
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from gess.errors import GessInputError
from gess.generation.cs import ComponentSubstitution, CSOptions, gated_structure_weight
from gess.generation.gg import GGOptions, GradientGuidance
from gess.generation.sampling import sample

METHODS = ("semantic", "cs-equal", "cs", "gg")


def structure_to_space(backend, structure: np.ndarray) -> torch.Tensor:
    """Structural predictions as images (N, H, W, C) in [0, 1] -> the backend's space."""
    x = torch.from_numpy(np.clip(np.asarray(structure, np.float32), 0, 1)).permute(0, 3, 1, 2)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    with torch.no_grad():
        return backend.from_images(x)


def method_pi_s(method: str, pi_c: np.ndarray, cs_options: CSOptions | None = None) -> np.ndarray:
    if method == "semantic":
        return np.zeros_like(pi_c)
    if method == "cs-equal":
        return np.full_like(pi_c, 0.5)
    if method == "cs":
        return gated_structure_weight(pi_c, (cs_options or CSOptions()).min_structure_weight)
    return 1.0 - pi_c


def reconstruct(backend, c_prime: np.ndarray, c: np.ndarray, structure: np.ndarray, pi_c: np.ndarray, method: str = "cs",
                steps: int = 50, guidance_scale: float = 5.0, seeds: Sequence[int] | None = None, seed: int = 0,
                cs_options: CSOptions | None = None, gg_options: GGOptions | None = None, encoder=None,
                batch_size: int = 16, on_batch: Callable[[np.ndarray, np.ndarray], None] | None = None,
                progress: bool = False) -> np.ndarray:
    """Generate one image per sample: uint8 (N, H, W, 3).

    Parameters
    ----------
    c_prime, c : (N, d) aligned and re-projected embeddings; structure : (N, H, W, C)
        structural predictions as images in [0, 1]; pi_c : (N,) semantic confidence.
    seeds : one seed per sample (default ``seed + index``), so results do not depend on batching.
    encoder : the differentiable encoder for ``gg`` (the generator's embedding space).
    on_batch : called with (indices, images) after each batch (for incremental, resumable writing).
    """
    if method not in METHODS:
        raise GessInputError(None, "method", f"one of {', '.join(METHODS)}", repr(method))
    if method == "gg" and encoder is None:
        raise GessInputError(None, "encoder", "the generator's image encoder for gradient guidance", "none")
    n = len(c_prime)
    seeds = list(seeds) if seeds is not None else [seed + i for i in range(n)]
    pi_c = np.asarray(pi_c, np.float32)
    pi_s = method_pi_s(method, pi_c, cs_options)
    parts = []
    batches = [np.arange(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    from gess.progress import progress_bar

    for idx in progress_bar(batches, f"reconstructing ({method})", enabled=progress):
        cond = backend.condition(c_prime[idx], c[idx])
        substitution = guidance = None
        if method in ("cs-equal", "cs"):
            ref = structure_to_space(backend, structure[idx])
            substitution = ComponentSubstitution(ref, pi_s[idx], cs_options, steps, seed=[seeds[i] + 10_000 for i in idx])
        elif method == "gg":
            ref = structure_to_space(backend, structure[idx])
            target = torch.as_tensor(np.asarray(c[idx], np.float32), device=ref.device)
            guidance = GradientGuidance(pi_c[idx], target, ref, encoder, backend.to_images, gg_options, steps)
        z = sample(backend, cond, [seeds[i] for i in idx], steps, guidance_scale, substitution=substitution, guidance=guidance)
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
