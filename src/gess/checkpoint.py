"""Resumable training: checkpoints of modules, optimisers and the random state (safetensors + JSON, no pickle).

A checkpoint is a directory written atomically (``state.safetensors`` and
``state.json``); it records the options it was made with, and resuming with other
options is refused (bad input naming the first option that differs).
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import torch

from gess.errors import GessInputError
from gess.io import atomic_path, json_text, read_json
from gess.persistence import nest, unnest


def save_checkpoint(path: Path, modules: dict, optimizers: dict, generator: torch.Generator, step: int,
                    record: dict, options: dict) -> None:
    """Write ``path`` (a directory) atomically: every module's and optimiser's state, the RNG, ``record``."""
    from safetensors.torch import save_file

    tensors = {"rng.batches": generator.get_state()}
    for name, module in modules.items():
        tensors.update(nest(name, {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}))
    groups = {}
    for name, optimizer in optimizers.items():
        state = optimizer.state_dict()
        groups[name] = state["param_groups"]
        for pid, values in state["state"].items():
            for k, v in values.items():
                tensors[f"{name}.{pid}.{k}"] = torch.as_tensor(v).contiguous().cpu()
    with atomic_path(path) as tmp:
        tmp.mkdir()
        save_file(tensors, str(tmp / "state.safetensors"))
        # strict JSON (a diverged loss is written null, read back as NaN by load_checkpoint)
        (tmp / "state.json").write_text(json_text({"step": step, "param_groups": groups, "options": options, **record}))


def check_resumable(path: Path, options: dict) -> dict:
    """The checkpoint's record, or bad input naming the first option that differs from ``options``."""
    meta = read_json(path / "state.json")
    stored = meta.get("options", {})
    changed = sorted(k for k in set(options) | set(stored) if options.get(k) != stored.get(k))
    if changed:
        raise GessInputError(path, changed[0], f"{stored.get(changed[0])!r} to resume this checkpoint "
                             "(delete it to start over with other options)", repr(options.get(changed[0])))
    return meta


def load_checkpoint(path: Path, modules: dict, optimizers: dict, generator: torch.Generator,
                    options: dict) -> tuple[int, dict]:
    """Restore what :func:`save_checkpoint` wrote; returns (step, the record)."""
    from safetensors.torch import load_file

    meta = check_resumable(path, options)
    tensors = load_file(str(path / "state.safetensors"))
    generator.set_state(tensors.pop("rng.batches"))
    for name, module in modules.items():
        module.load_state_dict(unnest(name, tensors))
    for name, optimizer in optimizers.items():
        state: dict = {}
        for key, v in tensors.items():
            if key.startswith(f"{name}."):
                _, pid, field = key.split(".", 2)
                state.setdefault(int(pid), {})[field] = v
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"][name]})
    if "losses" in meta:
        meta["losses"] = _nan_for_null(meta["losses"])
    return int(meta["step"]), meta


def _nan_for_null(values):
    """Loss curves as saved, a NaN (written null in strict JSON) a NaN again."""
    if isinstance(values, dict):
        return {k: _nan_for_null(v) for k, v in values.items()}
    if isinstance(values, list):
        return [float("nan") if v is None else _nan_for_null(v) for v in values]
    return values


@contextmanager
def deferred_interrupts():
    """Within the block, SIGINT/SIGTERM only raise a flag (read by calling the yielded function)."""
    import signal
    import threading

    hit = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: hit.append(signum))
    try:
        yield lambda: bool(hit)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
