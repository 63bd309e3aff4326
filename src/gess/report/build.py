"""Assemble report.html for a run: metrics per method, grids, pi_c, accuracy against pi_c, the split."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import yaml

from gess.report.figures import save_grid, save_split_figure
from gess.report.html import accuracy_vs_pi_figure, figure_bytes, pi_by_group_figure, write_report


def build_report(run, out: Path) -> Path:
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
    grid = save_grid(columns, out / "grid.png", row_labels=[f"{groups[i]} pi_c {decoded.pi_c[i]:.2f}" for i in rows])
    figures = {}
    if experiment:
        save_split_figure(experiment.embeddings, experiment.pool_ids, experiment.split, out / "split.png")
        figures["pi_c per test sample: inside vs outside the training semantics"] = pi_by_group_figure(decoded.pi_c, groups)
        figures["Generalized split of the image pool (2-D PCA of the embeddings)"] = (out / "split.png").read_bytes()
    metric = "twoway_embedding" if all("twoway_embedding" in r["metrics"] for r in results.values()) else "pixcorr"
    per = {}
    for name, res in results.items():
        if name in ("structure", "knn"):
            continue
        vals = {r["stimulus_id"]: r[metric] for r in res["per_sample"]}
        per[name] = (decoded.pi_c, np.array([vals[s] for s in test_ids]))
    if per:
        figures[f"Per-sample {metric} against pi_c"] = accuracy_vs_pi_figure(per, metric)
    stage_times = ", ".join(f"{name} {sec:.0f} s" for name, sec in run.stage_seconds.items())
    notes = [f"{dataset.summary()}.", f"Wall time {summary['seconds']:.0f} s ({stage_times})."]
    if "pi_c_auroc_inside_vs_outside" in summary:
        m = summary["mean_pi_c"]
        notes.append(f"pi_c separates test stimuli inside the training semantics from those outside: AUROC "
                     f"{summary['pi_c_auroc_inside_vs_outside']:.2f}, mean pi_c {m['inside']:.2f} inside vs {m['outside']:.2f} outside.")
    pi_rows = [[str(s), str(g), f"{p:.3f}"] for s, g, p in sorted(zip(test_ids, groups, decoded.pi_c), key=lambda r: -r[2])]
    config_text = yaml.safe_dump(json.loads(json.dumps(dataclasses.asdict(cfg), default=str)), sort_keys=False)
    return write_report(out / "report.html", cfg.title, config_text, summary["methods"], summary["protocol"], grid,
                        pi_rows, figures, notes, summary.get("unavailable"))


def _rgb(images: np.ndarray) -> np.ndarray:
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images
