"""MindEye's top-1 retrieval, checked against a direct loop over its definition."""
from __future__ import annotations

import numpy as np
import pytest

from gess.errors import GessInputError
from gess.evaluation.retrieval import retrieval


def reference(decoded, stimuli, k, repeats, seed):
    rng = np.random.default_rng(seed)
    image = brain = 0.0
    for _ in range(repeats):
        rows = np.sort(rng.choice(len(decoded), k, replace=False))
        for i in rows:  # image retrieval: the stimulus most similar to decoded i is i's own
            sims = [np.dot(decoded[i], stimuli[j]) / np.linalg.norm(decoded[i]) / np.linalg.norm(stimuli[j]) for j in rows]
            image += rows[int(np.argmax(sims))] == i
            sims = [np.dot(stimuli[i], decoded[j]) / np.linalg.norm(stimuli[i]) / np.linalg.norm(decoded[j]) for j in rows]
            brain += rows[int(np.argmax(sims))] == i
    return image / (repeats * k), brain / (repeats * k)


def test_retrieval_matches_its_definition():
    rng = np.random.default_rng(0)
    stimuli = rng.normal(size=(40, 8))
    decoded = stimuli + rng.normal(scale=1.5, size=stimuli.shape)
    got = retrieval(decoded, stimuli, candidates=25, repeats=4, seed=3)
    image, brain = reference(decoded, stimuli, 25, 4, 3)
    assert got["image"] == pytest.approx(image) and got["brain"] == pytest.approx(brain)
    assert got["chance"] == pytest.approx(1 / 25) and got["candidates"] == 25


def test_perfect_and_fewer_than_300():
    x = np.random.default_rng(1).normal(size=(10, 5))
    got = retrieval(x, x)
    assert got["image"] == 1.0 and got["brain"] == 1.0 and got["candidates"] == 10 and got["chance"] == 0.1


def test_degenerate_inputs_are_refused():
    with pytest.raises(GessInputError, match="at least 2"):
        retrieval(np.ones((1, 3)), np.ones((1, 3)))
    with pytest.raises(GessInputError, match="same shape"):
        retrieval(np.ones((4, 3)), np.ones((4, 2)))


def test_gess_evaluate_reports_retrieval_of_a_decoded_file(tmp_path, capsys):
    import json

    from conftest import write_mat
    from test_cli_errors import run_cli
    from test_reliability import ok

    data = tmp_path / "x.mat"
    write_mat(data, n_train=16, n_test=4, voxels=30, side=8)
    ok(["fit", "--data", data, "--out", tmp_path / "m", "--n-neighbors", "3"])
    ok(["decode", "--model", tmp_path / "m", "--data", data, "--out", tmp_path / "d"])
    ok(["reconstruct", "--model", tmp_path / "m", "--data", data, "--method", "structure", "--out", tmp_path / "r"])
    code, err = run_cli(["evaluate", "--recon", tmp_path / "r", "--data", data, "--decoded", tmp_path / "d" / "decoded.npz",
                         "--out", tmp_path / "m.json"], capsys)
    assert code == 0, err
    r = json.loads((tmp_path / "m.json").read_text())["retrieval"]
    assert r["candidates"] == 4 and r["chance"] == 0.25 and 0 <= r["image"] <= 1 and "retrieval (top-1 among 4" in err
