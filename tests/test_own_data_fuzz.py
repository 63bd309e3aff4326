"""Fuzzed own-data folders (docs/data.md, format `folder`): loading succeeds or is bad input, never another error.

Random stimulus ids (odd characters included), image files of every common mode and size (square or
not), fMRI arrays of every kind and shape, ids of every kind: ``load_dataset(DIR, "folder")`` either
returns a valid dataset or raises ``GessInputError`` with a one-line message (the CLI's exit 2).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ID_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00")
IDS = st.text(ID_CHARS, min_size=1, max_size=10).filter(lambda s: s not in (".", "..") and len(s.encode()) < 200)
MODES = ("L", "RGB", "RGBA", "P", "I;16", "1", "I", "F")
EXTENSIONS = {"L": (".png", ".jpg", ".bmp", ".tif"), "RGB": (".png", ".jpg", ".webp", ".bmp"), "RGBA": (".png", ".tif"),
              "P": (".png", ".bmp"), "I;16": (".png", ".tif"), "1": (".png", ".bmp"), "I": (".tif",),
              "F": (".tif",)}


@st.composite
def image_files(draw):
    mode = draw(st.sampled_from(MODES))
    ext = draw(st.sampled_from(EXTENSIONS[mode]))
    width, height = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    if draw(st.booleans()):
        height = width  # square ones as often as not
    broken = draw(st.sampled_from([False] * 48 + ["empty", "truncated"]))
    return mode, ext, width, height, broken, draw(st.integers(0, 2**16))


def _array(draw, kind: str, shape):
    rng = np.random.default_rng(draw(st.integers(0, 1000)))
    x = np.asarray(rng.normal(size=shape) * 3)
    if kind == "float":
        x = x.astype(draw(st.sampled_from([np.float64, np.float32, np.float16])))
        if x.size and draw(st.sampled_from([False] * 9 + [True])):
            x.flat[0] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        return x
    if kind == "int":
        return x.astype(draw(st.sampled_from([np.int8, np.int64, np.uint16])))
    if kind == "bool":
        return x > 0
    if kind == "complex":
        return x + 1j * x
    if kind == "str":
        return x.astype(str)
    return x.astype(object)  # saved pickled: np.load(allow_pickle=False) refuses it


FAULTS = ("kind", "dims", "rows", "unknown id", "id kind", "drop key", "no voxels", "no trials")


@st.composite
def experiments(draw):
    """A valid experiment, then none, one or two faults (so that both outcomes are drawn often)."""
    ids = draw(st.lists(IDS, min_size=1, max_size=5, unique_by=lambda s: s.casefold()))
    faults = draw(st.lists(st.sampled_from(FAULTS), max_size=2)) if draw(st.booleans()) else []
    n_voxels = 0 if "no voxels" in faults else draw(st.integers(1, 6))
    tables = {}
    for side in ("train", "test"):
        rows = 0 if "no trials" in faults and side == "test" else draw(st.integers(1, 5))
        shape = (rows, n_voxels)
        if "dims" in faults and draw(st.booleans()):
            shape = draw(st.sampled_from([(rows,), (rows, n_voxels, 2), ()]))
        kind = draw(st.sampled_from(["int", "bool", "complex", "str", "object"])) if "kind" in faults else "float"
        tables[f"fmri_{side}"] = _array(draw, kind, shape)
        trial_ids = [draw(st.sampled_from(ids)) for _ in range(rows)]
        if "rows" in faults:
            trial_ids = trial_ids + trial_ids[:1] if draw(st.booleans()) else trial_ids[1:]
        if "unknown id" in faults and trial_ids:
            trial_ids[0] = "not-an-image"
        id_kind = draw(st.sampled_from(["bytes", "int", "2d"])) if "id kind" in faults else "str"
        tables[f"{side}_ids"] = {"str": np.array(trial_ids, dtype=str),
                                 "bytes": np.array([t.encode("utf-8", "surrogatepass") for t in trial_ids], dtype=object
                                                   ).astype(bytes) if trial_ids else np.array([], dtype=bytes),
                                 "int": np.arange(len(trial_ids)),
                                 "2d": np.array(trial_ids, dtype=str).reshape(-1, 1)}[id_kind]
    if "drop key" in faults:
        del tables[draw(st.sampled_from(sorted(tables)))]
    files = [draw(image_files()) for _ in ids]
    if draw(st.booleans()):  # one size for all, as most experiments have
        files = [(m, e, files[0][2], files[0][3], b, seed) for m, e, _, _, b, seed in files]
    return ids, files, tables, draw(st.sampled_from(["npz"] * 4 + ["h5"]))


def _write_image(path: Path, mode, width, height, broken, seed):
    from PIL import Image

    rng = np.random.default_rng(seed)
    if mode in ("I;16", "I", "F"):
        dtype = {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]
        im = Image.fromarray(rng.integers(0, 65535, (height, width)).astype(dtype), mode if mode != "I;16" else None)
        if mode == "I;16":
            im = im if im.mode == "I;16" else im.convert("I;16")
    else:
        im = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert(mode)
    fmt = {".jpg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".webp": "WEBP"}[path.suffix]
    if fmt == "JPEG" and im.mode not in ("L", "RGB"):
        im = im.convert("RGB")
    im.save(path, format=fmt)
    if broken == "empty":
        path.write_bytes(b"")
    elif broken == "truncated":
        path.write_bytes(path.read_bytes()[: max(1, len(path.read_bytes()) // 2)])


def _write_table(path: Path, tables: dict):
    if path.suffix == ".npz":
        np.savez(path, **tables)
        return
    import h5py

    with h5py.File(path, "w") as fh:
        for key, value in tables.items():
            value = np.asarray(value)
            if value.dtype.kind == "U":
                value = value.astype(h5py.string_dtype()) if value.size else value.astype("S1")
            try:
                fh[key] = value
            except (TypeError, ValueError):  # h5py cannot hold an object array: leave the key out
                pass


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(experiments())
def test_an_own_data_folder_loads_or_is_refused_as_bad_input(tmp_path_factory, experiment):
    from gess.data import load_dataset
    from gess.errors import GessInputError

    ids, images, tables, table_kind = experiment
    folder = tmp_path_factory.mktemp("own")
    (folder / "images").mkdir()
    for sid, (mode, ext, width, height, broken, seed) in zip(ids, images):
        try:
            _write_image(folder / "images" / f"{sid}{ext}", mode, width, height, broken, seed)
        except (OSError, UnicodeEncodeError):  # a name this file system refuses: no such folder can exist
            assume(False)
    _write_table(folder / f"fmri.{table_kind}", tables)
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.ComplexWarning if hasattr(np, "exceptions") else Warning)
        try:
            dataset = load_dataset(folder, "folder")
        except GessInputError as exc:
            assert "\n" not in str(exc) and "Traceback" not in str(exc), str(exc)
            event(f"refused: {exc.expected[:40]}")
            return
    event("loaded")
    for split in (dataset.train, dataset.test):  # what it gives is the contract's (docs/data.md)
        assert split.fmri.dtype in (np.float32, np.float16) and split.fmri.ndim == 2 and np.isfinite(split.fmri).all()
        assert split.images.dtype == np.uint8 and split.images.ndim == 4 and split.images.shape[-1] in (1, 3)
        assert split.images.shape[1] == split.images.shape[2], "images are square (non-square ones centre-cropped)"
        assert len(split.stimulus_ids) == len(split.images)
