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
    cfg["generator"]["training"]["steps"] = 6
    cfg["sampling"]["steps"] = 3
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


def tiny_config(**changes) -> dict:
    cfg = copy.deepcopy(DEMO_CONFIG)
    cfg["dataset"]["simulated"].update(n_per_class=6, n_low=60, n_semantic=60)
    cfg["generator"]["training"].update(steps=4, batch_size=4)
    cfg["sampling"]["steps"] = 2
    cfg["split"].update(clusters=6, inside_test=3, outside_test=3)
    cfg.update(changes)
    return cfg


@pytest.mark.parametrize("section,value,needle", [
    ("cs", {"lowpas_factor": 2.0}, "cs.lowpas_factor"),
    ("cs", {"fraction": "most"}, "cs.fraction"),
    ("cs", {"preset": "fast"}, "cs.preset"),
    ("gg", {"sematic_scale": 0.1}, "gg.sematic_scale"),
    ("gg", {"scale": "big"}, "gg.scale"),
    ("gg", {"backprop_denoiser": "yes"}, "gg.backprop_denoiser"),
    ("sampling", {"steps": "twenty"}, "sampling.steps"),
    ("sampling", {"steps": 0}, "sampling.steps"),
    ("generator", {"training": {"stepz": 3}}, "generator.training.stepz"),
    ("decoder", {"n_neighbors": "five"}, "decoder.n_neighbors"),
    ("decoder", {"gate": "magic"}, "decoder.gate"),
    ("seeds", 7, "seeds"),
    ("seeds", [0, -1], "seeds"),
    ("seeds", [1, 1], "seeds"),
])
def test_wrong_option_in_a_run_config_exits_2_naming_the_key(tmp_path, capsys, section, value, needle):
    import yaml

    from gess.cli import main

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"dataset": {"path": "x.mat"}, section: value}))
    with pytest.raises(SystemExit) as exc:
        main(["run", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert needle in err and str(path) in err
    assert not (tmp_path / "out").exists()


def test_run_config_nests_the_stage_option_dataclasses():
    from gess.generation import CSOptions, GGOptions, SamplingOptions

    cfg = load_run_config({"dataset": {"path": "x.mat"}, "cs": {"preset": "released", "tau": 0.1},
                           "gg": {"semantic_every": 2}, "sampling": {"steps": 7}})
    assert cfg.cs == CSOptions(preset="released", tau=0.1) and cfg.cs.lowpass_factor == 6.0 and cfg.cs.tau == 0.1
    assert cfg.gg == GGOptions(semantic_every=2) and cfg.sampling == SamplingOptions(steps=7)


@pytest.mark.slow
def test_every_gg_option_of_a_run_config_reaches_gg(tmp_path, monkeypatch):
    """gess 0.1 passed only gg.scale on; every other GG field was dropped silently."""
    import sys

    from gess.run import run

    reconstruct_module = sys.modules["gess.generation.generate"]

    gg = {"scale": 0.31, "semantic_scale": 0.013, "lowpass_factor": 3.0, "encoder_size": 64, "backprop_denoiser": True,
          "fraction": 0.6, "semantic_every": 2}
    seen = []
    real = reconstruct_module.GradientGuidance

    def spy(*args, **kwargs):
        guidance = real(*args, **kwargs)
        seen.append(guidance.options)
        return guidance

    monkeypatch.setattr(reconstruct_module, "GradientGuidance", spy)
    run(tiny_config(methods=["gg"], gg=gg), tmp_path / "run")
    assert seen and all(o.to_dict() == gg for o in seen)


@pytest.mark.slow
def test_cs_tuning_in_a_run_reads_the_training_folds_only(tmp_path, monkeypatch):
    """cs: {tune: true} chooses CS settings on held-out training folds; no test image is ever a tuning target."""
    import gess.folds as folds_module
    from gess.run import run

    used = []
    real = folds_module.tune_cs

    def spy(backend, folds, *args, **kwargs):
        used.append([s for fold in folds for s in fold["stimulus_ids"]])
        return real(backend, folds, *args, **kwargs)

    monkeypatch.setattr(folds_module, "tune_cs", spy)
    cs = {"tune": True, "tune_lowpass_factors": [1.5, 2.0], "tune_fractions": [1.0], "tune_reference_gains": [1.0],
          "tune_min_structure_weights": [0.0, 0.2], "tune_folds": 2}
    out = tmp_path / "run"
    run(tiny_config(methods=["cs"], cs=cs), out)
    manifest = json.loads((out / "recon" / "cs" / "manifest.json").read_text())
    test_ids = {m["stimulus_id"] for m in manifest}
    assert len(used) == 1 and used[0] and not set(used[0]) & test_ids
    tuned = manifest[0]["tuned"]
    assert set(tuned["tuned_on"]) == set(used[0]) and len(tuned["grid"]) == 3  # 2 low-pass factors, then 1 more floor
    best = max(tuned["grid"], key=lambda r: r["pixcorr"])
    assert (tuned["lowpass_factor"], tuned["min_structure_weight"]) == (best["lowpass_factor"], best["min_structure_weight"])
    run(tiny_config(methods=["cs"], cs=cs), out)  # a re-run reuses the tuning and the images
    assert len(used) == 1
