"""Atomic file and directory writes, and safetensors + JSON persistence."""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
import shutil
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from gess.errors import GessInputError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place on success.

    A crash leaves no partial file under the final name. Works for files and
    for directories (the caller creates what it wants at the yielded path). The
    temporary's name says it is gess's and which process made it (:func:`_is_leftover`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{_temp_prefix()}{path.name}.", suffix=".tmp", dir=path.parent))
    target = tmp / path.name
    try:
        yield target
        _mark_claimed(path.parent)
        if path.is_dir() and target.is_dir():
            if not exchange_paths(target, path):  # the old directory ends up in our temporary, removed with it
                backup = tmp / f"{path.name}.old"  # no atomic exchange here: a kill between these loses the old one
                os.replace(path, backup)
                os.replace(target, path)
        else:
            os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def exchange_paths(a: str | Path, b: str | Path) -> bool:
    """Swap two existing paths in one step (Linux's renameat2 with RENAME_EXCHANGE), so that a kill leaves one
    or the other complete under each name; False where the system or the filesystem cannot (the caller renames)."""
    import ctypes
    import errno

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_cwd, rename_exchange = -100, 2
    if renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):  # kernel or filesystem without it
        return False
    raise OSError(code, os.strerror(code), str(b))


def write_json(path: str | Path, obj: Any) -> None:
    """``obj`` as strict JSON (:func:`json_text`), atomically."""
    text = json_text(obj, indent=2)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")


def json_text(obj: Any, indent: int | None = None) -> str:
    """``obj`` as strict JSON: NaN and infinities become null (most readers reject them), numpy values plain ones."""
    return json.dumps(_strict(obj), indent=indent, allow_nan=False)


def read_json(path: str | Path) -> Any:
    """A JSON file; a truncated or unreadable one is bad input naming the file."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GessInputError(path, None, "a complete JSON file", f"unreadable JSON ({exc.__class__.__name__}: {exc})") from None


def _strict(obj: Any) -> Any:
    """``obj`` made of JSON types only, a non-finite number as None."""
    if isinstance(obj, dict):
        return {k: _strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v) for v in obj]
    if isinstance(obj, (np.ndarray, np.generic)):
        return _strict(obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (str, int)):
        return obj
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


# ------------------------------------------------------------------ which directories are gess's
MARKER = ".gess-output.json"  # {"kind", "id", "gess_version"}: written only by gess, into what it writes
_TEMP = ".gess-tmp."
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
_CLAIMS: dict[Path, dict] = {}  # directories this process claimed: {"kind", "marked" (it wrote the marker)}


def claim_output_dir(path: str | Path, kind: str, clean: bool = True) -> Path:
    """Make ``path`` ready for gess to write a ``kind`` into, without ever touching what a user put there.

    An absent or empty directory is fine; so is one whose marker (:data:`MARKER`) says gess
    wrote a ``kind`` there, or an older gess's ``kind`` recognised by its contents
    (:func:`legacy_kind`). Anything else is refused. The first file gess completes in a
    claimed directory writes the marker; nothing is created here. Temporaries that a
    dead gess process left are removed.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise GessInputError(path, None, f"a directory for the {kind}", "a file")
    if path.is_dir():
        owner = output_kind(path)
        entries = [p for p in path.iterdir() if not _is_bookkeeping(p)]
        if owner != kind and (entries or owner is not None):
            got = f"a gess {owner} directory" if owner else \
                f"{len(entries)} other entries, e.g. {sorted(p.name for p in entries)[0]}"
            raise GessInputError(path, None, f"an empty directory or one gess wrote a {kind} into (gess never deletes "
                                 "files it did not write)", got)
        for stale in filter(_is_leftover, path.iterdir()) if clean else ():
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
    _check_creatable(path)
    _CLAIMS.setdefault(path.resolve(), {"marked": False})["kind"] = kind
    return path


FILE_KIND = "gess_output"  # in a JSON object or PNG text chunk gess wrote as a single --out file: which output it is


