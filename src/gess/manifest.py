"""A reconstruction directory: ``<stimulus_id>.png`` per test stimulus and ``manifest.json`` describing each.

Under a launcher every process writes its entries into ``manifest.part<i>.json``; the
main process folds the parts into ``manifest.json`` (also after an interrupted run).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from gess.errors import GessInputError
from gess.io import atomic_path, read_json, write_json

MANIFEST = "manifest.json"
PART_PATTERN = "manifest.part*.json"
_PART = re.compile(r"manifest\.part\d+\.json")  # exactly the names write_part gives
CANDIDATES_DIR = "candidates"  # every candidate of best-of-N, as <stimulus_id>.<index>.png


def write_png(path: Path, image: np.ndarray) -> None:
    """A uint8 (H, W, 1|3) image as a PNG, atomically."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(tmp, format="PNG")


def read_png(path: Path) -> np.ndarray:
    """A PNG :func:`write_png` wrote, as uint8 (H, W, 1|3)."""
    from PIL import Image

    with Image.open(path) as im:
        image = np.asarray(im)
    return image[..., None] if image.ndim == 2 else image


class Manifest:
    """The entries of one reconstruction directory, by stimulus id."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def parts(self) -> list[Path]:
        """The per-process parts of a multi-process run not yet merged (only names gess gives them)."""
        return sorted(p for p in self.directory.glob(PART_PATTERN) if _PART.fullmatch(p.name))

    def has_parts(self) -> bool:
        return bool(self.parts())

    def read(self) -> dict:
        """Entries of ``manifest.json`` and of any per-process parts (a multi-process run not yet merged).

        A file that is not a list of entries, each with a ``stimulus_id`` and a ``file`` inside
        this directory (a hand-edited or foreign manifest), is bad input naming the entry.
        """
        path = self.directory / MANIFEST
        entries = {m["stimulus_id"]: m for m in self._entries(path)} if path.is_file() else {}
        for part in self.parts():
            entries.update({m["stimulus_id"]: m for m in self._entries(part)})
        return entries

    def _entries(self, path: Path) -> list[dict]:
        entries = read_json(path)
        if not isinstance(entries, list):
            raise GessInputError(path, None, "a list of reconstruction entries (gess's manifest)", type(entries).__name__)
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise GessInputError(path, f"[{i}]", "an entry with stimulus_id and file", type(entry).__name__)
            for key in ("stimulus_id", "file"):
                if not isinstance(entry.get(key), str) or not entry[key]:
                    raise GessInputError(path, f"[{i}].{key}", "a non-empty string", repr(entry.get(key)))
            if not _inside(self.directory, entry["file"]):
                raise GessInputError(path, f"[{i}].file", f"a file inside {self.directory}", repr(entry["file"]))
        return entries

    def write(self, ids, by_id: dict) -> None:
        """``manifest.json``: the entries of ``ids`` present in ``by_id``, in the order of ``ids``."""
        write_json(self.directory / MANIFEST, [by_id[s] for s in ids if s in by_id])

    def write_part(self, index: int, entries: list) -> None:
        write_json(self.directory / f"manifest.part{index}.json", entries)

    def merge_parts(self, ids) -> None:
        """Fold every process's part into ``manifest.json``, then remove the parts."""
        self.write(ids, self.read())
        for part in self.parts():
            part.unlink()

    def is_finished(self, entry: dict | None, settings: dict, seed: int) -> bool:
        """Whether an entry's image is on disk, made with these settings and this seed."""
        return bool(entry and (self.directory / entry["file"]).is_file() and entry.get("settings") == settings
                    and entry.get("seed") == seed)


def _inside(directory: Path, name: str) -> bool:
    """Whether the relative path ``name`` stays inside ``directory`` (no absolute path, no way out by ``..``)."""
    relative = Path(name)
    if relative.is_absolute():
        return False
    root = directory.resolve()
    return (root / relative).resolve().is_relative_to(root)
