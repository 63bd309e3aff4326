"""Atomic file and directory writes, and safetensors + JSON persistence."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from gess.errors import GessInputError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place on success.

    A crash leaves no partial file under the final name. Works for files and
    for directories (the caller creates what it wants at the yielded path).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    target = tmp / path.name
    try:
        yield target
        if path.is_dir() and target.is_dir():
            backup = path.with_name(f".{path.name}.old")
            if backup.exists():
                shutil.rmtree(backup)
            os.replace(path, backup)
            os.replace(target, path)
            shutil.rmtree(backup)
        else:
            os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")


def read_json(path: str | Path) -> Any:
    """A JSON file; a truncated or unreadable one is bad input naming the file."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GessInputError(path, None, "a complete JSON file", f"unreadable JSON ({exc.__class__.__name__}: {exc})") from None


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def arrays_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of a safetensors file (read from its header only)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as fh:
            return fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise GessInputError(path, None, "a complete safetensors file", f"unreadable ({exc})") from None


def save_arrays(path: str | Path, arrays: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Save numpy arrays as one safetensors file, atomically."""
    from safetensors.numpy import save_file

    clean = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    with atomic_path(path) as tmp:
        save_file(clean, str(tmp), metadata=metadata)


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """A safetensors file as numpy arrays; a truncated or empty one is bad input naming the file."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise GessInputError(path, None, "a complete safetensors file", f"unreadable ({exc})") from None


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def claim_output_dir(path: str | Path, kind: str, is_ours, clean: bool = True) -> Path:
    """Make ``path`` ready for gess to write a ``kind`` into, without ever touching what a user put there.

    An absent or empty directory is fine; so is one ``is_ours(path)`` recognises as a
    gess ``kind`` (gess then replaces only its own files). Anything else is refused.
    Temporary files a killed writer left behind are removed. Unwritable places are
    bad input naming the path. Nothing is created.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise GessInputError(path, None, f"a directory for the {kind}", "a file")
    if path.is_dir():
        entries = [p for p in path.iterdir() if not _is_leftover(p) and not p.name.startswith(".gess.lock")]
        if entries and not is_ours(path):
            raise GessInputError(path, None, f"an empty directory or one gess wrote a {kind} into (gess never deletes "
                                 "files it did not write)", f"{len(entries)} other entries, e.g. {entries[0].name}")
        for stale in filter(_is_leftover, path.iterdir()) if clean else ():
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
    existing = path
    while not existing.exists():  # nothing is created here: a refused run leaves no trace
        existing = existing.parent
    if not existing.is_dir():
        raise GessInputError(path, None, "a path gess can create a directory at", f"{existing} is a file")
    try:
        probe = tempfile.NamedTemporaryFile(dir=existing, prefix=".gess-probe.", suffix=".tmp")
        probe.close()
    except OSError as exc:
        raise GessInputError(path, None, "a writable directory", f"{exc.strerror or exc}") from None
    return path


def _is_leftover(p: Path) -> bool:
    return p.name.startswith(".") and p.name.endswith(".tmp")


@contextmanager
def exclusive_lock(directory: str | Path, wait: bool = False, name: str = ".gess.lock") -> Iterator[Path]:
    """Hold ``directory/.gess.lock`` (an OS lock: released when the holder dies, so never stale).

    A second writer is refused with bad input naming the lock (or waits, with ``wait``).
    The processes of one launched group each hold their own (``name``).
    """
    import fcntl

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lock = directory / name
    with open(lock, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise GessInputError(lock, None, "no other gess process writing this directory",
                                 "it is locked by another gess process (wait for it to finish)") from None
        try:
            yield lock
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """``np.savez`` written atomically (no pickled objects)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