def claim_output_file(path: str | Path, kind: str, legacy: Callable[[Path], bool] | None = None) -> Path:
    """Make ``path`` ready for gess to write a ``kind`` file into, never replacing a file of the user's.

    An absent path is fine; so is a file whose :data:`FILE_KIND` says gess wrote a ``kind`` there,
    or one ``legacy`` recognises as an older gess's ``kind`` (written before files carried their
    kind). Anything else, a directory included, is refused before any work is done.
    """
    path = Path(path)
    if path.is_dir():
        raise GessInputError(path, None, f"a file path for the {kind}", "a directory")
    if path.exists():
        found = file_kind(path)
        if found != kind and not (found is None and legacy is not None and legacy(path)):
            raise GessInputError(path, None, f"a new file or a {kind} gess wrote there before (gess never overwrites "
                                 "files it did not write)", f"a gess {found}" if found else "a file gess did not write")
    _check_creatable(path.parent)
    return path


def file_kind(path: str | Path) -> str | None:
    """The kind a single file gess wrote says it is (a JSON object's or a PNG's :data:`FILE_KIND`), else None."""
    path = Path(path)
    if path.suffix.lower() == ".png":
        return png_text(path).get(FILE_KIND)
    content = _json_or_none(path)
    kind = content.get(FILE_KIND) if isinstance(content, dict) else None
    return kind if isinstance(kind, str) else None


def png_text(path: str | Path) -> dict[str, str]:
    """A PNG's text chunks ({} for a file that is not a readable PNG)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return dict(getattr(image, "text", {}) or {})
    except (OSError, UnidentifiedImageError, ValueError):
        return {}


def write_owned_json(path: str | Path, obj: dict, kind: str) -> None:
    """Write ``obj`` atomically with its :data:`FILE_KIND`, so a later run knows the file is gess's to replace."""
    write_json(path, {**obj, FILE_KIND: kind})


def output_kind(directory: str | Path) -> str | None:
    """What gess wrote into ``directory``: its marker's kind, else an older gess's output recognised, else None."""
    directory = Path(directory)
    marker = directory / MARKER
    if not marker.is_file():
        return legacy_kind(directory)
    content = read_json(marker)
    if not isinstance(content, dict) or not isinstance(content.get("kind"), str):
        raise GessInputError(marker, "kind", "gess's output marker ({\"kind\": ..., \"id\": ...})", repr(content)[:80])
    return content["kind"]


def legacy_kind(directory: Path) -> str | None:
    """The output an older gess (without markers) wrote into ``directory``, told by what its files hold."""
    config = _json_or_none(directory / "config.json")
    if isinstance(config, dict):
        name = config.get("_class_name")
        if name == "GESSDecoder" or (name is None and "gess_version" in config and "params" in config):  # 0.1
            return "model"
        if name == "PixelPrior":
            return "pixel prior"
    if _legacy_reconstructions(directory):
        return "reconstruction"
    if _legacy_decoded(directory):
        return "decoded"
    progress, prepared = _json_or_none(directory / "progress.json"), _json_or_none(directory / "manifest.json")
    if (isinstance(progress, dict) and {"record", "done"} <= set(progress)) or \
            (isinstance(prepared, dict) and {"subject", "files", "voxels"} <= set(prepared)):
        return "prepared NSD subject"
    if (directory / "model").is_dir() and legacy_kind(directory / "model") == "model":
        metrics = _json_or_none(directory / "metrics.json")
        ours = isinstance(metrics, dict) and {"protocol", "methods", "pi_c"} <= set(metrics)
        if ours or not ((directory / "metrics.json").exists() or (directory / "report.html").exists()):
            return "run"  # its model, and its own metrics beside any report
    return None


def _legacy_reconstructions(directory: Path) -> bool:
    """``manifest.json`` (and any per-process parts) each a non-empty list of entries with stimulus_id and file."""
    parts = [p for p in sorted(directory.glob("manifest.part*.json")) if re.fullmatch(r"manifest\.part\d+\.json", p.name)]
    found = [_json_or_none(m) for m in [directory / "manifest.json", *parts] if m.is_file()]
    return bool(found) and all(isinstance(m, list) and m and all(
        isinstance(e, dict) and isinstance(e.get("stimulus_id"), str) and isinstance(e.get("file"), str) for e in m)
        for m in found)


