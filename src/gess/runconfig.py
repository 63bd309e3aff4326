"""The `gess run` configuration: the stages' own option dataclasses, nested and validated.

Nothing is declared twice: ``sampling``, ``cs``, ``gg``, ``structure`` and
``generator.training`` are :class:`~gess.generation.SamplingOptions`,
:class:`~gess.generation.CSOptions`, :class:`~gess.generation.GGOptions`,
:class:`~gess.decoding.structural.StructureOptions` and
:class:`~gess.generation.train.TrainOptions`; ``decoder`` is checked against
:class:`~gess.decoding.GESSDecoder`'s signature; ``dataset.simulated`` against
:class:`~gess.data.simulated.ImagePool` and :class:`~gess.data.simulated.SimulatedFMRIModel`.
A wrong key or a wrong type anywhere names the file and the key (exit status 2).

Relative paths in a config file are read relative to the config file when they
exist there, else to the working directory; ``$VARIABLES`` (for example
``$GESS_SHARED_DATA``) are expanded.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

from gess.data import FORMATS
from gess.data.simulated import ImagePool, SimulatedFMRIModel
from gess.decoding import GESSDecoder
from gess.decoding.gating import DEFAULT_GATE, check_gate
from gess.decoding.structural import StructureOptions
from gess.encoders import DEFAULT_ENCODER
from gess.errors import GessInputError
from gess.evaluation.metrics import PROTOCOLS
from gess.generation.cs import CSOptions
from gess.generation.backends import backend_entry
from gess.generation.gg import GGOptions
from gess.generation.methods import Method
from gess.generation.sampling import SamplingOptions
from gess.generation.train import TrainOptions
from gess.options import build, validated_kwargs


@dataclass
class DatasetConfig:
    path: str | None = None            # a dataset path (mat, god, nsd, folder) ...
    format: Literal[FORMATS] = "auto"
    options: dict = field(default_factory=dict)   # roi, image_dir, image_size, subject
    simulated: dict | None = None      # ... or ImagePool and SimulatedFMRIModel fields
    # images without fMRI from the stimulus domain (a folder or an .npz 'images' array): the pixel
    # prior's extra training pool and the self-supervised M_s's image cycle; never a test stimulus
    extra_images: str | None = None


@dataclass
class GeneratorConfig:
    backend: str = "pixel"             # a registered backend (gess.generation.backends.BACKENDS)
    path: str | None = None            # a trained prior / unCLIP directory; None: train a pixel prior
    training: TrainOptions = field(default_factory=TrainOptions)


@dataclass
class SplitConfig:
    kind: Literal["given", "generalized", "random"] = "given"  # generalized/random re-cut a simulated pool
    clusters: int = 20
    method: Literal["kernighan-lin", "stoer-wagner"] = "kernighan-lin"
    inside_test: int = 30              # held-out test images from the training side
    outside_test: int = 30             # test images from the other side
    seed: int = 0


@dataclass
class RunConfig:
    dataset: DatasetConfig
    encoder: str = DEFAULT_ENCODER
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    methods: list[Method] = field(default_factory=lambda: ["structure", "semantic", "cs-equal", "cs"])
    split: SplitConfig = field(default_factory=SplitConfig)
    protocol: Literal[PROTOCOLS] = "paper"
    seeds: list[int] = field(default_factory=lambda: [0])
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    structure: StructureOptions = field(default_factory=StructureOptions)
    decoder: dict = field(default_factory=dict)     # GESSDecoder parameters
    cs: CSOptions = field(default_factory=CSOptions)
    gg: GGOptions = field(default_factory=GGOptions)
    title: str = "gess run"
    device: str = "cpu"

    def simulation(self, source=None) -> tuple[ImagePool, SimulatedFMRIModel]:
        """The simulated experiment's pool and voxel model, from ``dataset.simulated``."""
        spec = dict(self.dataset.simulated or {})
        pool_keys = {f.name for f in fields(ImagePool)}
        model_keys = {f.name for f in fields(SimulatedFMRIModel)}
        unknown = sorted(set(spec) - pool_keys - model_keys)
        if unknown:
            raise GessInputError(source, f"dataset.simulated.{unknown[0]}",
                                 f"one of the keys {', '.join(sorted(pool_keys | model_keys))}", "an unknown key")
        pool = build(ImagePool, {k: v for k, v in spec.items() if k in pool_keys}, source, "dataset.simulated")
        model = build(SimulatedFMRIModel, {k: v for k, v in spec.items() if k in model_keys}, source, "dataset.simulated")
        return pool, model


def _resolve(value: str | None, base: Path | None) -> str | None:
    if value is None:
        return None
    value = os.path.expandvars(value)
    if base is not None and not Path(value).is_absolute() and (base / value).exists():
        return str(base / value)
    return value


def load_run_config(path: str | Path | dict) -> RunConfig:
    """Read and validate a run config (a YAML file, or a mapping)."""
    base = None
    if isinstance(path, dict):
        data, source = path, "config"
    else:
        import yaml

        path = Path(path)
        if not path.is_file():
            raise GessInputError(path, None, "an existing YAML config", "no such file")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise GessInputError(path, None, "valid YAML", str(exc).splitlines()[0]) from None
        source, base = path, path.resolve().parent
    if not isinstance(data, dict) or "dataset" not in data:
        raise GessInputError(source, "dataset", "a dataset section (path or simulated)", "nothing")
    cfg = build(RunConfig, data, source)
    validated_kwargs(GESSDecoder, cfg.decoder, source, "decoder")
    check_gate(cfg.decoder.get("gate", DEFAULT_GATE), cfg.decoder.get("gate_options"), source, "decoder.gate")
    if cfg.dataset.path is None and cfg.dataset.simulated is None:
        raise GessInputError(source, "dataset", "either dataset.path or dataset.simulated", "neither")
    if cfg.dataset.simulated is not None:
        cfg.simulation(source)
        if isinstance(cfg.dataset.simulated.get("images"), str) and cfg.dataset.simulated["images"] != "sklearn-digits":
            cfg.dataset.simulated["images"] = _resolve(cfg.dataset.simulated["images"], base)
    elif cfg.split.kind != "given":
        raise GessInputError(source, "split.kind", "'given' for a recorded dataset (the generalized split re-cuts "
                             "simulated experiments; use `gess split` to design a recording)", repr(cfg.split.kind))
    backend_entry(cfg.generator.backend, source)
    if not cfg.seeds:
        raise GessInputError(source, "seeds", "at least one sampling seed", "an empty list")
    negative = [seed for seed in cfg.seeds if seed < 0]
    if negative:  # as `gess reconstruct --seed`: a seed is a whole number from 0
        raise GessInputError(source, "seeds", "sampling seeds of at least 0", repr(negative[0]))
    if len(set(cfg.seeds)) != len(cfg.seeds):  # two runs of one seed would write the same folder twice
        raise GessInputError(source, "seeds", "distinct sampling seeds", repr(cfg.seeds))
    cfg.dataset.path = _resolve(cfg.dataset.path, base)
    cfg.generator.path = _resolve(cfg.generator.path, base)
    cfg.dataset.extra_images = _resolve(cfg.dataset.extra_images, base)
    return cfg
