"""The `unclip` backend: Stable Diffusion 2.1 unCLIP (small: CLIP ViT-L/14 image embeddings, 768 px).

Assembled from diffusers components (UNet, VAE, DDIM scheduler, the image
normaliser and noise-level embedding of unCLIP) so that gess's own loop can run
CS and GG. Loaded from a local directory or the Hugging Face cache only. Its VAE
is the structural autoencoder: structural predictions (blurred images) are mapped
to its latents.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from gess.encoders.base import EncoderSpec
from gess.errors import GessInputError, MissingWeightsError

DEFAULT_UNCLIP_ID = "stabilityai/stable-diffusion-2-1-unclip-small"


def embedding_noise(embeddings: np.ndarray, seeds=None) -> torch.Tensor:
    """One Gaussian draw per sample, seeded by the sample alone: its seed, else its embedding's bytes."""
    draws = []
    for i, row in enumerate(embeddings):
        key = f"seed:{int(seeds[i])}" if seeds is not None else "embedding:" + hashlib.sha256(row.tobytes()).hexdigest()
        seed = int.from_bytes(hashlib.sha256(f"gess-unclip-noise:{key}".encode()).digest()[:4], "little") & 0x7FFFFFFF
        draws.append(torch.randn(row.shape, generator=torch.Generator().manual_seed(seed)))
    return torch.stack(draws) if draws else torch.zeros(embeddings.shape)


