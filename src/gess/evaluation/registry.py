"""The metric registry: one entry per metric (name, compute, better direction, definition, protocols).

A metric is one function of a :class:`MetricContext` returning per-sample values, and one
:func:`register_metric` call. :func:`gess.evaluation.evaluate`, ``gess evaluate``'s summary
and the report read the registry, so a metric's arrow and definition are declared once::

    from gess.evaluation.registry import Metric, register_metric

    def mean_abs_error(ctx):
        gt, rec = ctx.pixel_pair()
        return (gt - rec).abs().flatten(1).mean(1).numpy()

    register_metric(Metric("mae", mean_abs_error, higher_is_better=False,
                           definition="mean absolute pixel difference (0 = identical)", protocols=("paper",)))
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class ProtocolImages:
    """How a protocol reads the images: its resize chains (each size in turn, bilinear, from the images as
    given), the side its ground truths are stored at first, and its SSIM reading (:data:`SSIM_READINGS`)."""

    pixels: tuple[int, ...]            # PixCorr, SSIM
    networks: tuple[int, ...]          # the images handed to a feature network
    network_input: int | None = None   # every network's input side; None: each network's own
    ground_truth_size: int | None = None  # the ground truths first go to this side (MindEye2 stores them at 224)
    ssim: str = "2d"                   # a key of SSIM_READINGS
    reproduces: str = ""               # whose published numbers this reading reproduces

    def ground_truth_chain(self, sizes: tuple[int, ...]) -> tuple[int, ...]:
        """The resizes a ground truth goes through to reach ``sizes`` (the stored size first, when there is one)."""
        return ((self.ground_truth_size,) if self.ground_truth_size else ()) + tuple(sizes)


# how SSIM reads the two grey images (rgb2gray; Gaussian weights, sigma 1.5, no sample covariance, data range 1)
SSIM_READINGS = {
    "2d": "2-D Gaussian window (11 x 11, sigma 1.5) over the grey image, mean over the map without its 5-pixel border",
    "columns": "scikit-image 0.17.2's multichannel=True on a grey (H, W) image: every column is a 'channel', "
               "a 1-D Gaussian window (11 taps, sigma 1.5) runs down each column, in float64, and the columns' "
               "SSIMs are averaged (structural_similarity(..., channel_axis=-1) today)",
}

# the suite resizes to 256 then 425; MindEye2 stores its ground truths at 224 first; Brain-Diffuser goes to 425
# from the original, networks at 224, and reads SSIM column by column (docs/evaluation.md)
PROTOCOL_IMAGES = {"paper": ProtocolImages((256, 425), (256,), reproduces="GESS paper"),
                   "mindeye": ProtocolImages((256, 425), (256,), reproduces="MindEye1"),
                   "mindeye2": ProtocolImages((256, 425), (256,), ground_truth_size=224, reproduces="MindEye2"),
                   "brain-diffuser": ProtocolImages((425,), (), 224, ssim="columns", reproduces="Brain-Diffuser")}
PROTOCOLS = tuple(PROTOCOL_IMAGES)


class MetricUnavailable(Exception):
    """Raised by a metric's compute function that cannot run here; the message says why and how to fix it."""


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 or float [0, 1] images (N, H, W, C) -> float (N, 3, H, W) in [0, 1]."""
    x = torch.as_tensor(np.ascontiguousarray(images))
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    if x.ndim == 3:
        x = x[..., None]
    x = x.permute(0, 3, 1, 2)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


@dataclass
class MetricContext:
    """What a metric sees: one protocol's paired images and settings; resized images are cached."""

    protocol: str
    ground_truth: torch.Tensor            # (N, 3, H, W) in [0, 1], at the stimuli's own resolution
    reconstructions: torch.Tensor         # (N, 3, h, w) in [0, 1], paired by row
    distinct: np.ndarray | None = None    # (N, N) True where two stimuli differ; None when all do
    trials: int = 10                      # random draws per sample (the paper's 2-way identification)
    seed: int = 0
    encoder: object | None = None         # the embedding encoder (CLIP when given, else the run's)
    clip_encoder: object | None = None    # CLIP ViT-L/14, when its weights are present
    networks: dict = field(default_factory=dict)   # {name: model} overrides of the suite's networks
    weights_dir: str | Path | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return len(self.ground_truth)

    @property
    def images(self) -> ProtocolImages:
        return PROTOCOL_IMAGES[self.protocol]

    def ground_truth_at(self, *sizes: int) -> torch.Tensor:
        """The ground truth resized to each of ``sizes`` in turn (none: the original)."""
        return self._resized("ground_truth", tuple(sizes))

    def reconstructions_at(self, *sizes: int) -> torch.Tensor:
        return self._resized("reconstructions", tuple(sizes))

    def pixel_pair(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(ground truth, reconstructions) at the protocol's pixel-metric resolution (the ground truth from its stored size)."""
        images = self.images
        return self.ground_truth_at(*images.ground_truth_chain(images.pixels)), self.reconstructions_at(*images.pixels)

    def network_pair(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(ground truth, reconstructions) as the protocol hands them to a feature network."""
        images = self.images
        return self.ground_truth_at(*images.ground_truth_chain(images.networks)), self.reconstructions_at(*images.networks)

    def embed(self, encoder, images: torch.Tensor) -> np.ndarray:
        """Encoder features of [0, 1] images, cached by content (ground truths recur across methods)."""
        from gess.cache import cached_array, fingerprint

        pixels = np.rint(images.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
        return cached_array("evaluation", fingerprint(pixels, encoder.spec().to_dict()), lambda: encoder.encode(pixels))

    def embed_suite_clip(self, images: torch.Tensor) -> np.ndarray:
        """CLIP embeddings of [0, 1] images as the suite's "clip" metric takes them: MindEye's preprocessing
        (the float images, bilinear to 224 without anti-aliasing, CLIP normalisation; ``encode_suite`` of
        :class:`gess.encoders.clip.CLIPImageEncoder`), cached by content."""
        from gess.cache import cached_array, fingerprint

        encoder = self.clip_encoder
        if not callable(getattr(encoder, "encode_suite", None)):
            raise MetricUnavailable(f"the suite's CLIP metric needs a gess.encoders.clip.CLIPImageEncoder (MindEye's "
                                    f"preprocessing), got {type(encoder).__name__}")
        x = images.float().contiguous()
        key = fingerprint(x.numpy(), encoder.spec().to_dict(), "suite-clip: float, bilinear, no antialias")
        return cached_array("evaluation", key, lambda: encoder.encode_suite(x))

    def _resized(self, which: str, sizes: tuple[int, ...]) -> torch.Tensor:
        if not sizes:
            return getattr(self, which)
        key = (which, sizes)
        if key not in self._cache:
            self._cache[key] = resize(self._resized(which, sizes[:-1]), sizes[-1])
        return self._cache[key]


@dataclass(frozen=True)
class Metric:
    """One metric: everything the evaluation, the summary table and the report need of it.

    ``compute(context)`` returns (N,) per-sample values (NaN where undefined) or raises
    :class:`MetricUnavailable`. ``definition`` is one sentence for the report; ``{encoder}``
    in it becomes the embedding encoder's name.
    """

    name: str
    compute: Callable[[MetricContext], np.ndarray]
    higher_is_better: bool
    definition: str
    protocols: tuple[str, ...] = PROTOCOLS

    def __post_init__(self):
        object.__setattr__(self, "protocols", tuple(self.protocols))
        unknown = [p for p in self.protocols if p not in PROTOCOLS]
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"a metric needs a name, got {self.name!r}")
        if not callable(self.compute):
            raise TypeError(f"metric {self.name!r}: compute must be a function of a MetricContext")
        if not isinstance(self.higher_is_better, bool):
            raise TypeError(f"metric {self.name!r}: higher_is_better must be True or False")
        if unknown or not self.protocols:
            raise ValueError(f"metric {self.name!r}: protocols must be some of {', '.join(PROTOCOLS)}, got {self.protocols}")

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"


_METRICS: dict[str, Metric] = {}
METRICS = MappingProxyType(_METRICS)  # read-only view, in registration order


def register_metric(metric: Metric, replace: bool = False) -> Metric:
    """Add ``metric`` to the registry; a name already there is refused unless ``replace``."""
    if not isinstance(metric, Metric):
        raise TypeError(f"register_metric takes a Metric, got {type(metric).__name__}")
    if metric.name in _METRICS and not replace:
        raise ValueError(f"a metric named {metric.name!r} is already registered "
                         f"(by {getattr(_METRICS[metric.name].compute, '__module__', '?')}); "
                         "pass replace=True to replace it")
    _METRICS[metric.name] = metric
    return metric


def unregister_metric(name: str) -> Metric:
    """Remove a metric (tests, plug-ins that replace a set); KeyError if it is not registered."""
    return _METRICS.pop(get_metric(name).name)


def get_metric(name: str) -> Metric:
    if name not in _METRICS:
        raise KeyError(f"no metric named {name!r}; registered: {', '.join(_METRICS)}")
    return _METRICS[name]


def metrics_for(protocol: str) -> list[Metric]:
    """The registered metrics that ``protocol`` reports, in registration order."""
    return [m for m in _METRICS.values() if protocol in m.protocols]


def higher_is_better(name: str) -> bool | None:
    """The better direction of a registered metric; None for a name the registry does not know."""
    metric = _METRICS.get(name)
    return None if metric is None else metric.higher_is_better
