"""Best-of-N by brain consistency: seeding, selection, the manifest, bad values."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from conftest import write_mat
from test_cli_errors import assert_one_line_error, run_cli
from test_reliability import _tiny_prior_args, ok


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def within_one_level(a, b) -> bool:
    """Two PNGs equal up to float rounding: another batch size sums in another order (~2e-7 in the floats),
    which can move a pixel across a rounding boundary (docs/reliability.md, "Determinism")."""
    from gess.data.images import load_image

    x, y = load_image(a).astype(int), load_image(b).astype(int)
    return x.shape == y.shape and np.abs(x - y).max() <= 1


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A fitted model and a tiny pixel prior on a small digit69-like file."""
    root = tmp_path_factory.mktemp("cand")
    data = root / "x.mat"
    write_mat(data, n_train=16, n_test=3, voxels=40, side=8)
    ok(["fit", "--data", data, "--out", root / "m", "--n-neighbors", "3"])
    ok(_tiny_prior_args(data, root / "p", steps=4))
    return root, data


def _reconstruct(root, data, out, candidates, batch_size, method="cs"):
    ok(["reconstruct", "--model", root / "m", "--data", data, "--generator", root / "p", "--method", method,
        "--steps", "3", "--candidates", str(candidates), "--batch-size", str(batch_size), "--out", out])
    return json.loads((out / "manifest.json").read_text())


def test_candidate_seeds_depend_on_the_stimulus_seed_and_index_only():
    from gess.generation.sampling import candidate_seed

    assert candidate_seed(7, 0) == 7  # one candidate: the images of gess without best-of-N
    seeds = [candidate_seed(s, k) for s in range(50) for k in range(8)]
    assert len(set(seeds)) == len(seeds) and all(0 <= s < 2**31 for s in seeds)
    assert candidate_seed(3, 2) == candidate_seed(3, 2)


def test_best_of_n_keeps_the_candidate_the_brain_prefers_whatever_the_batch(fitted, tmp_path):
    root, data = fitted
    a = _reconstruct(root, data, tmp_path / "a", candidates=3, batch_size=1)
    b = _reconstruct(root, data, tmp_path / "b", candidates=3, batch_size=4)
    assert [e["stimulus_id"] for e in a] == [e["stimulus_id"] for e in b]
    for ea, eb in zip(a, b):
        assert within_one_level(tmp_path / "a" / ea["file"], tmp_path / "b" / eb["file"])
        assert ea["chosen_candidate"] == eb["chosen_candidate"]
        matches = [c["brain_match"] for c in ea["candidates"]]
        assert len(matches) == 3 and ea["chosen_candidate"] == int(np.argmax(matches))
        chosen = ea["candidates"][ea["chosen_candidate"]]
        assert sha(tmp_path / "a" / chosen["file"]) == sha(tmp_path / "a" / ea["file"])
        assert ea["trust"] == chosen["trust"]
        assert [c["seed"] for c in ea["candidates"]] == [c["seed"] for c in eb["candidates"]]


def test_more_candidates_keep_the_first_ones_and_one_candidate_is_plain_sampling(fitted, tmp_path):
    root, data = fitted
    # one row a batch: the same arithmetic for a candidate whatever N, so the bytes are equal (other batch
    # sizes agree up to rounding: test_best_of_n_keeps_the_candidate_the_brain_prefers_whatever_the_batch)
    two = _reconstruct(root, data, tmp_path / "two", candidates=2, batch_size=1)
    four = _reconstruct(root, data, tmp_path / "four", candidates=4, batch_size=1)
    one = _reconstruct(root, data, tmp_path / "one", candidates=1, batch_size=1)
    for e2, e4, e1 in zip(two, four, one):
        for k in range(2):
            assert sha(tmp_path / "two" / e2["candidates"][k]["file"]) == sha(tmp_path / "four" / e4["candidates"][k]["file"])
        assert sha(tmp_path / "one" / e1["file"]) == sha(tmp_path / "two" / e2["candidates"][0]["file"])
        assert "candidates" not in e1
    assert max(e["candidates"][e["chosen_candidate"]]["brain_match"] for e in four) >= \
        max(e["candidates"][e["chosen_candidate"]]["brain_match"] for e in two)


