"""Generator backends behind one interface (:class:`GeneratorBackend`), found in one registry.

One file per backend: ``pixel.py`` (the small prior ``gess prior train`` makes) and
``unclip.py`` (Stable Diffusion 2.1 unCLIP). A new backend is a class implementing
:class:`GeneratorBackend` in its own file and one call,
``register_backend(BackendEntry("name", "package.module:Class", recognises))``.
"""
from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import torch

from gess.device import resolve_device
from gess.encoders.base import EncoderSpec
from gess.errors import GessInputError, MissingWeightsError
from gess.io import read_json
from gess.registry import Registry
from gess.weights import is_hub_id

SCHEDULER_NAME = "scheduler_config.json"
# SamplingOptions.scheduler: "ddim", the paper's DDIM on the backend's noise schedule (backend.scheduler);
# "model", the scheduler class the generator's saved scheduler config names (its ``_class_name``)
SCHEDULERS = ("ddim", "model")


class GeneratorBackend(Protocol):
    """Every member gess uses of a generator: the sampling loop, CS, GG and the stages."""

    name: str                    # the registered name, recorded in manifests and run configs
    device: torch.device
    scheduler: object            # a diffusers scheduler (set_timesteps, step, timesteps, alphas_cumprod, config)
    encoder_spec: EncoderSpec    # whose embeddings condition it (checked against the decoders')
    # optional: ``saved_scheduler_config`` (dict), the scheduler config saved with the weights, read by
    # ``--scheduler model``; load_backend sets it from the directory (or hub cache) when the backend does not

    @classmethod
    def from_pretrained(cls, source: str | Path, device: str | None = None) -> "GeneratorBackend": ...
    def config(self) -> dict: ...                                    # JSON description (enters fingerprints)
    def latent_shape(self) -> tuple[int, ...]: ...                   # (C, H, W) of the space sampled in
    def condition(self, c_prime: np.ndarray, c: np.ndarray | None = None,
                  seeds: list[int] | None = None) -> torch.Tensor: ...  # seeds: one per sample, for noise it draws
    def predict_noise(self, z: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor: ...
    def from_images(self, images: torch.Tensor) -> torch.Tensor: ...  # (N, C, H, W) in [0, 1] -> its space
    def to_images(self, z: torch.Tensor) -> torch.Tensor: ...         # its space -> (N, 3, H, W) in [0, 1]; differentiable
    # ``image_size`` (int): the pixel side, needed only when M_s predicts its latents (structure kind: latent)
    # ``default_guidance_scale`` (float), optional: the scale used when sampling asks for none (else 5)


@dataclass(frozen=True)
class BackendEntry:
    """One generator backend.

    name : what run configs (``generator.backend``) call it.
    cls : the class, or ``"module:Class"`` imported on first use (``import gess`` stays fast).
    recognises : whether a local directory holds this backend's weights.
    hub_ids : whether ``owner/name`` hub ids (from the local cache) are this backend's.
    trainable : whether ``gess prior train`` makes it (runs train it on the spot when no path is given).
    """

    name: str
    cls: type | str
    recognises: Callable[[Path], bool]
    hub_ids: bool = False
    trainable: bool = False

    def load(self, source: str | Path, device: str | None = None) -> GeneratorBackend:
        cls = self.cls
        if isinstance(cls, str):
            module, _, attr = cls.partition(":")
            cls = getattr(importlib.import_module(module), attr)
        return cls.from_pretrained(source, device=device)


BACKENDS: Registry[BackendEntry] = Registry("generator backend")


def register_backend(entry: BackendEntry, replace: bool = False) -> BackendEntry:
    """Make a backend known to ``load_backend``, ``gess reconstruct`` and run configs."""
    return BACKENDS.register(entry.name, entry, replace)


def backend_entry(name: str, source=None) -> BackendEntry:
    if name not in BACKENDS:
        raise GessInputError(source, "generator.backend", f"one of {', '.join(BACKENDS)}", repr(name))
    return BACKENDS[name]


def find_backend(source: str | Path) -> BackendEntry:
    """The backend whose weights ``source`` holds (a directory it recognises, or a hub id); refused when none."""
    directory = Path(str(source))
    for entry in BACKENDS.values():
        if directory.is_dir() and entry.recognises(directory):
            return entry
    if is_hub_id(str(source)):
        for entry in BACKENDS.values():
            if entry.hub_ids:
                return entry
    config = directory / "config.json"
    if directory.is_dir() and config.is_file():  # a config no backend claims: say what it is (unreadable JSON, too)
        found = read_json(config)
        raise GessInputError(config, "_class_name", f"the config of a generator of one of the backends {', '.join(BACKENDS)}",
                             repr(found.get("_class_name") if isinstance(found, dict) else found))
    raise MissingWeightsError("a generator", str(source), "train a pixel prior with `gess prior train`, or pass the "
                              f"directory of a generator of one of the backends {', '.join(BACKENDS)}")


def load_backend(source: str | Path, device: str | None = None, name: str | None = None) -> GeneratorBackend:
    """Open a generator: a directory a registered backend recognises, or a hub id; ``name`` is checked against it.

    ``device`` None: the process device (:func:`gess.device.get_device`).
    """
    entry = find_backend(source)
    if name is not None and entry.name != name:
        raise GessInputError(source, "generator.backend", f"a '{name}' generator", f"a '{entry.name}' one")
    backend = entry.load(source, resolve_device(device))
    if getattr(backend, "saved_scheduler_config", None) is None:
        found = saved_scheduler_config(source)
        try:
            if found is not None:
                backend.saved_scheduler_config, backend.saved_scheduler_path = found
        except AttributeError:  # a backend that takes no attributes: --scheduler model reads its own scheduler
            pass
    return backend


def default_scheduler():
    from diffusers import DDIMScheduler

    return DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", clip_sample=True,
                         set_alpha_to_one=True, prediction_type="epsilon")


