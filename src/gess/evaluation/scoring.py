"""Evaluate a directory of reconstructions against a dataset's test stimuli; print a summary table."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from gess.errors import GessInputError
from gess.evaluation.metrics import evaluate
from gess.evaluation.registry import METRICS
from gess.io import claim_output_file, read_json, write_owned_json
from gess.manifest import Manifest

MIN_SIDE = 7  # SSIM's 7 x 7 window (Gaussian, sigma 1.5)
METRICS_KIND = "metrics"


def load_reconstructions(recon: str | Path, stimulus_ids) -> tuple[np.ndarray, list[str], dict]:
    """Images named ``<stimulus_id>.png`` for the given ids, and manifest extras (pi_c, method).

    A ``manifest.json`` that is not gess's (a mapping, entries without ``file``, a ``file``
    outside the directory) is bad input naming it.
    """
    from gess.data.images import load_image

    recon = Path(recon)
    manifest = Manifest(recon).read()
    found = [s for s in stimulus_ids if (recon / f"{s}.png").is_file()]
    if not found:
        raise GessInputError(recon, None, "reconstructions named <stimulus_id>.png for the dataset's test stimuli",
                             f"none of {len(stimulus_ids)} (e.g. {stimulus_ids[0]}.png)")
    images = np.stack([load_image(recon / f"{s}.png") for s in found])
    return images, found, manifest


def evaluate_directory(recon, dataset, protocol="paper", encoder=None, clip_encoder=None, weights_dir=None, trials=10,
                       seed=0, out=None, networks=None, allow_partial: bool = False) -> dict:
    """Metrics of ``recon/<stimulus_id>.png`` against the test stimuli.

    A directory missing some test stimuli is refused: identification among a subset
    cannot be compared with anything. ``allow_partial`` scores the subset and marks
    the result ``"partial": true`` with the missing ids.
    """
    if out is not None:
        claim_metrics_file(out)
    test = dataset.test.averaged()
    images, ids, manifest = load_reconstructions(recon, list(test.stimulus_ids))
    missing = [s for s in test.stimulus_ids if s not in set(ids)]
    if missing and not allow_partial:
        raise GessInputError(recon, None, f"a reconstruction of each of the {len(test.stimulus_ids)} test stimuli "
                             "(or --allow-partial)", f"{len(missing)} missing: {', '.join(missing[:5])}"
                             + (" ..." if len(missing) > 5 else ""))
    lookup = {s: i for i, s in enumerate(test.stimulus_ids)}
    gt = test.images[[lookup[s] for s in ids]]
    _refuse_degenerate(recon, gt, images, trials)
    result = evaluate(gt, images, protocol, encoder=encoder, clip_encoder=clip_encoder, weights_dir=weights_dir,
                      trials=trials, seed=seed, networks=networks)
    for row, sid in zip(result["per_sample"], ids):
        row["stimulus_id"] = sid
        if sid in manifest:
            row["pi_c"] = manifest[sid].get("pi_c")
            row["method"] = manifest[sid].get("method")
    result["recon"] = str(recon)
    result["missing"] = missing
    result["partial"] = bool(missing)
    if out is not None:
        write_owned_json(out, result, METRICS_KIND)
    return result


def claim_metrics_file(out: str | Path) -> Path:
    """``out`` ready for a metrics JSON: absent, or one gess wrote (refused, before any scoring, otherwise)."""
    return claim_output_file(out, METRICS_KIND, legacy=_older_metrics)


def _older_metrics(path: Path) -> bool:
    """A metrics JSON of a gess from before files carried their kind, told by the keys :func:`evaluate_directory` writes."""
    try:
        content = read_json(path)
    except (GessInputError, OSError, ValueError):
        return False
    return isinstance(content, dict) and {"protocol", "metrics", "per_sample", "recon", "partial"} <= set(content)


def _refuse_degenerate(recon, gt: np.ndarray, images: np.ndarray, trials) -> None:
    """Input on which the metrics are undefined (NaN) is refused, naming what they need."""
    if len(images) < 2:
        raise GessInputError(recon, None, "at least 2 reconstructed test stimuli (identification compares each with "
                             "the others)", f"{len(images)}")
    side = min(gt.shape[1], gt.shape[2], images.shape[1], images.shape[2])
    if side < MIN_SIDE:
        raise GessInputError(recon, None, f"images at least {MIN_SIDE} pixels a side (SSIM's window)",
                             f"{min(gt.shape[1], gt.shape[2])} px stimuli, {min(images.shape[1], images.shape[2])} px "
                             "reconstructions")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise GessInputError(None, "trials", "at least 1 trial of random 2-way identification", repr(trials))


def print_summary(result: dict, console) -> None:
    """A table of the metrics, each with the arrow of its better direction, then the unavailable ones and why."""
    from rich.table import Table

    table = Table(title=f"{result['protocol']} protocol, n = {result['n']}"
                        + (f" (PARTIAL: {len(result['missing'])} missing)" if result.get("partial") else "")
                        + (f", embedding: {result['embedding_encoder']}" if result.get("embedding_encoder") else ""))
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in result["metrics"].items():
        metric = METRICS.get(name)  # a name the registry does not know (an old file) gets no arrow
        table.add_row(f"{name} {metric.arrow}" if metric else name, f"{value:.4f}")
    for name, reason in result["unavailable"].items():
        table.add_row(f"[dim]{name}[/dim]", "[dim]unavailable[/dim]")
    console.print(table)
    for name, reason in result["unavailable"].items():
        console.print(f"[dim]{name}: {reason}[/dim]")
