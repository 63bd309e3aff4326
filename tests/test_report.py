"""The HTML report: self-contained, and it renders in a real headless browser."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from gess.report.figures import save_grid
from gess.report.html import accuracy_vs_scores_figure, pi_by_group_figure, write_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def make_report(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 255, (3, 16, 16, 3), dtype=np.uint8)
    grid = save_grid({"stimulus": imgs, "cs": imgs[::-1]}, tmp_path / "grid.png")
    pi = rng.random(12)
    figs = {"Do the reconstructions the model trusts score better?": accuracy_vs_scores_figure(
                {"cs": (pi, rng.random(12), pi + rng.normal(0, 0.1, 12))}),
            "pi_c per sample": pi_by_group_figure(pi, np.array(["inside"] * 6 + ["outside"] * 6))}
    return write_html(tmp_path / "report.html", "test report", "dataset: x\n", {"cs": {"pixcorr": 0.5}}, "paper",
                        grid, [["a", "inside", "0.9", "0.7"]], figs, unavailable={"clip": "weights absent"},
                        trust_sentences=["cs: rho of trust with accuracy +0.50 (p = 0.01, n = 12)"],
                        right_digit={"cs": {"inside": 0.9, "outside": 0.5}}, pi_columns=["trust (cs)"])


def test_report_is_self_contained(tmp_path):
    text = make_report(tmp_path).read_text()
    assert text.count("data:image/png;base64,") == 3
    for forbidden in ("http://", "https://", "src='/", 'src="/', "<link", "<script src"):
        assert forbidden not in text
    assert "paper protocol" in text and "clip: weights absent" in text
    # every metric shown is defined, with the direction that is better
    assert "<b>pixcorr</b> (&uarr; higher is better)" in text
    assert "rho of trust with accuracy +0.50" in text and "90%" in text and "trust (cs)" in text


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    from playwright.sync_api import sync_playwright

    path = make_report(tmp_path)
    failed = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page()
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.on("console", lambda m: failed.append(m.text) if m.type == "error" else None)
        page.goto(path.as_uri(), wait_until="load")
        rendered = page.evaluate("Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
        page.screenshot(path=str(tmp_path / "shot.png"), full_page=True)
        browser.close()
    assert failed == []
    assert len(rendered) == 3 and all(rendered)


def test_grid_shows_a_seedless_method_once_and_every_seed_of_the_others():
    from gess.report.build import _one_column_per_seedless_method

    same, a, b = np.zeros((2, 4, 4, 1), np.uint8), np.ones((2, 4, 4, 1), np.uint8), np.full((2, 4, 4, 1), 2, np.uint8)
    columns = {"stimulus": a, "structure-seed0": same, "structure-seed1": same.copy(), "cs-seed0": a, "cs-seed1": b}
    labels = {name: ["t"] * 2 for name in columns if name != "stimulus"}
    kept, kept_labels = _one_column_per_seedless_method(columns, labels)
    assert list(kept) == ["stimulus", "structure", "cs-seed0", "cs-seed1"]
    assert set(kept_labels) == {"structure", "cs-seed0", "cs-seed1"}
    one_seed = {"stimulus": a, "structure": same, "cs": b}
    assert list(_one_column_per_seedless_method(one_seed, {})[0]) == ["stimulus", "structure", "cs"]
