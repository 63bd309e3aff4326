"""The `pixel` backend: a small embedding-conditioned diffusion UNet in pixel space (``gess prior train``).

The unCLIP idea at small scale: the image embedding is normalised, projected and
added to the timestep embedding (diffusers' ``UNet2DModel`` with an identity
class embedding). Its constructor arguments are its config, saved as
``config.json`` beside ``model.safetensors`` (diffusers' convention).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from gess.device import resolve_device
from gess.encoders.base import EncoderSpec
from gess.errors import GessInputError, MissingWeightsError
from gess.io import read_json
from gess.persistence import config_args, init_config, load_component, load_module_state, module_state, save_component


class PixelPrior(nn.Module):
    """Noise- (or v-) prediction UNet on (N, C, S, S) images in [-1, 1], conditioned on embedding tokens; what it
    predicts is its scheduler config's ``prediction_type``.

    The timestep + embedding vector modulates every ResNet block by a scale and a
    shift (FiLM, ``time_scale_shift="scale_shift"``): with the plain additive bias
    a small prior barely uses its condition (docs/generation.md).

    Parameters
    ----------
    image_size, channels : the pixel space (e.g. 32, 1 for digits).
    cond_dim : dimension of the image embedding (1280 for EfficientNet-Lite0).
    block_out_channels, layers_per_block : UNet size.
    encoder : the :class:`~gess.encoders.EncoderSpec` (as a dict) whose embeddings condition the model.
    conditioning_components : 0 scales the centred embedding by one global RMS; k > 0
        whitens it onto its k leading principal components (set from the training
        embeddings), so the directions that tell images apart reach the network at
        unit scale however little of the embedding's variance they carry.
    embedding_mean, embedding_std, embedding_projection : buffers, the normalisation of the
        conditioning embeddings set from the training embeddings; the unconditional input
        is the zero vector after normalisation.
    """

    def __init__(self, image_size: int = 32, channels: int = 1, cond_dim: int = 1280,
                 block_out_channels=(32, 64, 64), layers_per_block: int = 1, encoder: dict | None = None,
                 norm_num_groups: int = 8, time_scale_shift: str = "scale_shift", conditioning_components: int = 0):
        super().__init__()
        from diffusers import UNet2DModel

        encoder = encoder or {}
        self.config = init_config(PixelPrior, locals())  # the constructor's arguments, saved as config.json
        n = len(block_out_channels)
        self.unet = UNet2DModel(sample_size=image_size, in_channels=channels, out_channels=channels,
                                block_out_channels=tuple(block_out_channels), layers_per_block=layers_per_block,
                                down_block_types=("DownBlock2D",) * n, up_block_types=("UpBlock2D",) * n,
                                class_embed_type="identity", norm_num_groups=norm_num_groups,
                                resnet_time_scale_shift=time_scale_shift)
        temb = self.unet.time_embedding.linear_2.out_features
        width = conditioning_components or cond_dim
        self.cond_proj = nn.Sequential(nn.Linear(width, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.register_buffer("embedding_mean", torch.zeros(cond_dim))
        self.register_buffer("embedding_std", torch.ones(cond_dim))
        if conditioning_components:
            self.register_buffer("embedding_projection", torch.zeros(cond_dim, conditioning_components))

    def normalize(self, embeddings: torch.Tensor) -> torch.Tensor:
        centred = embeddings - self.embedding_mean
        if self.config["conditioning_components"]:
            return centred @ self.embedding_projection
        return centred / self.embedding_std

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """cond: (N, d) or (N, T, d) normalised embedding tokens (zeros = unconditional); tokens are averaged."""
        proj = self.cond_proj(cond)
        if proj.ndim == 3:
            proj = proj.mean(1)
        return self.unet(x, t, class_labels=proj).sample

    def save_pretrained_files(self, directory: str | Path, extra: dict | None = None) -> None:
        """Write ``model.safetensors`` then ``config.json`` (its config, and ``extra``) into ``directory``, atomically."""
        save_component(directory, "PixelPrior", {**self.config, **(extra or {})}, module_state(self))

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "PixelPrior":
        missing = MissingWeightsError("a trained pixel prior", str(directory), "train one with `gess prior train`")
        config, arrays = load_component(directory, "PixelPrior", missing=missing, command="gess prior train")
        if isinstance(config.get("encoder"), str):  # gess 0.1 stored the encoder's name only
            config["encoder"] = EncoderSpec.from_dict({"name": config["encoder"], "dim": config.get("cond_dim", 0)}).to_dict()
        args = {"time_scale_shift": "default", **config_args(cls, config)}  # priors saved before FiLM: "default"
        return load_module_state(cls(**args), arrays).eval()


class PixelAutoencoder:
    """The identity 'autoencoder' of the pixel backend: images in [0, 1] <-> model space [-1, 1]."""

    def __init__(self, size: int, channels: int):
        self.size, self.channels = size, channels

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        from gess.encoders.base import resize_tensor

        x = resize_tensor(images.float(), self.size)
        if self.channels == 1 and x.shape[1] == 3:
            x = x.mean(1, keepdim=True)
        return x * 2.0 - 1.0

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        x = (latents.float() + 1.0) / 2.0
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def embedding_statistics(embeddings: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and ONE global scale (the RMS of the centred embeddings).

    A per-dimension std blows up unseen embeddings on dimensions that are
    (nearly) constant in a small training set (docs/generation.md).
    """
    e = torch.as_tensor(embeddings, dtype=torch.float32)
    mean = e.mean(0)
    scale = (e - mean).pow(2).mean().sqrt().clamp_min(1e-6)
    return mean, scale.expand_as(mean).clone()


