"""Datasets: fMRI trials paired with stimulus images, from every supported layout.

``load_dataset(path, format="auto")`` decides from what it finds:
a ``.mat`` file (fmriTrn/fmriTest/stimTrn/stimTest), a GOD directory (a BData
``.h5`` plus an ``images/`` folder), an NSD directory (Brain-Diffuser files), or a
folder with ``images/`` and ``fmri.npz``/``fmri.h5``.
"""
from __future__ import annotations

from pathlib import Path

from gess.data.dataset import Dataset, Split
from gess.data.folder import load_folder
from gess.data.god import load_god
from gess.data.mat import load_mat
from gess.data.nsd import find_nsd_subjects, load_nsd
from gess.data.simulated import SimulatedFMRIModel, simulate_dataset
from gess.errors import GessInputError

FORMATS = ("auto", "mat", "god", "nsd", "folder")


def detect_format(path: str | Path) -> str:
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() == ".mat":
            return "mat"
        if path.suffix.lower() in (".h5", ".hdf5"):
            return "god"
        raise GessInputError(path, None, "a .mat file, a GOD .h5 file or a dataset directory", f"a '{path.suffix}' file")
    if not path.is_dir():
        raise GessInputError(path, None, "an existing data file or directory", "nothing there")
    if (path / "fmri.npz").is_file() or (path / "fmri.h5").is_file():
        return "folder"
    if find_nsd_subjects(path):
        return "nsd"
    if any(path.glob("*.h5")):
        return "god"
    mats = list(path.glob("*.mat"))
    if len(mats) == 1:
        return "mat"
    raise GessInputError(path, None, "a recognisable dataset layout (see `gess fit --help`)", "none recognised")


def load_dataset(path: str | Path, format: str = "auto", **options) -> Dataset:
    """Load any supported dataset. Options: ``roi``, ``image_dir``, ``image_size`` (GOD), ``subject`` (NSD)."""
    if format not in FORMATS:
        raise GessInputError(None, "format", f"one of {', '.join(FORMATS)}", repr(format))
    path = Path(path)
    fmt = detect_format(path) if format == "auto" else format
    if fmt == "mat":
        if path.is_dir():
            path = next(iter(path.glob("*.mat")), path)
        return load_mat(path)
    if fmt == "god":
        h5 = path if path.is_file() else sorted(path.glob("*.h5"))[options.get("subject", 1) - 1 if options.get("subject") else 0]
        image_dir = options.get("image_dir") or (h5.parent / "images")
        return load_god(h5, image_dir, roi=options.get("roi", "ROI_VC"), image_size=options.get("image_size", 256))
    if fmt == "nsd":
        return load_nsd(path, options.get("subject"))
    return load_folder(path, options.get("image_size"))


__all__ = ["Dataset", "Split", "load_dataset", "load_mat", "load_god", "load_nsd", "load_folder",
           "simulate_dataset", "SimulatedFMRIModel", "detect_format", "FORMATS"]
