"""CLIP image embeddings through transformers, from a local directory or the hub cache (no download)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gess.encoders.base import ImageEncoder, resize_tensor
from gess.errors import MissingWeightsError

DEFAULT_CLIP_ID = "openai/clip-vit-large-patch14"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# how the NSD metric suite's "clip" metric (gess.evaluation, protocols mindeye, mindeye2, brain-diffuser) prepares
# images, as MindEye's evaluation notebooks do: not this encoder's own (uint8, bicubic, anti-aliased) preprocessing
SUITE_PREPROCESSING = ("MindEye's: the float [0, 1] images (not rounded to uint8) resized to the model's side (224) "
                       "with torch.nn.functional.interpolate bilinear, align_corners=False, no antialiasing, then "
                       "CLIP's mean/std normalisation; the projected image embedding (image_embeds)")


def load_clip_vision(model_id_or_dir: str = DEFAULT_CLIP_ID):
    """``CLIPVisionModelWithProjection.from_pretrained`` offline: a local directory or the hub cache."""
    from transformers import CLIPVisionModelWithProjection

    try:
        return CLIPVisionModelWithProjection.from_pretrained(str(model_id_or_dir), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise MissingWeightsError(
            f"CLIP vision model '{model_id_or_dir}'",
            str(model_id_or_dir) if Path(str(model_id_or_dir)).exists() else "the Hugging Face hub cache ($HF_HOME)",
            f"on a machine with internet run `huggingface-cli download {DEFAULT_CLIP_ID}` and copy the cache, "
            f"or pass --encoder /path/to/a/saved/CLIPVisionModelWithProjection",
        ) from exc


class CLIPImageEncoder(ImageEncoder):
    """Projected CLIP image embeddings (768-d for ViT-L/14), input 224 px, CLIP normalisation.

    Parameters
    ----------
    model_id_or_dir : hub id (resolved in the local cache only) or a directory
        written by ``save_pretrained``.
    model : an already built ``CLIPVisionModelWithProjection`` (tests pass tiny ones).
    """

    name = "clip"

    def __init__(self, model_id_or_dir: str = DEFAULT_CLIP_ID, device=None, batch_size=32, model=None):
        super().__init__(device, batch_size)
        self.model_id = str(model_id_or_dir)
        self.model = (model if model is not None else load_clip_vision(model_id_or_dir)).to(self.device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.dim = int(self.model.config.projection_dim)
        self.image_size = int(self.model.config.image_size)
        self._mean = torch.tensor(CLIP_MEAN, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(CLIP_STD, device=self.device).view(1, 3, 1, 1)

    @property
    def source(self) -> str:
        return self.model_id

    def encode_tensor(self, images: torch.Tensor) -> torch.Tensor:
        x = (resize_tensor(images, self.image_size) - self._mean) / self._std
        return self.model(pixel_values=x).image_embeds

    @torch.no_grad()
    def encode_suite(self, images: torch.Tensor) -> np.ndarray:
        """Embeddings of float [0, 1] images (N, 3, H, W) prepared as MindEye's evaluation does
        (:data:`SUITE_PREPROCESSING`): bilinear resize to ``image_size`` without anti-aliasing, CLIP normalisation.

        The suite's "clip" metric uses this; :meth:`encode` / :meth:`encode_tensor` (decoders, the paper protocol's
        embedding 2-way) keep the encoder's own bicubic anti-aliased resize.
        """
        out = np.empty((len(images), self.dim), dtype=np.float32)
        for start in range(0, len(images), self.batch_size):
            x = images[start : start + self.batch_size].to(self.device, torch.float32)
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            if x.shape[-2:] != (self.image_size, self.image_size):
                x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False,
                                  antialias=False)
            x = (x - self._mean) / self._std
            out[start : start + len(x)] = self.model(pixel_values=x).image_embeds.float().cpu().numpy()
        return out
