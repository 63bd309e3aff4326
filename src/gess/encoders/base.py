"""The encoder interface: images in, an (n, d) float32 array out."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass

import numpy as np
import torch

from gess.device import resolve_device
from gess.errors import GessInputError
from gess.progress import progress_bar


@dataclass(frozen=True)
class EncoderSpec:
    """Who made an embedding: written with the decoders and with a prior, compared by :func:`check_same_encoder`.

    name : the encoder family (``efficientnet-lite0``, ``clip``);
    source : what :func:`gess.encoders.get_encoder` takes to rebuild it (a name, hub id or directory);
    dim : the embedding size.
    """

    name: str
    source: str
    dim: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "EncoderSpec":
        """Read a stored description (gess 0.1 stored no ``source``: the name rebuilds those encoders)."""
        name = str(data["name"])
        family = "clip" if name.startswith("clip") else name
        source = data.get("source") or (name[len("clip:"):] if name.startswith("clip:") else name)
        return cls(family, str(source), int(data.get("dim", 0)))


def check_same_encoder(expected: EncoderSpec, got: EncoderSpec, what: str, file=None) -> None:
    """Raise a clear error unless two embeddings come from the same family with the same size.

    The source may differ (a local copy of a hub model is the same encoder).
    """
    if expected.name != got.name or (expected.dim and got.dim and expected.dim != got.dim):
        raise GessInputError(file, "encoder", f"{what}: {expected.dim}-d '{expected.name}' embeddings ({expected.source})",
                             f"{got.dim}-d '{got.name}' ({got.source})")


class ImageEncoder(ABC):
    """Maps uint8 images (n, H, W, C) to float32 features (n, d), batched and deterministic.

    Subclasses implement :meth:`encode_tensor` on float images in [0, 1]
    (N, 3, H, W); it is differentiable so that gradient guidance can use it.
    ``device`` None is the process device (:func:`gess.device.get_device`).
    """

    name: str = "encoder"
    dim: int = 0

    def __init__(self, device: str | torch.device | None = None, batch_size: int = 32):
        self.device = device if isinstance(device, torch.device) else torch.device(resolve_device(device))
        self.batch_size = batch_size

    @abstractmethod
    def encode_tensor(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) float in [0, 1] -> (N, d); differentiable."""

    def spec(self) -> EncoderSpec:
        """This encoder's persisted description."""
        return EncoderSpec(self.name, self.source, int(self.dim))

    @property
    def source(self) -> str:
        return self.name

    @torch.no_grad()
    def encode(self, images: np.ndarray, progress: bool | None = None, description: str = "encoding") -> np.ndarray:
        """Encode uint8 images (n, H, W, C), C in {1, 3}, to float32 (n, d)."""
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[..., None]
        n = images.shape[0]
        out = np.empty((n, self.dim), dtype=np.float32)
        show = progress if progress is not None else n > 4 * self.batch_size
        starts = range(0, n, self.batch_size)
        for start in progress_bar(starts, description, enabled=show):
            batch = images[start : start + self.batch_size]
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device).permute(0, 3, 1, 2).float() / 255.0
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            out[start : start + len(batch)] = self.encode_tensor(x).float().cpu().numpy()
        return out


def resize_tensor(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (N, C, H, W) to size x size, bicubic and anti-aliased when shrinking."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
