"""The one torch device of the process, chosen here and read where tensors are made (himalaya's backend rule).

``GESS_DEVICE`` (default ``cpu``) is the device until :func:`set_device` chooses
another; :func:`using_device` chooses one for a block. Components that take a
``device`` argument treat None as "the process device", :func:`get_device`.
"""
from __future__ import annotations

import functools
import os
from contextlib import contextmanager
from typing import Iterator

from gess.errors import GessInputError

ENV = "GESS_DEVICE"
DEFAULT = "cpu"
_chosen: list[str] = []  # the device set_device chose (empty: GESS_DEVICE's)


@functools.lru_cache(maxsize=16)
def _validated(name: str, where: str) -> str:
    import torch

    try:
        torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        file, field = (ENV, None) if where == ENV else (None, where)  # the variable, or the option
        raise GessInputError(file, field, "a torch device (cpu, cuda, cuda:1, mps)", repr(name)) from None
    return name


def validate_device(name: str, where: str = "device") -> str:
    """``name`` when torch knows it, else bad input naming ``where`` (an option, or ``GESS_DEVICE``)."""
    if not isinstance(name, str):
        raise GessInputError(None, where, "a torch device name (cpu, cuda, cuda:1, mps)", repr(name))
    return _validated(name, where)


def get_device() -> str:
    """The process device: what :func:`set_device` chose, else ``GESS_DEVICE``, else ``cpu``."""
    if _chosen:
        return _chosen[-1]
    return validate_device(os.environ.get(ENV) or DEFAULT, ENV)


def set_device(name: str | None) -> str:
    """Choose the process device (None: back to ``GESS_DEVICE``); returns it."""
    _chosen[:] = [] if name is None else [validate_device(name)]
    return get_device()


def resolve_device(device: str | None = None) -> str:
    """``device`` validated, or the process device when None."""
    return get_device() if device is None else validate_device(device)


@contextmanager
def using_device(name: str | None) -> Iterator[str]:
    """Within the block, :func:`get_device` is ``name`` (None: left as it is)."""
    if name is None:
        yield get_device()
        return
    previous = list(_chosen)
    _chosen[:] = [validate_device(name)]
    try:
        yield _chosen[-1]
    finally:
        _chosen[:] = previous
