"""`gess run`: config validation and a tiny end-to-end run that resumes."""
from __future__ import annotations

import copy
import json

import pytest

from gess.errors import GessInputError
from gess.run import DEMO_CONFIG
from gess.runconfig import load_run_config


def test_shipped_configs_are_valid():
    from pathlib import Path

    for path in sorted(Path(__file__).parents[1].joinpath("configs").glob("*.yaml")):
        cfg = load_run_config(path)
        assert cfg.methods


@pytest.mark.parametrize("change,needle", [
    ({"dataset": {"path": "x.mat", "fromat": "mat"}}, "dataset.fromat"),
    ({"metods": ["cs"]}, "metods"),
    ({"methods": ["cs", "magic"]}, "magic"),
    ({"dataset": {}}, "dataset.path or dataset.simulated"),
    ({"split": {"kind": "weird"}}, "split.kind"),
])
def test_config_errors_name_the_key(tmp_path, change, needle):
    import yaml

    cfg = {"dataset": {"path": "x.mat"}, **change}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(GessInputError) as err:
        load_run_config(path)
    assert needle in str(err.value) and str(path) in str(err.value)


def test_missing_dataset_section(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("methods: [cs]\n")
    with pytest.raises(GessInputError, match="dataset"):
        load_run_config(path)


@pytest.mark.slow
def test_tiny_run_end_to_end_and_resume(tmp_path):
    from gess.run import run

    cfg = copy.deepcopy(DEMO_CONFIG)
    cfg["dataset"]["simulated"]["n_per_class"] = 10
    cfg["generator"]["train_steps"] = 6
    cfg["steps"] = 3
    cfg["split"].update(inside_test=6, outside_test=6)
    out = tmp_path / "run"
    summary = run(cfg, out)
    assert set(summary["methods"]) == {"structure", "knn", "semantic", "cs-equal", "cs"}
    assert (out / "report.html").is_file() and (out / "metrics.json").is_file()
    manifest = json.loads((out / "recon" / "cs" / "manifest.json").read_text())
    assert len(manifest) == 12 and {"stimulus_id", "file", "pi_c", "method", "seed", "steps"} <= set(manifest[0])
    stamp = (out / "recon" / "cs" / manifest[0]["file"]).stat().st_mtime_ns
    run(cfg, out)  # a re-run reuses decoders, prior and images
    assert (out / "recon" / "cs" / manifest[0]["file"]).stat().st_mtime_ns == stamp
