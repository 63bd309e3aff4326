"""One self-contained HTML report: every image embedded, no external resource."""
from __future__ import annotations

import base64
import html
import io
import platform
from pathlib import Path

import numpy as np

from gess.io import atomic_path


def png_data_uri(path_or_bytes) -> str:
    data = Path(path_or_bytes).read_bytes() if isinstance(path_or_bytes, (str, Path)) else path_or_bytes
    return "data:image/png;base64," + base64.b64encode(data).decode()


def figure_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def accuracy_vs_pi_figure(per_method: dict[str, tuple[np.ndarray, np.ndarray]], metric: str) -> bytes:
    """Scatter of a per-sample accuracy against pi_c, one colour per method, with Spearman's rho."""
    from scipy.stats import spearmanr

    from gess.report.figures import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, (pi, acc) in per_method.items():
        rho = spearmanr(pi, acc)[0] if len(pi) > 2 else float("nan")
        ax.scatter(pi, acc, s=14, alpha=0.75, label=f"{name} (rho {rho:.2f})")
    ax.set_xlabel("pi_c (semantic confidence)")
    ax.set_ylabel(metric)
    ax.set_title("Do the reconstructions the model trusts score better?")
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    data = figure_bytes(fig)
    plt.close(fig)
    return data


def pi_by_group_figure(pi_c: np.ndarray, groups: np.ndarray) -> bytes:
    """pi_c per test sample, coloured by group (e.g. inside / outside the training semantics)."""
    from gess.report.figures import _pyplot

    plt = _pyplot()
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


def _table(rows: list[list[str]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.85em}.note{color:#555;font-size:.9em}
"""


def write_report(path: str | Path, title: str, config_text: str, metrics: dict[str, dict], protocol: str,
                 grid_png: bytes | str | Path | None = None, pi_rows: list[list[str]] | None = None,
                 figures: dict[str, bytes] | None = None, notes: list[str] | None = None,
                 unavailable: dict[str, str] | None = None) -> Path:
    """Write ``report.html``: config and versions, metrics per method, grids, pi_c and figures."""
    parts = [f"<h1>{html.escape(title)}</h1>"]
    for n in notes or []:
        parts.append(f"<p class='note'>{html.escape(n)}</p>")
    if metrics:
        names = sorted({k for m in metrics.values() for k in m})
        rows = [[html.escape(method)] + [f"{m[k]:.3f}" if k in m else "" for k in names] for method, m in metrics.items()]
        parts.append(f"<h2>Metrics ({html.escape(protocol)} protocol)</h2>" + _table(rows, ["method"] + names))
    if unavailable:
        parts.append("<p class='note'>Unavailable: " + "; ".join(f"{html.escape(k)}: {html.escape(v)}" for k, v in unavailable.items()) + "</p>")
    if grid_png is not None:
        uri = png_data_uri(grid_png)
        parts.append(f"<h2>Reconstructions</h2><img alt='stimulus and reconstructions per method' src='{uri}'>")
    for caption, data in (figures or {}).items():
        parts.append(f"<h2>{html.escape(caption)}</h2><img alt='{html.escape(caption)}' src='{png_data_uri(data)}'>")
    if pi_rows:
        parts.append("<h2>Per-sample semantic confidence</h2>" + _table(pi_rows, ["stimulus", "group", "pi_c"]))
    versions = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in software_versions().items())
    parts.append(f"<h2>Configuration</h2><pre>{html.escape(config_text)}</pre><h2>Software</h2><table>{versions}</table>")
    doc = f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
    with atomic_path(path) as tmp:
        tmp.write_text(doc, encoding="utf-8")
    return Path(path)
