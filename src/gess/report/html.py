"""One self-contained HTML report: every image embedded, no external resource."""
from __future__ import annotations

import base64
import html
import io
import platform
from pathlib import Path

import numpy as np

from gess.evaluation.registry import METRICS
from gess.io import atomic_path


def png_data_uri(path_or_bytes) -> str:
    data = Path(path_or_bytes).read_bytes() if isinstance(path_or_bytes, (str, Path)) else path_or_bytes
    return "data:image/png;base64," + base64.b64encode(data).decode()


def figure_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def accuracy_vs_scores_figure(per_method: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> bytes:
    """Per-sample accuracy against pi_c (left) and against trust (right), one colour per method, with rho."""
    from gess.evaluation.trustworthiness import spearman
    from gess.report.figures import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.8), sharey=True)
    for ax, (k, label) in zip(axes, ((0, "pi_c (semantic confidence, the gate)"), (1, "trust (brain consistency)"))):
        for name, values in per_method.items():
            score, acc = np.asarray(values[k], float), np.asarray(values[2], float)
            stats = spearman(score, acc)
            ax.scatter(score, acc, s=14, alpha=0.75, label=f"{name} (rho {stats['rho']:.2f}, p {stats['p']:.2g})")
        ax.set_xlabel(label)
        ax.legend(frameon=False, fontsize=7)
    axes[0].set_ylabel("accuracy: 2-way identification among the test set")
    fig.tight_layout()
    data = figure_bytes(fig)
    plt.close(fig)
    return data


def pi_by_group_figure(pi_c: np.ndarray, groups: np.ndarray) -> bytes:
    """pi_c per test sample, coloured by group (e.g. inside / outside the training semantics)."""
    from gess.report.figures import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3))
    order = np.argsort(pi_c)
    for g in sorted(set(groups.tolist())):
        sel = np.where(groups[order] == g)[0]
        ax.bar(sel, pi_c[order][sel], label=str(g), width=1.0)
    ax.set_xlabel("test samples, sorted by pi_c")
    ax.set_ylabel("pi_c")
    ax.legend(frameon=False)
    fig.tight_layout()
    data = figure_bytes(fig)
    plt.close(fig)
    return data


def software_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("gess", "torch", "torchvision", "numpy", "scikit-learn", "diffusers", "transformers"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def _table(rows: list[list[str]], header: list[str], suffix: dict[str, str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}{(suffix or {}).get(h, '')}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.85em}.note{color:#555;font-size:.9em}
"""


def _direction(name: str) -> tuple[str, str]:
    """(header arrow, phrase) of a registered metric's better direction; none for a name the registry lacks."""
    metric = METRICS.get(name)
    if metric is None:
        return "", ""
    return (" &uarr;", "&uarr; higher is better") if metric.higher_is_better else (" &darr;", "&darr; lower is better")


def metric_definitions(names, embedding_encoder: str | None = None) -> str:
    """An HTML list defining each metric shown and the direction that is better (from the metric registry)."""
    items = []
    for name in names:
        metric = METRICS.get(name)
        if metric is None:
            items.append(f"<li><b>{html.escape(name)}</b>: not a registered metric (no definition, no direction)</li>")
            continue
        text = metric.definition.replace("{encoder}", embedding_encoder or "the run encoder")
        items.append(f"<li><b>{html.escape(name)}</b> ({_direction(name)[1]}): {html.escape(text)}</li>")
    return f"<ul class='note'>{''.join(items)}</ul>"


def write_html(path: str | Path, title: str, config_text: str, metrics: dict[str, dict], protocol: str,
                 grid_png: bytes | str | Path | None = None, pi_rows: list[list[str]] | None = None,
                 figures: dict[str, bytes] | None = None, notes: list[str] | None = None,
                 unavailable: dict[str, str] | None = None, trust_sentences: list[str] | None = None,
                 right_digit: dict[str, dict] | None = None, right_digit_reader: str | None = None,
                 pi_columns: list[str] | None = None,
                 embedding_encoder: str | None = None) -> Path:
    """Write ``report.html``: metrics (defined) per method, the grid, the digits read, trust and pi_c, config."""
    parts = [f"<h1>{html.escape(title)}</h1>"]
    for n in notes or []:
        parts.append(f"<p class='note'>{html.escape(n)}</p>")
    if metrics:
        names = sorted({k for m in metrics.values() for k in m})
        rows = [[html.escape(method)] + [f"{m[k]:.3f}" if k in m else "" for k in names] for method, m in metrics.items()]
        parts.append(f"<h2>Metrics ({html.escape(protocol)} protocol)</h2>"
                     + _table(rows, ["method"] + names, {k: _direction(k)[0] for k in names})
                     + metric_definitions(names, embedding_encoder))
    if right_digit:
        groups = list(next(iter(right_digit.values())))
        rows = [[html.escape(m)] + [f"{100 * r[g]:.0f}%" for g in groups] for m, r in right_digit.items()]
        reader = right_digit_reader or "logistic regression trained on every scikit-learn digit except the test stimuli"
        parts.append("<h2>Right digit</h2><p class='note'>Share of reconstructions that a digit classifier ("
                     + html.escape(reader) + ") reads as the stimulus's digit, per group of test stimuli.</p>"
                     + _table(rows, ["method"] + groups))
    if unavailable:
        parts.append("<p class='note'>Unavailable: " + "; ".join(f"{html.escape(k)}: {html.escape(v)}" for k, v in unavailable.items()) + "</p>")
    if grid_png is not None:
        uri = png_data_uri(grid_png)
        parts.append(f"<h2>Reconstructions</h2><img alt='stimulus and reconstructions per method' src='{uri}'>")
        parts.append("<p class='note'>Rows: stimulus id, its group and pi_c. Under each reconstruction: its trust, "
                     "the share of training trials whose recorded response the reconstruction's predicted response "
                     "matches worse than its own trial's, read from a normal fit to those matches so that it keeps "
                     "ranking past the best training trial (0.5 = chance, 1 = best; no ground truth used).</p>")
    for caption, data in (figures or {}).items():
        parts.append(f"<h2>{html.escape(caption)}</h2><img alt='{html.escape(caption)}' src='{png_data_uri(data)}'>")
        if caption.startswith("Do the reconstructions") and trust_sentences:
            parts.append("<ul>" + "".join(f"<li>{html.escape(t)}</li>" for t in trust_sentences) + "</ul>")
    if pi_rows:
        parts.append("<h2>Per-sample pi_c and trust</h2>" + _table(pi_rows, ["stimulus", "group", "pi_c"] + (pi_columns or [])))
    versions = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in software_versions().items())
    parts.append(f"<h2>Configuration</h2><pre>{html.escape(config_text)}</pre><h2>Software</h2><table>{versions}</table>")
    doc = f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
    with atomic_path(path) as tmp:
        tmp.write_text(doc, encoding="utf-8")
    return Path(path)
