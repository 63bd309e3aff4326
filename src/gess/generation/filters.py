"""Low-pass filters F_s in the generator's space (latents or pixels)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def lowpass(z: torch.Tensor, factor: float) -> torch.Tensor:
    """up(down(z)): cubic, anti-aliased resize down by ``factor`` and back (the released F_s uses 6).

    ``factor <= 1`` returns ``z`` unchanged.
    """
    if factor <= 1:
        return z
    h, w = z.shape[-2:]
    small = (max(1, round(h / factor)), max(1, round(w / factor)))
    down = F.interpolate(z, size=small, mode="bicubic", antialias=True, align_corners=False)
    return F.interpolate(down, size=(h, w), mode="bicubic", align_corners=False)