def whitening_projection(embeddings: np.ndarray, components: int) -> torch.Tensor:
    """(d, k): the k leading principal directions of the centred embeddings, each divided by its
    standard deviation, so the projected training embeddings have unit variance per component."""
    e = torch.as_tensor(embeddings, dtype=torch.float64)
    centred = e - e.mean(0)
    k = min(components, min(centred.shape))
    _, s, vt = torch.linalg.svd(centred, full_matrices=False)
    std = (s[:k] / max(len(e) - 1, 1) ** 0.5).clamp_min(1e-6)
    projection = torch.zeros(e.shape[1], components, dtype=torch.float64)
    projection[:, :k] = vt[:k].T / std
    return projection.float()


class PixelBackend:
    """The small embedding-conditioned pixel-space diffusion model (``gess prior train``).

    The conditioning tokens are (c', c), normalised by the prior's embedding statistics.
    """

    name = "pixel"
    # guidance above ~1.25 loses the digit with every pixel prior measured (held-out MNIST; docs/generation.md)
    default_guidance_scale = 1.0

    def __init__(self, prior: PixelPrior, scheduler=None, device: str | None = None):
        from gess.generation.backends import default_scheduler

        self.device = torch.device(resolve_device(device))
        self.prior = prior.to(self.device).eval()
        for p in self.prior.parameters():
            p.requires_grad_(False)
        self.scheduler = scheduler or default_scheduler()
        cfg = prior.config
        self.autoencoder = PixelAutoencoder(cfg["image_size"], cfg["channels"])
        self.encoder_spec = EncoderSpec.from_dict(cfg["encoder"]) if cfg["encoder"] else EncoderSpec("unknown", "unknown", cfg["cond_dim"])

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | None = None) -> "PixelBackend":
        from diffusers import DDIMScheduler

        from gess.generation.backends import SCHEDULER_NAME

        directory = Path(directory)
        prior = PixelPrior.from_pretrained(directory)
        sched_path = directory / SCHEDULER_NAME
        scheduler = DDIMScheduler.from_config(read_json(sched_path)) if sched_path.is_file() else None
        return cls(prior, scheduler, device)

    def config(self) -> dict:
        return {"backend": self.name, **self.prior.config}

    def latent_shape(self) -> tuple[int, ...]:
        c = self.prior.config
        return (c["channels"], c["image_size"], c["image_size"])

    def predict_noise(self, z: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.prior(z, t, cond)

    def condition(self, c_prime: np.ndarray, c: np.ndarray | None = None, seeds=None) -> torch.Tensor:
        """(N, 2, d) normalised tokens (c', c), or (N, 1, d) when only one is given."""
        tokens = [np.asarray(c_prime, np.float32)] + ([np.asarray(c, np.float32)] if c is not None else [])
        cond = torch.from_numpy(np.stack(tokens, axis=1)).to(self.device)
        if cond.shape[-1] != self.prior.config["cond_dim"]:
            raise GessInputError(None, "embeddings", f"{self.prior.config['cond_dim']}-d embeddings of encoder "
                                 f"'{self.encoder_spec.name}' (the generator's)", f"{cond.shape[-1]}-d")
        return self.prior.normalize(cond)

    def to_images(self, z: torch.Tensor) -> torch.Tensor:
        """Generator space -> (N, 3, H, W) in [0, 1]; differentiable."""
        return self.autoencoder.decode_latents(z)

    def from_images(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) images in [0, 1] -> generator space."""
        return self.autoencoder.encode_images(images.to(self.device))