def test_a_rerun_with_other_candidates_regenerates_and_the_same_resumes(fitted, tmp_path):
    root, data = fitted
    first = _reconstruct(root, data, tmp_path / "r", candidates=2, batch_size=2)
    mtimes = {e["file"]: (tmp_path / "r" / e["file"]).stat().st_mtime_ns for e in first}
    again = _reconstruct(root, data, tmp_path / "r", candidates=2, batch_size=2)
    assert again == first and all((tmp_path / "r" / f).stat().st_mtime_ns == t for f, t in mtimes.items())
    assert all(len(e["candidates"]) == 3 for e in _reconstruct(root, data, tmp_path / "r", candidates=3, batch_size=2))


def test_a_rerun_scores_again_the_trust_an_earlier_definition_wrote_and_keeps_the_images(fitted, tmp_path):
    root, data = fitted
    first = _reconstruct(root, data, tmp_path / "r", candidates=2, batch_size=2)
    assert all(e["trust_definition"] == "normal-margin" for e in first)
    assert all(c["trust_definition"] == "normal-margin" for e in first for c in e["candidates"])
    files = [e["file"] for e in first] + [c["file"] for e in first for c in e["candidates"]]
    mtimes = {f: (tmp_path / "r" / f).stat().st_mtime_ns for f in files}
    older = json.loads(json.dumps(first))  # what a gess of the empirical share wrote: other values, no definition
    for entry in older:
        for scored in [entry] + entry["candidates"]:
            scored["trust"] = 1.0
            del scored["trust_definition"]
    (tmp_path / "r" / "manifest.json").write_text(json.dumps(older))
    again = _reconstruct(root, data, tmp_path / "r", candidates=2, batch_size=2)

    def trusts(entries):
        return [[scored["trust"] for scored in [e] + e["candidates"]] for e in entries]

    # scored in other batches than the first time: equal to the last bits the encoder's float32 allows
    np.testing.assert_allclose(trusts(again), trusts(first), rtol=1e-6)
    assert all(c["trust_definition"] == "normal-margin" for e in again for c in [e] + e["candidates"])
    assert [{k: v for k, v in e.items() if k not in ("trust", "candidates")} for e in again] == \
        [{k: v for k, v in e.items() if k not in ("trust", "candidates")} for e in first]
    assert all((tmp_path / "r" / f).stat().st_mtime_ns == t for f, t in mtimes.items())
    # a candidate deleted by hand: the others are scored again, it keeps no trust of the old definition
    (tmp_path / "r" / first[0]["candidates"][1]["file"]).unlink()
    (tmp_path / "r" / "manifest.json").write_text(json.dumps(older))
    third = _reconstruct(root, data, tmp_path / "r", candidates=2, batch_size=2)
    assert third[0]["candidates"][1]["trust"] is None and "trust_definition" not in third[0]["candidates"][1]
    np.testing.assert_allclose(trusts(third)[1:], trusts(first)[1:], rtol=1e-6)
    assert third[0]["trust"] == pytest.approx(first[0]["trust"], rel=1e-6)


@pytest.mark.parametrize("value", ["0", "-2", "nan", "1.5"])
def test_bad_candidate_counts_exit_2_in_one_line(fitted, tmp_path, capsys, value):
    root, data = fitted
    code, err = run_cli(["reconstruct", "--model", root / "m", "--data", data, "--generator", root / "p",
                         "--candidates", value, "--out", tmp_path / "r"], capsys)
    assert_one_line_error(code, err, "candidates")
    assert not (tmp_path / "r").exists()


def test_bad_candidates_in_a_run_config_name_the_key():
    from gess.errors import GessInputError
    from gess.runconfig import load_run_config

    with pytest.raises(GessInputError, match="candidates"):
        load_run_config({"dataset": {"path": "x.mat"}, "sampling": {"candidates": 0}})


