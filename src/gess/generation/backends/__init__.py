"""Generator backends behind one interface: a scheduler, a noise predictor and image <-> space maps.

One file per backend: ``pixel.py`` (the small prior ``gess prior train`` makes) and
``unclip.py`` (Stable Diffusion 2.1 unCLIP). What the sampling loop needs of a
backend is :class:`gess.generation.sampling.Backend`; what the stages need besides
is ``name``, ``device``, ``encoder_spec``, ``config()``, ``condition``,
``to_images`` and ``from_images``.
"""
from __future__ import annotations

from pathlib import Path

from gess.errors import MissingWeightsError

SCHEDULER_NAME = "scheduler_config.json"


def default_scheduler():
    from diffusers import DDIMScheduler

    return DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", clip_sample=True,
                         set_alpha_to_one=True, prediction_type="epsilon")


def load_backend(directory: str | Path, device: str = "cpu"):
    """Open a generator directory: a trained pixel prior, or a Stable unCLIP model (``model_index.json``)."""
    directory = Path(directory)
    if (directory / "model_index.json").is_file() or str(directory).count("/") == 1 and not directory.exists():
        from gess.generation.backends.unclip import UnCLIPBackend

        return UnCLIPBackend.from_pretrained(str(directory), device=device)
    if (directory / "config.json").is_file():
        from gess.generation.backends.pixel import PixelBackend

        return PixelBackend.from_pretrained(directory, device)
    raise MissingWeightsError("a generator", str(directory),
                              "train a pixel prior with `gess prior train`, or pass a Stable unCLIP directory")
