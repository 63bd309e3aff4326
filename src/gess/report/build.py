"""Assemble report.html for a run: metrics per method, grids, pi_c, accuracy against pi_c, the split."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import yaml

from gess.report.figures import save_candidates_figure, save_grid, save_split_figure
from gess.evaluation.trustworthiness import describe
from gess.report.html import accuracy_vs_scores_figure, pi_by_group_figure, write_html


def write_report(run, out: Path) -> Path:
    """``out/report.html`` for a finished run (a :class:`gess.run.RunResult`)."""
    from gess.data.images import load_image, resize_images

    cfg, dataset, test_ids, decoded = run.config, run.dataset, run.test_ids, run.decoded
    results, recon_dirs, summary, experiment = run.results, run.recon_dirs, run.summary, run.experiment
    test = dataset.test.averaged()
    lookup = {s: i for i, s in enumerate(test.stimulus_ids)}
    groups = experiment.group_of(test_ids) if experiment else np.array(["test"] * len(test_ids))
    # grid: up to 6 samples per group, stimulus then every method
    rows = []
    for g in sorted(set(groups.tolist())):
        rows += [i for i in np.where(groups == g)[0][:6]]
    side = max(64, test.images.shape[1])
    columns = {"stimulus": resize_images(_rgb(test.images[[lookup[test_ids[i]] for i in rows]]), side)}
    for name, d in recon_dirs.items():
        columns[name] = resize_images(np.stack([load_image(Path(d) / f"{test_ids[i]}.png") for i in rows]), side)
    trust = {name: per["trust"] for name, per in run.per_sample.items()}
    cell_labels = {name: [_trust_text(trust[name][i]) for i in rows] for name in recon_dirs if name in trust}
    columns, cell_labels = _one_column_per_seedless_method(columns, cell_labels)
    grid = save_grid(columns, out / "grid.png", cell_labels=cell_labels,
                     row_labels=[f"{test_ids[i]}\n{groups[i]}, pi_c {decoded.pi_c[i]:.2f}" for i in rows])
    figures = {}
    if experiment:
        save_split_figure(experiment.embeddings, experiment.pool_ids, experiment.split, out / "split.png")
        figures["pi_c per test sample: inside vs outside the training semantics"] = pi_by_group_figure(decoded.pi_c, groups)
        figures["Generalized split of the image pool (2-D PCA of the embeddings)"] = (out / "split.png").read_bytes()
    figures.update(_candidate_figures(recon_dirs, test_ids, rows, test.images[[lookup[test_ids[i]] for i in rows]], out))
    check = summary.get("trust_check", {})
    sentences = []
    if run.per_sample:
        generated = {k: v for k, v in run.per_sample.items()
                     if _method_of(k) not in ("structure", "knn")} or run.per_sample
        figures["Do the reconstructions the model trusts score better?"] = accuracy_vs_scores_figure(
            {name: (decoded.pi_c, per["trust"], per["accuracy"]) for name, per in generated.items()})
        for name in generated:
            sentences.append(describe(name, "trust", check[name]["trust"]))
            sentences.append(describe(name, "pi_c", check[name]["pi_c"]))
    stage_times = ", ".join(f"{name} {sec:.0f} s" for name, sec in run.stage_seconds.items())
    notes = [f"{dataset.summary()}.", f"Wall time {summary['seconds']:.0f} s ({stage_times})."]
    if "pi_c_auroc_inside_vs_outside" in summary:
        m = summary["mean_pi_c"]
        notes.append(f"pi_c separates test stimuli inside the training semantics from those outside: AUROC "
                     f"{summary['pi_c_auroc_inside_vs_outside']:.2f}, mean pi_c {m['inside']:.2f} inside vs {m['outside']:.2f} outside.")
    if "retrieval" in summary:
        r = summary["retrieval"]
        notes.append(f"Retrieval (MindEye's top-1 among {r['candidates']}, {r['repeats']} draws, decoded c' against the "
                     f"stimuli's embeddings): image {r['image']:.1%}, brain {r['brain']:.1%} (chance {r['chance']:.1%}).")
    names = list(trust)
    pi_rows = [[str(test_ids[i]), str(groups[i]), f"{decoded.pi_c[i]:.3f}"] + [_trust_text(trust[n][i], "") for n in names]
               for i in np.argsort(-decoded.pi_c)]
    config_text = yaml.safe_dump(json.loads(json.dumps(dataclasses.asdict(cfg), default=str)), sort_keys=False)
    return write_html(out / "report.html", cfg.title, config_text, summary["methods"], summary["protocol"], grid,
                      pi_rows, figures, notes, summary.get("unavailable"), trust_sentences=sentences,
                      right_digit=summary.get("right_digit"), right_digit_reader=summary.get("right_digit_reader"),
                      pi_columns=[f"trust ({n})" for n in names],
                      embedding_encoder=_embedding_encoder(results))


def _candidate_figures(recon_dirs: dict, test_ids, rows: list[int], stimuli: np.ndarray, out: Path,
                       limit: int = 4) -> dict:
    """For each method drawn best-of-N: a few stimuli with every candidate, its brain match and the one kept."""
    from gess.data.images import load_image
    from gess.io import read_json

    figures = {}
    for name, directory in recon_dirs.items():
        directory = Path(directory)
        entries = {e["stimulus_id"]: e for e in read_json(directory / "manifest.json")}
        shown = [(k, i) for k, i in enumerate(rows) if "candidates" in entries.get(str(test_ids[i]), {})][:limit]
        if not shown:
            continue
        picked = [entries[str(test_ids[i])] for _, i in shown]
        averaged = [e.get("kept") == "mean" for e in picked]
        path = save_candidates_figure(
            stimuli[[k for k, _ in shown]], [np.stack([load_image(directory / c["file"]) for c in e["candidates"]])
                                             for e in picked],
            [[c["brain_match"] for c in e["candidates"]] for e in picked],
            [None if mean else e["chosen_candidate"] for e, mean in zip(picked, averaged)],
            [str(e["stimulus_id"]) for e in picked], out / f"candidates-{name}.png",
            means=[load_image(directory / e["file"]) if mean else None for e, mean in zip(picked, averaged)])
        n = len(picked[0]["candidates"])
        title = (f"{'Mean' if any(averaged) else 'Best'}-of-{n} ({name}): every candidate with r, the match of its "
                 "predicted brain response with the measured one; the kept image framed"
                 + (" (their pixelwise mean)" if any(averaged) else ""))
        figures[title] = path.read_bytes()
    return figures


def _trust_text(value, prefix: str = "trust ") -> str:
    return f"{prefix}{value:.2f}" if value is not None and np.isfinite(value) else ""


def _embedding_encoder(results: dict) -> str | None:
    return next((r.get("embedding_encoder") for r in results.values() if r.get("embedding_encoder")), None)


def _rgb(images: np.ndarray) -> np.ndarray:
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


def _method_of(run_name: str) -> str:
    """The method a run's reconstruction folder holds: ``cs-seed1`` -> ``cs`` (gess.run names one per seed)."""
    return re.sub(r"-seed\d+$", "", run_name)


def _one_column_per_seedless_method(columns: dict, cell_labels: dict) -> tuple[dict, dict]:
    """With several seeds, a method whose images are the same for every seed (structure, knn) is shown once,
    under its own name; the others keep a column per seed."""
    by_method = {}
    for name in columns:
        if _method_of(name) != name:
            by_method.setdefault(_method_of(name), []).append(name)
    kept, labels = {}, {}
    for name, images in columns.items():
        method = _method_of(name)
        if method == name or not all(np.array_equal(columns[other], images) for other in by_method[method]):
            kept[name] = images
            if name in cell_labels:
                labels[name] = cell_labels[name]
        elif name == by_method[method][0]:
            kept[method] = images
            if name in cell_labels:
                labels[method] = cell_labels[name]
    return kept, labels