def saved_scheduler_config(source: str | Path) -> tuple[dict, str] | None:
    """(config, where) of the scheduler saved with a generator: ``scheduler_config.json`` beside a pixel
    prior, ``scheduler/scheduler_config.json`` in a diffusers pipeline directory or, for a hub id, in the
    local hub cache; None when there is none (or it is unreadable: ``--scheduler model`` then says so)."""
    directory = Path(str(source))
    candidates = [directory / SCHEDULER_NAME, directory / "scheduler" / SCHEDULER_NAME]
    if not directory.is_dir() and is_hub_id(str(source)):
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(str(source), f"scheduler/{SCHEDULER_NAME}")
        except Exception:  # no hub client or an odd cache: no saved config, never a download
            cached = None
        candidates = [Path(cached)] if isinstance(cached, str) else []
    for path in candidates:
        if path.is_file():
            try:
                config = json.loads(path.read_text())
            except (OSError, ValueError):
                return None
            return (config, str(path)) if isinstance(config, dict) else None
    return None


def sampling_scheduler(backend: GeneratorBackend, choice: str = "ddim"):
    """The scheduler :func:`gess.generation.sampling.sample` steps with, for ``SamplingOptions.scheduler``.

    ``ddim``: ``backend.scheduler`` itself (the paper's DDIM on the backend's noise schedule).
    ``model``: a new scheduler of the class the saved config names (``_class_name``; a config without one, as
    ``gess prior train`` writes, is the backend's own DDIM), made by diffusers from that config. Only a
    scheduler in the space gess samples in is accepted: ``alphas_cumprod`` and ``add_noise`` (CS noises its
    reference, GG reads x0 through alpha-bar) and unit initial noise (DDPM, DDIM, DPM-Solver, UniPC, PNDM,
    DEIS, ...); sigma-space ones (Euler, Heun, LMS, KDPM2) are refused.
    """
    if choice == "ddim":
        return backend.scheduler
    if choice not in SCHEDULERS:
        raise GessInputError(None, "scheduler", f"one of {', '.join(SCHEDULERS)}", repr(choice))
    where = getattr(backend, "saved_scheduler_path", None)
    config = getattr(backend, "saved_scheduler_config", None)
    if config is None:  # a backend made in Python, or saved without a scheduler config: its own, as configured
        config = {**dict(backend.scheduler.config), "_class_name": type(backend.scheduler).__name__}
    name = config.get("_class_name") or type(backend.scheduler).__name__
    import diffusers

    cls = getattr(diffusers, str(name), None) if str(name).endswith("Scheduler") else None
    if cls is None or not hasattr(cls, "from_config"):
        raise GessInputError(where, "_class_name", "a diffusers scheduler class (for --scheduler model)", repr(name))
    scheduler = cls.from_config(config)
    sigma = getattr(scheduler, "init_noise_sigma", 1.0)
    if not (hasattr(scheduler, "alphas_cumprod") and hasattr(scheduler, "add_noise")) or float(sigma) != 1.0:
        raise GessInputError(where, "_class_name", "a scheduler on the alpha-bar noise schedule gess samples with "
                             "(DDIM, DDPM, DPMSolverMultistep, UniPC, PNDM, ...; CS and GG need alphas_cumprod and "
                             "unit initial noise), or --scheduler ddim", f"{name} (a sigma-space scheduler)")
    return scheduler


def _saved_class(directory: Path) -> str | None:
    """The ``_class_name`` a gess or diffusers ``config.json`` records (None when unreadable)."""
    try:
        config = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return config.get("_class_name") if isinstance(config, dict) else None


register_backend(BackendEntry("pixel", "gess.generation.backends.pixel:PixelBackend",
                              lambda d: _saved_class(d) == "PixelPrior",
                              trainable=True))
register_backend(BackendEntry("unclip", "gess.generation.backends.unclip:UnCLIPBackend",
                              lambda d: (d / "model_index.json").is_file(), hub_ids=True))
