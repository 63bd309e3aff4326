"""The `gess run` configuration: validated, with clear errors on unknown or missing keys."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from gess.errors import GessInputError

METHOD_NAMES = ("structure", "semantic", "cs-equal", "cs", "gg", "knn")


@dataclass
class DatasetConfig:
    path: str | None = None            # a dataset path (mat, god, nsd, folder) ...
    format: str = "auto"
    options: dict = field(default_factory=dict)   # roi, image_dir, image_size, subject
    simulated: dict | None = None      # ... or {images: sklearn-digits | DIR, n_per_class, snr, ...}


@dataclass
class GeneratorConfig:
    backend: str = "pixel"             # pixel | unclip
    path: str | None = None            # a trained prior / unCLIP directory; None: train a pixel prior
    train_steps: int = 1200
    image_size: int = 32


@dataclass
class SplitConfig:
    kind: str = "given"                # given | generalized
    clusters: int = 20
    method: str = "kernighan-lin"
    inside_test: int = 30              # generalized: held-out test images from the training side
    outside_test: int = 30             # generalized: test images from the other side
    seed: int = 0


@dataclass
class RunConfig:
    dataset: DatasetConfig
    encoder: str = "efficientnet-lite0"
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    methods: list = field(default_factory=lambda: ["structure", "semantic", "cs-equal", "cs"])
    split: SplitConfig = field(default_factory=SplitConfig)
    protocol: str = "paper"
    seeds: list = field(default_factory=lambda: [0])
    steps: int = 50
    guidance_scale: float = 5.0
    structure_size: int | None = None
    decoder: dict = field(default_factory=dict)
    cs: dict = field(default_factory=dict)
    gg: dict = field(default_factory=dict)
    title: str = "gess run"
    device: str = "cpu"


def _build(cls, data: dict, where: str, source):
    if not isinstance(data, dict):
        raise GessInputError(source, where, "a mapping", type(data).__name__)
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise GessInputError(source, f"{where}.{unknown[0]}" if where else unknown[0], f"one of the keys {', '.join(known)}", "an unknown key")
    kwargs = {}
    nested = {"dataset": DatasetConfig, "generator": GeneratorConfig, "split": SplitConfig}
    for k, v in data.items():
        kwargs[k] = _build(nested[k], v, f"{where}.{k}" if where else k, source) if k in nested and cls is RunConfig else v
    try:
        return cls(**kwargs)
    except TypeError as exc:
        missing = str(exc).split("argument")[-1].strip(": '")
        raise GessInputError(source, f"{where}.{missing}" if where else missing, "a value", "nothing") from None


def load_run_config(path: str | Path | dict) -> RunConfig:
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
        source = path
    if "dataset" not in (data or {}):
        raise GessInputError(source, "dataset", "a dataset section (path or simulated)", "nothing")
    cfg = _build(RunConfig, data, "", source)
    bad = [m for m in cfg.methods if m not in METHOD_NAMES]
    if bad:
        raise GessInputError(source, "methods", f"names among {', '.join(METHOD_NAMES)}", repr(bad[0]))
    if cfg.dataset.path is None and cfg.dataset.simulated is None:
        raise GessInputError(source, "dataset", "either dataset.path or dataset.simulated", "neither")
    if cfg.split.kind not in ("given", "generalized"):
        raise GessInputError(source, "split.kind", "'given' or 'generalized'", repr(cfg.split.kind))
    return cfg