@pytest.mark.parametrize("reduction, title", [("best", "Best-of-3 (cs)"), ("mean", "Mean-of-3 (cs)")])
def test_a_run_with_candidates_shows_them_in_the_report(fitted, tmp_path, reduction, title):
    import yaml

    root, data = fitted
    config = {"dataset": {"path": str(data)}, "methods": ["structure", "cs"], "decoder": {"n_neighbors": 3},
              "sampling": {"steps": 2, "candidates": 3, "guidance_scale": 1.0, "candidate_reduction": reduction},
              "generator": {"path": str(root / "p")}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    ok(["run", tmp_path / "run.yaml", "--out", tmp_path / "run"])
    report = (tmp_path / "run" / "report.html").read_text()
    assert title in report and (tmp_path / "run" / "candidates-cs.png").is_file()
    manifest = json.loads((tmp_path / "run" / "recon" / "cs" / "manifest.json").read_text())
    assert all(len(e["candidates"]) == 3 for e in manifest)


def test_the_number_of_candidates_is_chosen_on_training_folds_and_recorded(fitted, tmp_path, monkeypatch):
    monkeypatch.setenv("GESS_CACHE", str(tmp_path / "cache"))
    root, data = fitted
    out = tmp_path / "tuned"
    ok(["reconstruct", "--model", root / "m", "--data", data, "--generator", root / "p", "--method", "semantic",
        "--steps", "2", "--tune-candidates", "--candidate-grid", "[1, 2]", "--candidate-tuning-stimuli", "3",
        "--out", out])
    entries = json.loads((out / "manifest.json").read_text())
    record = entries[0]["tuned"]["candidates"]
    assert set(record["pixcorr_by_candidates"]) == {"1", "2"} and record["stimuli_scored"] == 3
    assert set(record["pixcorr_by_reduction"]) == {"best", "mean"}
    means = {(r, int(n)): m for r, by_n in record["pixcorr_by_reduction"].items() for n, m in by_n.items()}
    from gess.folds import choose_candidate_setting
    assert (record["reduction"], record["candidates"]) == choose_candidate_setting(means, record["tolerance"])
    assert all(len(e.get("candidates", [None])) == record["candidates"] for e in entries)
    assert all(e.get("kept", "best") == record["reduction"] for e in entries if "candidates" in e)
    assert set(record["tuned_on"]).isdisjoint({e["stimulus_id"] for e in entries})  # the test set never enters


def test_best_of_prefixes_picks_by_brain_match_among_the_first_n(monkeypatch):
    import gess.folds as folds

    targets = np.zeros((2, 4, 4, 1), np.uint8)
    images = np.zeros((6, 4, 4, 3), np.uint8)
    quality = np.array([0.1, 0.5, 0.9, 0.3, 0.2, 0.8])   # 2 stimuli x 3 candidates
    matches = np.array([0.0, 1.0, 0.5, 2.0, 0.0, 3.0])
    monkeypatch.setattr(folds, "generate_images", lambda *a, **k: images)
    monkeypatch.setattr(folds, "candidate_scores", lambda *a, **k: (None, matches))
    monkeypatch.setattr(folds, "fold_pixcorr", lambda imgs, tgt: quality)
    fold = {"c": np.zeros((2, 3)), "c_prime": np.zeros((2, 3)), "s": np.zeros((2, 4, 4, 1)), "pi_c": np.ones(2),
            "target": targets, "fmri": np.zeros((2, 5)), "decoder": None}
    got = folds._candidate_prefix_scores(fold, None, "semantic", None, None, None, None, [1, 2, 3], ["best"])
    assert got["best", 1].tolist() == [0.1, 0.3]      # the first candidate
    assert got["best", 2].tolist() == [0.5, 0.3]      # stimulus 0: candidate 1 matches better; stimulus 1 keeps 0
    assert got["best", 3].tolist() == [0.5, 0.8]      # stimulus 1: candidate 2 matches best
    assert set(got) == {("best", 1), ("best", 2), ("best", 3)}


def test_mean_prefixes_score_the_mean_of_the_first_n_candidates(monkeypatch):
    import gess.folds as folds
    from gess.generation.sampling import candidate_mean

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 4, 4, 3), dtype=np.uint8)   # 2 stimuli x 3 candidates
    seen = []
    monkeypatch.setattr(folds, "generate_images", lambda *a, **k: images)
    monkeypatch.setattr(folds, "fold_pixcorr", lambda imgs, tgt: seen.append(imgs) or np.zeros(len(imgs)))
    fold = {"c": np.zeros((2, 3)), "c_prime": np.zeros((2, 3)), "s": np.zeros((2, 4, 4, 1)), "pi_c": np.ones(2),
            "target": np.zeros((2, 4, 4, 1), np.uint8), "fmri": np.zeros((2, 5)), "decoder": None}
    got = folds._candidate_prefix_scores(fold, None, "cs", None, None, None, None, [1, 3], ["mean"])
    assert set(got) == {("mean", 1), ("mean", 3)}
    assert np.array_equal(seen[0], images[[0, 3]])                  # the mean of one candidate is that candidate
    assert np.array_equal(seen[1][1], candidate_mean(images[3:6]))


