"""One rule for everything gess saves: ``config.json`` beside ``model.safetensors``.

As diffusers' ``ConfigMixin`` and scikit-learn's ``get_params``: a component's config
is its constructor's arguments (:class:`Component`, :func:`init_config`), its fitted
arrays are its state. :func:`save_component` writes the arrays, then the config
with ``_class_name``, ``gess_version`` and a save id that the weights' metadata
repeats; :func:`load_component` reads both back and refuses weights of another save.

The save id is a digest of the arrays, so saving the same weights twice writes the
same bytes (a resumed training ends bit-identical to an uninterrupted one).
"""
from __future__ import annotations

import functools
import hashlib
import inspect
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from gess.errors import GessInputError
from gess.io import arrays_metadata, load_arrays, read_json, save_arrays, write_json

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
_RESERVED = ("_class_name", "gess_version", "save_id")


@functools.lru_cache(maxsize=1)
def version() -> str:
    """gess's version, as its package metadata declares it (pyproject.toml); ``0+unknown`` when not installed."""
    from importlib.metadata import PackageNotFoundError, version as package_version

    try:
        return package_version("gess")
    except PackageNotFoundError:
        return "0+unknown"


# ------------------------------------------------------------------ configs from constructors
def init_params(cls) -> list[str]:
    """The names of ``cls.__init__``'s arguments (what a config holds)."""
    return [p.name for p in inspect.signature(cls.__init__).parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def plain(value: Any) -> Any:
    """A config value as JSON keeps it (tuples as lists)."""
    return list(value) if isinstance(value, tuple) else value


def init_config(cls, values: Mapping[str, Any], skip: tuple[str, ...] = ()) -> dict:
    """``cls``'s constructor arguments taken from ``values`` (an instance's attributes, or ``locals()``)."""
    return {name: plain(values[name]) for name in init_params(cls) if name not in skip}


def config_args(cls, config: Mapping[str, Any]) -> dict:
    """The entries of a stored config that ``cls``'s constructor takes."""
    names = set(init_params(cls))
    return {k: v for k, v in config.items() if k in names}


class Component:
    """A saved part: ``config()`` is its constructor's arguments, ``state()`` its fitted arrays.

    ``state()`` defaults to the numpy attributes ending in ``_`` (scikit-learn's fitted
    attributes); ``not_config`` names constructor arguments that are not saved
    (loaded objects, passed again to :meth:`from_config`).
    """

    not_config: tuple[str, ...] = ()

    def config(self) -> dict:
        return init_config(type(self), vars(self), self.not_config)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **objects):
        return cls(**config_args(cls, config), **objects)

    def state(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in vars(self).items() if k.endswith("_") and isinstance(v, np.ndarray)}

    def load_state(self, arrays: Mapping[str, np.ndarray]):
        for k, v in arrays.items():
            setattr(self, k, v)
        return self

    @classmethod
    def from_state(cls, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray]):
        return cls.from_config(config).load_state(arrays)


# ------------------------------------------------------------------ arrays
def nest(prefix: str, arrays: Mapping[str, Any]) -> dict:
    """``arrays`` with names ``prefix.name`` (one file holds several components)."""
    return {f"{prefix}.{k}": v for k, v in arrays.items()}


def unnest(prefix: str, arrays: Mapping[str, Any]) -> dict:
    """The arrays named ``prefix.name``, as ``name``."""
    start = f"{prefix}."
    return {k[len(start):]: v for k, v in arrays.items() if k.startswith(start)}


def module_state(module) -> dict[str, np.ndarray]:
    """A torch module's state dict as numpy arrays."""
    return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def load_module_state(module, arrays: Mapping[str, np.ndarray]):
    """Load numpy arrays into a torch module (strict); returns the module."""
    import torch

    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})
    return module


def save_id(arrays: Mapping[str, np.ndarray]) -> str:
    """A digest of the arrays (names, dtypes, shapes and bytes): the id config and weights share."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.reshape(-1).view(np.uint8))
    return h.hexdigest()[:32]


# ------------------------------------------------------------------ files
def save_component(directory: str | Path, class_name: str, config: Mapping[str, Any],
                   arrays: Mapping[str, np.ndarray]) -> str:
    """Write ``model.safetensors`` then ``config.json`` into ``directory``, each atomically; returns the save id.

    ``config.json`` gets ``_class_name``, ``gess_version`` and ``save_id`` besides ``config``.
    """
    clash = [k for k in _RESERVED if k in config]
    if clash:
        raise ValueError(f"{clash[0]} is written by save_component, not by the component")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    clean = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    sid = save_id(clean)
    save_arrays(directory / WEIGHTS_NAME, clean, metadata={"save_id": sid})
    write_json(directory / CONFIG_NAME, {"_class_name": class_name, "gess_version": version(), **config, "save_id": sid})
    return sid


def load_component(directory: str | Path, class_name: str, what: str | None = None, missing: Exception | None = None,
                   untagged: bool = False, command: str = "gess fit") -> tuple[dict, dict[str, np.ndarray]]:
    """Read what :func:`save_component` wrote: (config, arrays).

    Absent files raise ``missing`` (default: bad input naming ``what``); a config of
    another class, or weights of another save, are bad input naming the file.
    ``untagged`` accepts a config without ``_class_name`` (gess 0.1); ``command`` is
    what rewrites the directory (said when the weights belong to another save).
    """
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    if not config_path.is_file() or not weights_path.is_file():
        raise missing or GessInputError(directory, None, f"{what or 'a saved ' + class_name} ({CONFIG_NAME} and "
                                        f"{WEIGHTS_NAME})", "missing files")
    config = _read_config(config_path)
    name = config.get("_class_name", class_name if untagged else None)
    if name != class_name:
        raise GessInputError(config_path, "_class_name", f"a gess {class_name} config", repr(config.get("_class_name")))
    expected = config.get("save_id")
    if expected and arrays_metadata(weights_path).get("save_id") != expected:
        raise GessInputError(weights_path, "save_id", f"the weights of {CONFIG_NAME} (save {expected[:8]})",
                             f"weights of another save (an interrupted `{command}`? run it again)")
    return config, load_arrays(weights_path)


def _read_config(path: Path) -> dict:
    config = read_json(path)
    if not isinstance(config, dict):
        raise GessInputError(path, None, "a mapping of config entries", type(config).__name__)
    return config
