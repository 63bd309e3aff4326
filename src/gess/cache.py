"""Content-keyed cache of computed arrays (features of images), so re-runs skip finished work."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from gess.io import save_npz


def cache_dir() -> Path:
    """``$GESS_CACHE``, else ``$XDG_CACHE_HOME/gess``, else ``~/.cache/gess``."""
    root = os.environ.get("GESS_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gess"
    return Path(root)


def fingerprint(*parts) -> str:
    """A short hash of arrays, strings, numbers and dicts."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(str((part.shape, str(part.dtype))).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()[:20]


def cached_array(kind: str, key: str, compute: Callable[[], np.ndarray], enabled: bool = True) -> np.ndarray:
    """Return the cached array for (kind, key), computing and storing it on a miss."""
    if not enabled:
        return compute()
    path = cache_dir() / kind / f"{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                return z["array"]
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # a damaged entry is recomputed
    array = compute()
    save_npz(path, array=array)
    return array