class UnCLIPBackend:
    """Stable unCLIP components behind the backend interface.

    Parameters
    ----------
    unet : ``UNet2DConditionModel`` with a projection class embedding (image embedding + noise level).
    vae : ``AutoencoderKL``.
    scheduler : a DDIM scheduler.
    image_normalizer : ``StableUnCLIPImageNormalizer``; image_noising_scheduler : its ``DDPMScheduler``.
    prompt_embeds : (1, L, D) text-encoder output for the empty prompt (computed from the
        text encoder when loading a full model directory).
    noise_level : unCLIP's image-embedding noise level (0 = use the embedding as decoded).
    """

    name = "unclip"

    def __init__(self, unet, vae, scheduler, image_normalizer, image_noising_scheduler, prompt_embeds: torch.Tensor,
                 noise_level: int = 0, device: str = "cpu", dtype: torch.dtype | None = None, source: str = "",
                 compile: bool = False, vae_slice: int = 4):
        self.device = torch.device(device)
        self.dtype = dtype or (torch.bfloat16 if self.device.type == "cuda" else torch.float32)
        self.vae_slice = vae_slice  # images the VAE decodes at once: a large batch never runs out of memory there
        self.unet = unet.to(self.device).eval()
        if self.device.type == "cuda":
            self.unet = self.unet.to(memory_format=torch.channels_last)
        if compile:
            self.unet = torch.compile(self.unet)
        self.vae = vae.to(self.device).eval()
        for m in (self.unet, self.vae):
            for p in m.parameters():
                p.requires_grad_(False)
        self.scheduler = scheduler
        self.image_normalizer = image_normalizer.to(self.device)
        self.image_noising_scheduler = image_noising_scheduler
        self.prompt_embeds = prompt_embeds.to(self.device)
        self.noise_level = noise_level
        self.source = source
        self.vae_scale = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.scaling_factor = float(self.vae.config.scaling_factor)

    @classmethod
    def from_pretrained(cls, model_id_or_dir: str = DEFAULT_UNCLIP_ID, device: str = "cpu", noise_level: int = 0) -> "UnCLIPBackend":
        from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, UNet2DConditionModel
        from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer
        from transformers import CLIPTextModel, CLIPTokenizer

        src = str(model_id_or_dir)
        try:
            kw = dict(local_files_only=True)
            unet = UNet2DConditionModel.from_pretrained(src, subfolder="unet", **kw)
            vae = AutoencoderKL.from_pretrained(src, subfolder="vae", **kw)
            scheduler = DDIMScheduler.from_pretrained(src, subfolder="scheduler", **kw)
            normalizer = StableUnCLIPImageNormalizer.from_pretrained(src, subfolder="image_normalizer", **kw)
            noising = DDPMScheduler.from_pretrained(src, subfolder="image_noising_scheduler", **kw)
            tokenizer = CLIPTokenizer.from_pretrained(src, subfolder="tokenizer", **kw)
            text_encoder = CLIPTextModel.from_pretrained(src, subfolder="text_encoder", **kw)
        except (OSError, ValueError) as exc:
            raise MissingWeightsError(
                f"Stable unCLIP '{src}'", src if Path(src).exists() else "the Hugging Face hub cache ($HF_HOME)",
                f"on a machine with internet run `huggingface-cli download {DEFAULT_UNCLIP_ID}` and copy the cache, "
                f"or pass --generator /path/to/the/model/directory",
            ) from exc
        with torch.no_grad():
            tokens = tokenizer([""], padding="max_length", max_length=tokenizer.model_max_length, return_tensors="pt")
            prompt_embeds = text_encoder(tokens.input_ids)[0]
        return cls(unet, vae, scheduler, normalizer, noising, prompt_embeds, noise_level, device, source=src)

    @property
    def encoder_spec(self) -> EncoderSpec:
        """unCLIP is conditioned on CLIP image embeddings of the normaliser's size."""
        return EncoderSpec("clip", "openai/clip-vit-large-patch14", int(self.image_normalizer.mean.shape[-1]))

    def config(self) -> dict:
        return {"backend": self.name, "source": self.source, "sample_size": self.unet.config.sample_size,
                "noise_level": self.noise_level}

    def latent_shape(self) -> tuple[int, ...]:
        s = self.unet.config.sample_size
        return (self.unet.config.in_channels, s, s)

    @property
    def image_size(self) -> int:
        return self.unet.config.sample_size * self.vae_scale

    def condition(self, c_prime: np.ndarray, c: np.ndarray | None = None, seeds=None) -> torch.Tensor:
        """unCLIP class conditioning from the re-projected embedding c (c' if c is None), noised to ``noise_level``.

        seeds : one per sample; its embedding noise is drawn from its seed (from its embedding when None),
            so a sample's conditioning does not depend on its batch.
        """
        from diffusers.models.embeddings import get_timestep_embedding

        array = np.ascontiguousarray(c if c is not None else c_prime, np.float32)
        emb = torch.as_tensor(array, device=self.device)
        dim = self.image_normalizer.mean.shape[-1]
        if emb.shape[-1] != dim:
            raise GessInputError(None, "embeddings", f"{dim}-d CLIP image embeddings (the generator's)", f"{emb.shape[-1]}-d")
        if seeds is not None and len(seeds) != len(emb):
            raise GessInputError(None, "seeds", f"one seed per sample ({len(emb)})", str(len(seeds)))
        level = torch.full((len(emb),), self.noise_level, device=self.device, dtype=torch.long)
        if self.noise_level > 0:
            noise = embedding_noise(array, seeds).to(emb)
            emb = self.image_normalizer.unscale(self.image_noising_scheduler.add_noise(self.image_normalizer.scale(emb), noise, level))
        level_emb = get_timestep_embedding(level, emb.shape[-1], flip_sin_to_cos=True, downscale_freq_shift=0).to(emb)
        return torch.cat([emb, level_emb], dim=1)

    def predict_noise(self, z: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        ctx = self.prompt_embeds.expand(len(z), -1, -1)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            return self.unet(z, t, encoder_hidden_states=ctx, class_labels=cond).sample.float()

    def to_images(self, z: torch.Tensor) -> torch.Tensor:
        """Latents -> (N, 3, H, W) in [0, 1], ``vae_slice`` images at a time; differentiable."""
        parts = []
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            for start in range(0, len(z), self.vae_slice):
                parts.append(self.vae.decode(z[start:start + self.vae_slice] / self.scaling_factor).sample.float())
        return (torch.cat(parts) + 1) / 2

    def from_images(self, images: torch.Tensor) -> torch.Tensor:
        from gess.encoders.base import resize_tensor

        x = resize_tensor(images.to(self.device).float(), self.image_size) * 2 - 1
        return self.vae.encode(x).latent_dist.mean * self.scaling_factor
