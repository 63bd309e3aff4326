"""The CLI contract end to end on a tiny .mat: fit, prior train, reconstruct (resumes), evaluate."""
from __future__ import annotations

import json

import pytest

from gess.cli import main

from conftest import write_mat


def ok(args):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    assert exc.value.code == 0


@pytest.mark.slow
def test_fit_prior_reconstruct_evaluate(tmp_path):
    data = tmp_path / "x.mat"
    write_mat(data, n_train=16, n_test=4, voxels=40, side=12)
    ok(["fit", "--data", data, "--out", tmp_path / "model"])
    ok(["prior", "train", "--images", data, "--out", tmp_path / "prior", "--steps", "2", "--image-size", "16", "--batch-size", "4"])
    recon = tmp_path / "recon"
    ok(["reconstruct", "--model", tmp_path / "model", "--generator", tmp_path / "prior", "--data", data,
        "--method", "cs", "--steps", "3", "--out", recon])
    manifest = json.loads((recon / "manifest.json").read_text())
    assert [m["file"] for m in manifest] == [f"test-{i:04d}.png" for i in range(4)]
    assert {"stimulus_id", "file", "pi_c", "method", "seed", "steps"} <= set(manifest[0])
    stamp = (recon / "test-0000.png").stat().st_mtime_ns
    ok(["reconstruct", "--model", tmp_path / "model", "--generator", tmp_path / "prior", "--data", data,
        "--method", "cs", "--steps", "3", "--out", recon])
    assert (recon / "test-0000.png").stat().st_mtime_ns == stamp  # nothing redone
    assert not list(recon.glob("*.tmp")) and not [p for p in recon.glob(".*") if not p.name.startswith(".gess.lock") and p.name != ".gess-output.json"]  # no partial files left (the lock file stays: docs/reliability.md)
    ok(["evaluate", "--recon", recon, "--data", data, "--protocol", "paper", "--out", tmp_path / "m.json"])
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["protocol"] == "paper" and metrics["n"] == 4
    assert {"pixcorr", "ssim", "twoway_rmse", "twoway_sam", "twoway_embedding"} <= set(metrics["metrics"])
    assert metrics["per_sample"][0]["stimulus_id"] == "test-0000" and "pi_c" in metrics["per_sample"][0]


def test_cli_page_is_current():
    """docs/cli.md is written from the commands themselves (`python -m gess.clidoc > docs/cli.md`)."""
    from pathlib import Path

    from gess.clidoc import render

    page = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
    assert page.read_text() == render(), "docs/cli.md is stale: run `python -m gess.clidoc > docs/cli.md`"
