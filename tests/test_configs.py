"""The run configs that ship in configs/ are valid: every key known, every value in range."""
from __future__ import annotations

from pathlib import Path

import pytest

from gess.runconfig import load_run_config

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))


def test_there_are_configs():
    assert {p.name for p in CONFIGS} >= {"digit69.yaml", "god.yaml", "nsd.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_loads(path):
    cfg = load_run_config(path)
    assert cfg.methods and cfg.seeds


def test_digit69_config_chooses_on_training_folds_over_three_seeds():
    cfg = load_run_config(Path(__file__).parent.parent / "configs" / "digit69.yaml")
    assert cfg.seeds == [0, 1, 2] and cfg.cs.tune and cfg.sampling.tune_candidates
