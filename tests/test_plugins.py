"""Plug-ins from outside the package (tests/plugins/toy_plugin.py) run end to end: CLI, run config, report."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from conftest import write_mat
from test_cli_errors import run_cli

PLUGINS = Path(__file__).parent / "plugins"


@pytest.fixture
def toy_plugin(monkeypatch, tmp_path):
    """GESS_PLUGINS names the toy module; the registries are restored afterwards."""
    from gess.decoding.gating import GATES
    from gess.encoders import ENCODERS
    from gess.evaluation.registry import unregister_metric
    from gess.generation.backends import BACKENDS

    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.setenv("GESS_PLUGINS", "toy_plugin")
    monkeypatch.setenv("GESS_CACHE", str(tmp_path / "cache"))
    yield
    sys.modules.pop("toy_plugin", None)
    ENCODERS.pop("toy-pixels", None)
    GATES.pop("toy-centre-distance", None)
    BACKENDS.pop("toy", None)
    unregister_metric("toy_mae")


def test_a_toy_encoder_backend_and_metric_run_through_the_command_line_and_the_report(tmp_path, capsys, toy_plugin):
    data = tmp_path / "x.mat"
    write_mat(data, n_train=12, n_test=4, voxels=30, side=8)
    generator = tmp_path / "gen"
    generator.mkdir()
    (generator / "toy-backend.json").write_text("{}")

    code, err = run_cli(["fit", "--data", data, "--encoder", "toy-pixels", "--out", tmp_path / "model",
                         "--n-neighbors", "3"], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "model" / "config.json").read_text())["encoder"]["name"] == "toy-pixels"

    code, err = run_cli(["reconstruct", "--model", tmp_path / "model", "--data", data, "--generator", generator,
                         "--method", "semantic", "--steps", "2", "--out", tmp_path / "recon"], capsys)
    assert code == 0, err
    manifest = json.loads((tmp_path / "recon" / "manifest.json").read_text())
    assert len(manifest) == 4 and manifest[0]["settings"]["generator"] == str(generator)

    code, err = run_cli(["evaluate", "--recon", tmp_path / "recon", "--data", data, "--encoder", "toy-pixels",
                         "--out", tmp_path / "m.json"], capsys)
    assert code == 0, err
    assert "toy_mae" in json.loads((tmp_path / "m.json").read_text())["metrics"]
    assert "toy_mae ↓" in err

    config = {"dataset": {"path": str(data)}, "encoder": "toy-pixels", "generator": {"backend": "toy", "path": str(generator)},
              "methods": ["structure", "semantic"], "sampling": {"steps": 2}, "decoder": {"n_neighbors": 3}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    code, err = run_cli(["run", tmp_path / "run.yaml", "--out", tmp_path / "run"], capsys)
    assert code == 0, err
    report = (tmp_path / "run" / "report.html").read_text()
    assert "toy_mae" in report and "toy plug-in: mean absolute pixel difference" in report
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["methods"]["semantic"]["toy_mae"] >= 0


def test_a_gate_from_a_plugin_fits_saves_and_decodes_through_the_command_line(tmp_path, capsys, toy_plugin):
    import numpy as np

    data = tmp_path / "x.mat"
    write_mat(data, n_train=12, n_test=4, voxels=30, side=8)
    code, err = run_cli(["fit", "--data", data, "--encoder", "toy-pixels", "--out", tmp_path / "model", "--n-neighbors",
                         "3", "--gate", "toy-centre-distance", "--gate-options", '{"scale": 2.0}'], capsys)
    assert code == 0, err
    saved = json.loads((tmp_path / "model" / "config.json").read_text())["gate"]
    assert saved == {"name": "toy-centre-distance", "scale": 2.0, "calibration": "conformal"}
    code, err = run_cli(["decode", "--model", tmp_path / "model", "--data", data, "--out", tmp_path / "decoded"], capsys)
    assert code == 0, err  # the saved model names the plug-in's gate, and loading finds it
    pi_c = np.load(tmp_path / "decoded" / "decoded.npz")["pi_c"]
    assert pi_c.shape == (4,) and ((pi_c > 0) & (pi_c <= 1)).all()

    from gess.decoding.gating import GATES

    registered = GATES.pop("toy-centre-distance")  # as in a session that did not load the plug-in
    try:
        code, err = run_cli(["decode", "--model", tmp_path / "model", "--data", data, "--out", tmp_path / "d2"], capsys)
    finally:
        GATES["toy-centre-distance"] = registered
    assert code == 2 and "config.json" in err and "gate.name" in err and "GESS_PLUGINS" in err, err
    assert len(err.strip().splitlines()) == 1

    config = {"dataset": {"path": str(data)}, "decoder": {"gate": "no-such-gate"}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    code, err = run_cli(["run", tmp_path / "run.yaml", "--out", tmp_path / "run"], capsys)
    assert code == 2 and "decoder.gate" in err and "toy-centre-distance" in err and "'no-such-gate'" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


@pytest.mark.parametrize("options,needles", [('{"scal": 2}', ["--gate-options", "gate_options.scal", "scale"]),
                                             ('{"calibration": "rank"}', ["gate_options.calibration", "conformal"])])
def test_bad_gate_options_exit_2_before_any_data_is_read(tmp_path, capsys, toy_plugin, options, needles):
    code, err = run_cli(["fit", "--data", tmp_path / "never-read.mat", "--out", tmp_path / "model", "--gate",
                         "toy-centre-distance", "--gate-options", options], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and all(n in err for n in needles), err
    assert not (tmp_path / "model").exists()
    config = {"dataset": {"path": str(tmp_path / "never-read.mat")},
              "decoder": {"gate": "toy-centre-distance", "gate_options": json.loads(options)}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    code, err = run_cli(["run", tmp_path / "run.yaml", "--out", tmp_path / "run"], capsys)
    assert code == 2 and "decoder.gate_options." in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


def test_registering_a_gate_needs_a_named_gate_class():
    from gess.decoding.gating import GATES, Gate, register_gate

    with pytest.raises(TypeError, match="Gate subclass"):
        register_gate(object)
    with pytest.raises(TypeError, match="its own name"):
        register_gate(type("Unnamed", (Gate,), {}))
    with pytest.raises(ValueError, match="already registered"):
        register_gate(GATES["kde"])


def test_an_unknown_backend_in_a_run_config_names_the_registered_ones(tmp_path, capsys):
    config = {"dataset": {"path": "x.mat"}, "generator": {"backend": "dalle"}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    code, err = run_cli(["run", tmp_path / "run.yaml", "--out", tmp_path / "run"], capsys)
    assert code == 2 and "generator.backend" in err and "pixel" in err and "unclip" in err and "'dalle'" in err


def test_a_plugin_that_cannot_be_imported_is_one_line_naming_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GESS_PLUGINS", "no_such_gess_plugin")
    code, err = run_cli(["demo", "--out", tmp_path / "d"], capsys)
    assert code == 2 and "GESS_PLUGINS" in err and "no_such_gess_plugin" in err and len(err.strip().splitlines()) == 1


def test_an_encoder_source_no_family_takes_is_refused_naming_the_families(capsys):
    from gess.encoders import get_encoder
    from gess.errors import GessInputError

    with pytest.raises(GessInputError, match="efficientnet-lite0.*clip"):
        get_encoder("someone/some-model")  # a hub id of no registered family: no longer taken for CLIP


def test_registering_a_name_twice_is_refused_unless_replaced():
    from gess.encoders import ENCODERS, EncoderEntry, register_encoder
    from gess.generation.backends import BACKENDS, BackendEntry, register_backend

    with pytest.raises(ValueError, match="already registered"):
        register_encoder(EncoderEntry("clip", ENCODERS["clip"].build))
    with pytest.raises(ValueError, match="already registered"):
        register_backend(BackendEntry("pixel", "x:y", lambda d: False))
    assert register_backend(BACKENDS["pixel"], replace=True) is BACKENDS["pixel"]
