"""A reconstruction directory: ``<stimulus_id>.png`` per test stimulus and ``manifest.json`` describing each.

Under a launcher every process writes its entries into ``manifest.part<i>.json``; the
main process folds the parts into ``manifest.json`` (also after an interrupted run).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from gess.io import atomic_path, read_json, write_json

MANIFEST = "manifest.json"
PART_PATTERN = "manifest.part*.json"
CANDIDATES_DIR = "candidates"  # every candidate of best-of-N, as <stimulus_id>.<index>.png


def write_png(path: Path, image: np.ndarray) -> None:
    """A uint8 (H, W, 1|3) image as a PNG, atomically."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(tmp, format="PNG")


class Manifest:
    """The entries of one reconstruction directory, by stimulus id."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    @staticmethod
    def recognises(directory: Path) -> bool:
        """Whether ``directory`` holds reconstructions gess wrote (a manifest or its parts)."""
        return (directory / MANIFEST).is_file() or any(directory.glob(PART_PATTERN))

    def has_parts(self) -> bool:
        return any(self.directory.glob(PART_PATTERN))

    def read(self) -> dict:
        """Entries of ``manifest.json`` and of any per-process parts (a multi-process run not yet merged)."""
        path = self.directory / MANIFEST
        entries = {m["stimulus_id"]: m for m in read_json(path)} if path.is_file() else {}
        for part in sorted(self.directory.glob(PART_PATTERN)):
            entries.update({m["stimulus_id"]: m for m in read_json(part)})
        return entries

    def write(self, ids, by_id: dict) -> None:
        """``manifest.json``: the entries of ``ids`` present in ``by_id``, in the order of ``ids``."""
        write_json(self.directory / MANIFEST, [by_id[s] for s in ids if s in by_id])

    def write_part(self, index: int, entries: list) -> None:
        write_json(self.directory / f"manifest.part{index}.json", entries)

    def merge_parts(self, ids) -> None:
        """Fold every process's part into ``manifest.json``, then remove the parts."""
        self.write(ids, self.read())
        for part in self.directory.glob(PART_PATTERN):
            part.unlink()

    def is_finished(self, entry: dict | None, settings: dict, seed: int) -> bool:
        """Whether an entry's image is on disk, made with these settings and this seed."""
        return bool(entry and (self.directory / entry["file"]).is_file() and entry.get("settings") == settings
                    and entry.get("seed") == seed)