def _legacy_decoded(directory: Path) -> bool:
    """Only a ``decoded.npz`` holding ``c_prime`` and ``pi_c`` (what `gess decode` wrote before it marked its directory)."""
    entries = [p for p in directory.iterdir() if not _is_bookkeeping(p)] if directory.is_dir() else []
    if [p.name for p in entries] != ["decoded.npz"]:
        return False
    try:
        with np.load(entries[0], allow_pickle=False) as z:
            return {"c_prime", "pi_c", "stimulus_ids"} <= set(z.files)
    except (OSError, ValueError):
        return False


def _json_or_none(path: Path) -> Any:
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None


def _check_creatable(path: Path) -> None:
    """Bad input naming ``path`` unless gess can create files there (nothing is left behind)."""
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise GessInputError(path, None, "a path gess can create a directory at", f"{existing} is a file")
    try:
        probe = tempfile.NamedTemporaryFile(dir=existing, prefix=f"{_temp_prefix()}probe.", suffix=".tmp")
        probe.close()
    except OSError as exc:
        raise GessInputError(path, None, "a writable directory", f"{exc.strerror or exc}") from None


def _mark_claimed(directory: Path) -> None:
    """Write the marker into ``directory`` and every claimed directory above it that lacks one."""
    if not _CLAIMS:
        return
    for d in (directory.resolve(), *directory.resolve().parents):
        claim = _CLAIMS.get(d)
        if claim is not None and not (d / MARKER).is_file() and d.is_dir():
            from gess.persistence import version

            text = json.dumps({"kind": claim["kind"], "id": secrets.token_hex(8), "gess_version": version()})
            fd, tmp = tempfile.mkstemp(prefix=f"{_temp_prefix()}{MARKER}.", suffix=".tmp", dir=d)
            with os.fdopen(fd, "w") as fh:
                fh.write(text + "\n")
            os.replace(tmp, d / MARKER)
            claim["marked"] = True


def _temp_prefix() -> str:
    """The start of every temporary gess makes: gess's prefix, this host and this process."""
    return f"{_TEMP}{_HOST}-{os.getpid()}."


def _is_leftover(p: Path) -> bool:
    """Whether ``p`` is a temporary of a gess process of this host that is no longer running (never a user's file)."""
    if not (p.name.startswith(_TEMP) and p.name.endswith(".tmp")):
        return False
    host, _, pid = p.name[len(_TEMP):].partition(".")[0].partition("-")
    if host != _HOST or not pid.isdigit():
        return False  # another machine's, or not ours: left alone
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _is_bookkeeping(p: Path) -> bool:
    """gess's lock files, marker and temporaries: not a reason to refuse a directory."""
    return p.name.startswith(".gess.lock") or p.name == MARKER or (p.name.startswith(_TEMP) and p.name.endswith(".tmp"))


@contextmanager
def exclusive_lock(directory: str | Path, wait: bool = False, name: str = ".gess.lock") -> Iterator[Path]:
    """Hold ``directory/.gess.lock`` (an OS lock: released when the holder dies, so never stale).

    A second writer is refused with bad input naming the lock (or waits, with ``wait``).
    The processes of one launched group each hold their own (``name``). A claimed
    directory gets its marker here; when the work fails before writing anything, the
    lock, the marker and the directory this call made are removed again.
    """
    import fcntl

    directory = Path(directory)
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    lock = directory / name
    new_lock = not lock.exists()
    with open(lock, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise GessInputError(lock, None, "no other gess process writing this directory",
                                 "it is locked by another gess process (wait for it to finish)") from None
        try:
            _mark_claimed(directory)
            yield lock
        except BaseException:
            _undo_if_empty(directory, lock if new_lock else None, created)
            raise
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _undo_if_empty(directory: Path, lock: Path | None, created: bool) -> None:
    """After a failure: remove what this process made in ``directory`` when it wrote nothing else there."""
    if any(not (p.name.startswith(".gess.lock") or p.name == MARKER) for p in directory.iterdir()):
        return
    claim = _CLAIMS.get(directory.resolve())
    if claim is not None and claim["marked"]:
        (directory / MARKER).unlink(missing_ok=True)
        claim["marked"] = False
    if lock is not None:
        lock.unlink(missing_ok=True)
    if created:
        try:
            directory.rmdir()
        except OSError:
            pass  # another process's lock is still there


def save_npy(path: str | Path, array: np.ndarray) -> None:
    """``np.save`` written atomically (no pickled objects)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(array), allow_pickle=False)


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """``np.savez`` written atomically (no pickled objects)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
