"""Generator backends behind one interface: a scheduler, a noise predictor and image <-> space maps."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from gess.errors import GessInputError, MissingWeightsError
from gess.generation.models import PixelAutoencoder, PixelPrior

SCHEDULER_NAME = "scheduler_config.json"


def default_scheduler():
    from diffusers import DDIMScheduler

    return DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", clip_sample=True,
                         set_alpha_to_one=True, prediction_type="epsilon")


class PixelBackend:
    """The small embedding-conditioned pixel-space diffusion model (``gess prior train``).

    The conditioning tokens are (c', c), normalised by the prior's embedding statistics.
    """

    name = "pixel"

    def __init__(self, prior: PixelPrior, scheduler=None, device: str = "cpu"):
        self.prior = prior.to(device).eval()
        for p in self.prior.parameters():
            p.requires_grad_(False)
        self.scheduler = scheduler or default_scheduler()
        self.device = torch.device(device)
        cfg = prior.config
        self.autoencoder = PixelAutoencoder(cfg["image_size"], cfg["channels"])
        self.encoder_name = cfg["encoder"]

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str = "cpu") -> "PixelBackend":
        from diffusers import DDIMScheduler

        directory = Path(directory)
        prior = PixelPrior.from_pretrained(directory)
        sched_path = directory / SCHEDULER_NAME
        scheduler = DDIMScheduler.from_config(json.loads(sched_path.read_text())) if sched_path.is_file() else None
        return cls(prior, scheduler, device)

    def config(self) -> dict:
        return {"backend": self.name, **self.prior.config}

    def latent_shape(self) -> tuple[int, ...]:
        c = self.prior.config
        return (c["channels"], c["image_size"], c["image_size"])

    def predict_noise(self, z: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.prior(z, t, cond)

    def condition(self, c_prime: np.ndarray, c: np.ndarray | None = None) -> torch.Tensor:
        """(N, 2, d) normalised tokens (c', c), or (N, 1, d) when only one is given."""
        tokens = [np.asarray(c_prime, np.float32)] + ([np.asarray(c, np.float32)] if c is not None else [])
        cond = torch.from_numpy(np.stack(tokens, axis=1)).to(self.device)
        if cond.shape[-1] != self.prior.config["cond_dim"]:
            raise GessInputError(None, "embeddings", f"{self.prior.config['cond_dim']}-d embeddings of encoder "
                                 f"'{self.encoder_name}' (the generator's)", f"{cond.shape[-1]}-d")
        return self.prior.normalize(cond)

    def to_images(self, z: torch.Tensor) -> torch.Tensor:
        """Generator space -> (N, 3, H, W) in [0, 1]; differentiable."""
        return self.autoencoder.decode_latents(z)

    def from_images(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) images in [0, 1] -> generator space."""
        return self.autoencoder.encode_images(images.to(self.device))


def load_backend(directory: str | Path, device: str = "cpu"):
    """Open a generator directory: a trained pixel prior, or a Stable unCLIP model (``model_index.json``)."""
    directory = Path(directory)
    if (directory / "model_index.json").is_file() or str(directory).count("/") == 1 and not directory.exists():
        from gess.generation.unclip import UnCLIPBackend

        return UnCLIPBackend.from_pretrained(str(directory), device=device)
    if (directory / "config.json").is_file():
        return PixelBackend.from_pretrained(directory, device)
    raise MissingWeightsError("a generator", str(directory),
                              "train a pixel prior with `gess prior train`, or pass a Stable unCLIP directory")
