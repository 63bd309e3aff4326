"""A plug-in from outside the package: one toy encoder, generator backend, metric and gate.

Imported by the command line through ``GESS_PLUGINS=toy_plugin`` (tests/test_plugins.py).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from gess.decoding.gating import Gate, GateInputs, register_gate
from gess.encoders import EncoderEntry, ImageEncoder, register_encoder
from gess.encoders.base import EncoderSpec, resize_tensor
from gess.evaluation.registry import Metric, register_metric
from gess.generation.backends import BackendEntry, default_scheduler, register_backend

SIDE = 8
MARKER = "toy-backend.json"


class PooledPixels(ImageEncoder):
    """Grey pixels pooled to 4 x 4: a 16-d, differentiable 'embedding'."""

    name = "toy-pixels"
    dim = 16

    def encode_tensor(self, images: torch.Tensor) -> torch.Tensor:
        return resize_tensor(images.mean(1, keepdim=True), 4).flatten(1)


class ConstantBackend:
    """A generator whose denoiser predicts no noise: the loop ends where its (clipped) start lies."""

    name = "toy"

    def __init__(self, directory: str, device=None):
        self.device = torch.device(device or "cpu")
        self.scheduler = default_scheduler()
        self.encoder_spec = EncoderSpec("toy-pixels", "toy-pixels", 16)
        self.source = directory

    @classmethod
    def from_pretrained(cls, source, device=None):
        return cls(str(source), device)

    def config(self) -> dict:
        return {"backend": self.name, "source": self.source}

    def latent_shape(self):
        return (3, SIDE, SIDE)

    def condition(self, c_prime, c=None, seeds=None):
        return torch.as_tensor(np.asarray(c_prime, np.float32), device=self.device)

    def predict_noise(self, z, t, cond):
        return torch.zeros_like(z) + 0.0 * cond.mean()

    def from_images(self, images):
        return resize_tensor(images.to(self.device).float(), SIDE) * 2 - 1

    def to_images(self, z):
        return (z + 1) / 2


class CentreDistanceGate(Gate):
    """Typicality: minus the distance of the decoded embedding from the training embeddings' mean, in ``scale``s."""

    name = "toy-centre-distance"

    def __init__(self, scale: float = 1.0, calibration: str = "conformal"):
        super().__init__(calibration)
        self.scale = scale

    def _fit_scorer(self, train, train_embeddings, cross_fitted):
        self.centre_ = train_embeddings.mean(0)
        return self.typicality(cross_fitted)  # reference: training samples decoded by ridges that never saw them

    def typicality(self, inputs: GateInputs) -> np.ndarray:
        return -np.linalg.norm(np.asarray(inputs.raw_embeddings, np.float32) - self.centre_, axis=1) / self.scale


def write_toy_generator(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text(json.dumps({"backend": "toy"}))
    return directory


def mean_absolute_error(ctx):
    gt, rec = ctx.ground_truth, torch.nn.functional.interpolate(ctx.reconstructions, size=ctx.ground_truth.shape[-2:],
                                                                mode="bilinear", align_corners=False)
    return (gt - rec).abs().flatten(1).mean(1).numpy()


register_encoder(EncoderEntry("toy-pixels", lambda source, device, batch_size: PooledPixels(device, batch_size)),
                 replace=True)
register_backend(BackendEntry("toy", ConstantBackend, lambda d: (d / MARKER).is_file()), replace=True)
register_metric(Metric("toy_mae", mean_absolute_error, higher_is_better=False,
                       definition="toy plug-in: mean absolute pixel difference (0 = identical)",
                       protocols=("paper", "mindeye", "brain-diffuser")), replace=True)
register_gate(CentreDistanceGate, replace=True)