def test_the_candidate_setting_is_the_smallest_n_near_the_best_then_the_better_reduction():
    from gess.folds import choose_candidate_setting

    means = {("best", 1): 0.70, ("best", 2): 0.71, ("best", 4): 0.712, ("mean", 1): 0.70, ("mean", 2): 0.72,
             ("mean", 4): 0.73}
    assert choose_candidate_setting(means, 0.005) == ("mean", 4)
    assert choose_candidate_setting(means, 0.011) == ("mean", 2)
    assert choose_candidate_setting(means, 0.05) == ("best", 1)     # one candidate: the same image either way
    assert choose_candidate_setting({("best", 1): 0.5, ("best", 2): 0.6, ("mean", 2): 0.55}, 0.0) == ("best", 2)


def test_the_mean_of_the_candidates_is_kept_whatever_the_batch(fitted, tmp_path):
    from gess.data.images import load_image
    from gess.generation.sampling import candidate_mean

    root, data = fitted
    runs = {}
    for name, batch in (("a", 1), ("b", 4)):
        ok(["reconstruct", "--model", root / "m", "--data", data, "--generator", root / "p", "--method", "cs",
            "--steps", "3", "--candidates", "3", "--candidate-reduction", "mean", "--batch-size", str(batch),
            "--out", tmp_path / name])
        runs[name] = json.loads((tmp_path / name / "manifest.json").read_text())
    best = _reconstruct(root, data, tmp_path / "best", candidates=3, batch_size=2)
    for ea, eb, e_best in zip(runs["a"], runs["b"], best):
        assert within_one_level(tmp_path / "a" / ea["file"], tmp_path / "b" / eb["file"])
        assert ea["kept"] == "mean" and "chosen_candidate" not in ea and ea["trust"] is not None
        drawn = np.stack([load_image(tmp_path / "a" / c["file"]) for c in ea["candidates"]])
        assert np.array_equal(load_image(tmp_path / "a" / ea["file"]), candidate_mean(drawn))
        # the same candidates as best-of-3 draws (batch 1 against 2: up to rounding), only the kept image differs
        assert [c["seed"] for c in ea["candidates"]] == [c["seed"] for c in e_best["candidates"]]
        assert all(within_one_level(tmp_path / "a" / c["file"], tmp_path / "best" / d["file"])
                   for c, d in zip(ea["candidates"], e_best["candidates"]))


def test_a_bad_candidate_reduction_exits_2_in_one_line(fitted, tmp_path, capsys):
    root, data = fitted
    code, err = run_cli(["reconstruct", "--model", root / "m", "--data", data, "--generator", root / "p",
                         "--candidates", "2", "--candidate-reduction", "median", "--out", tmp_path / "r"], capsys)
    assert_one_line_error(code, err, "candidate")
    assert not (tmp_path / "r").exists()


def test_candidate_tuning_scores_a_seeded_subset_cut_alike_across_folds():
    import gess.folds as folds

    outputs = [{"c": np.arange(n)[:, None] + 100 * f, "c_prime": np.arange(n)[:, None] + 100 * f,
                "s": np.arange(n) + 100 * f, "pi_c": np.arange(n) + 100 * f, "stimulus_ids": [f"{f}-{i}" for i in range(n)],
                "target": np.arange(n) + 100 * f, "fmri": np.arange(n)[:, None] + 100 * f, "decoder": f"model {f}"}
               for f, n in enumerate([5, 4, 6])]
    assert folds._scored_subsets(outputs, None) is outputs and folds._scored_subsets(outputs, 15) is outputs
    cut = folds._scored_subsets(outputs, 7)
    assert sum(len(fold["c"]) for fold in cut) == 7
    for fold in cut:
        f = int(fold["stimulus_ids"][0].split("-")[0])
        rows = [int(s.split("-")[1]) for s in fold["stimulus_ids"]]
        assert fold["decoder"] == f"model {f}"
        for key in ("c", "c_prime", "fmri"):
            assert fold[key][:, 0].tolist() == [r + 100 * f for r in rows]
        for key in ("s", "pi_c", "target"):
            assert fold[key].tolist() == [r + 100 * f for r in rows]
    again = folds._scored_subsets(outputs, 7)  # seeded: the same subset again
    assert [f["stimulus_ids"].tolist() for f in again] == [f["stimulus_ids"].tolist() for f in cut]


def test_cs_tuning_is_reused_across_candidate_settings_it_never_reads(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import gess.folds as folds
    from gess.generation import CSOptions, SamplingOptions

    monkeypatch.setenv("GESS_CACHE", str(tmp_path / "cache"))
    calls = []
    monkeypatch.setattr(folds, "tune_cs", lambda *a, **k: calls.append(1) or (CSOptions(lowpass_factor=3.0, reference_gain=2.0),
                                                                             0.1, []))
    decoder = SimpleNamespace(metadata_={"fingerprint": "decoders"}, get_params=dict)
    train = SimpleNamespace(fmri=np.zeros((4, 3)), images=np.zeros((4, 8, 8, 1), np.uint8), stimulus_ids=np.arange(4))
    backend = SimpleNamespace(config=lambda: {"kind": "tiny"})

    def tune(**sampling):
        return folds.tune_cs_on_training_folds(decoder, train, backend, "cs", SamplingOptions(**sampling),
                                               CSOptions(tune=True), fold_outputs=lambda: [])

    chosen, record = tune()
    assert (chosen.lowpass_factor, chosen.reference_gain, record["min_structure_weight"]) == (3.0, 2.0, 0.1)
    assert len(calls) == 1
    again, _ = tune(candidate_tuning_stimuli=5, candidates=4)  # read by the candidate tuning only
    assert len(calls) == 1 and (again.lowpass_factor, again.reference_gain) == (3.0, 2.0)  # from the cached record
    tune(steps=7)
    assert len(calls) == 2


def test_sampling_without_a_guidance_scale_uses_the_generators_default(fitted, tmp_path):
    from gess.generation.sampling import DEFAULT_GUIDANCE_SCALE, SamplingOptions, guidance_scale_for

    class Plugin:  # a generator that names no default of its own
        pass

    assert guidance_scale_for(SamplingOptions(), Plugin()) == DEFAULT_GUIDANCE_SCALE == 5.0
    assert guidance_scale_for(SamplingOptions(guidance_scale=2.5), Plugin()) == 2.5
    root, data = fitted
    runs = {}
    for name, flags in (("default", []), ("one", ["--guidance-scale", "1"]), ("five", ["--guidance-scale", "5"])):
        ok(["reconstruct", "--model", root / "m", "--data", data, "--generator", root / "p", "--method", "cs",
            "--steps", "3", *flags, "--out", tmp_path / name])
        runs[name] = json.loads((tmp_path / name / "manifest.json").read_text())
    assert all(e["guidance_scale"] == 1.0 for e in runs["default"])   # gess's pixel prior: 1
    assert all(e["guidance_scale"] == 5.0 for e in runs["five"])
    for e, e1, e5 in zip(runs["default"], runs["one"], runs["five"]):
        assert sha(tmp_path / "default" / e["file"]) == sha(tmp_path / "one" / e1["file"])
    assert any(sha(tmp_path / "default" / e["file"]) != sha(tmp_path / "five" / e5["file"])
               for e, e5 in zip(runs["default"], runs["five"]))


def test_cs_settings_are_chosen_on_training_folds_unless_given(fitted, tmp_path, monkeypatch, capsys):
    """Plain `gess reconstruct --method cs` tunes CS on held-out training folds (capped at --cs-tune-stimuli);
    a setting given by hand is used as given, untuned."""
    monkeypatch.setenv("GESS_CACHE", str(tmp_path / "cache"))
    root, data = fitted
    base = ["reconstruct", "--model", root / "m", "--data", data, "--generator", root / "p", "--method", "cs",
            "--steps", "2", "--cs-tune-fractions", "[0.9]", "--cs-tune-reference-gains", "[1.0]"]
    ok(base + ["--cs-tune-stimuli", "5", "--out", tmp_path / "plain"])
    entries = json.loads((tmp_path / "plain" / "manifest.json").read_text())
    tuned = entries[0]["tuned"]
    assert tuned["stimuli_scored"] == 5 and set(tuned["tuned_on"]).isdisjoint({e["stimulus_id"] for e in entries})
    best = max(tuned["grid"], key=lambda r: r["pixcorr"])
    assert (tuned["lowpass_factor"], tuned["min_structure_weight"]) == (best["lowpass_factor"], best["min_structure_weight"])
    ok(base + ["--cs-lowpass-factor", "3", "--out", tmp_path / "given"])
    entries = json.loads((tmp_path / "given" / "manifest.json").read_text())
    assert "tuned" not in entries[0] and entries[0]["settings"]["cs"]["lowpass_factor"] == 3.0
    # too few training stimuli for the folds (16 < 2 x 9): said once, the preset's settings used
    capsys.readouterr()
    ok(base + ["--cs-tune-folds", "9", "--out", tmp_path / "small"])
    said = " ".join(capsys.readouterr().err.split())
    entries = json.loads((tmp_path / "small" / "manifest.json").read_text())
    assert "CS not tuned: 16 training stimuli" in said and "tuned" not in entries[0]
