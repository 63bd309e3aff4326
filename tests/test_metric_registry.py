"""The metric registry (one entry per metric, read by evaluate, the summary table and the report),
and the run-level checks of gess.evaluation.summary against independent scipy / scikit-learn calls."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from gess.evaluation import evaluate
from gess.evaluation.metrics import resize, to_tensor
from gess.evaluation.registry import (METRICS, Metric, MetricUnavailable, get_metric, metrics_for, register_metric,
                                      unregister_metric)
from gess.evaluation.scoring import print_summary
from gess.evaluation.summary import gate_separation, per_sample_scores, right_digit_rates, trust_check
from gess.report.html import write_html


def mean_abs_error(ctx):
    gt, rec = ctx.pixel_pair()
    return (gt - rec).abs().flatten(1).mean(1).numpy()


def brightness_ratio(ctx):
    return (ctx.reconstructions.flatten(1).mean(1) / ctx.ground_truth.flatten(1).mean(1).clamp(min=1e-6)).numpy()


@pytest.fixture
def toy_metrics():
    """Two metrics registered from outside the package, removed afterwards."""
    added = [register_metric(Metric("toy_mae", mean_abs_error, higher_is_better=False,
                                    definition="mean absolute pixel difference (0 = identical)", protocols=("paper",))),
             register_metric(Metric("toy_brightness", brightness_ratio, higher_is_better=True,
                                    definition="mean brightness of the reconstruction over the stimulus's"))]
    yield added
    for metric in added:
        unregister_metric(metric.name)


def images(n=5, side=12, seed=0):
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 255, (n, side, side, 3), dtype=np.uint8)
    return gt, np.clip(gt.astype(int) + rng.integers(-40, 40, gt.shape), 0, 255).astype(np.uint8)


def summary_text(result) -> str:
    from rich.console import Console

    console = Console(record=True, width=150)
    print_summary(result, console)
    return console.export_text()


def report_text(tmp_path, metrics: dict) -> str:
    return write_html(tmp_path / "report.html", "t", "x: 1\n", {"cs": metrics}, "paper").read_text()


def test_a_registered_metric_is_evaluated_for_its_protocols_only(toy_metrics):
    gt, rec = images()
    paper = evaluate(gt, rec, "paper")
    assert list(paper["metrics"])[-2:] == ["toy_mae", "toy_brightness"]  # after the built-ins, in registration order
    g, r = (resize(resize(to_tensor(x), 256), 425) for x in (gt, rec))  # the paper's pixel resolution
    assert paper["metrics"]["toy_mae"] == pytest.approx(float((g - r).abs().flatten(1).mean(1).mean()))
    assert all("toy_mae" in row for row in paper["per_sample"])
    mindeye = evaluate(gt, rec, "mindeye", weights_dir="/nonexistent")
    assert "toy_mae" not in mindeye["metrics"] and "toy_brightness" in mindeye["metrics"]
    assert [m.name for m in metrics_for("paper")][-2:] == ["toy_mae", "toy_brightness"]


def test_the_summary_and_the_report_take_arrow_and_definition_from_the_registry(toy_metrics, tmp_path):
    gt, rec = images()
    text = summary_text(evaluate(gt, rec, "paper"))
    assert "toy_mae ↓" in text and "toy_brightness ↑" in text and "pixcorr ↑" in text
    html = report_text(tmp_path, {"toy_mae": 0.1, "toy_brightness": 1.0, "effnet": 0.2})
    assert "<b>toy_mae</b> (&darr; lower is better): mean absolute pixel difference" in html
    assert "<b>toy_brightness</b> (&uarr; higher is better)" in html
    assert "<th>toy_mae &darr;</th>" in html and "<th>toy_brightness &uarr;</th>" in html
    assert "<th>effnet &darr;</th>" in html  # a built-in lower-is-better metric


def test_an_unknown_metric_gets_no_arrow(tmp_path):
    """A name from an old metrics file: shown, but with no direction rather than a wrong one."""
    result = {"protocol": "paper", "n": 3, "metrics": {"retired_metric": 0.4, "ssim": 0.5}, "unavailable": {}}
    text = summary_text(result)
    line = next(row for row in text.splitlines() if "retired_metric" in row)
    assert "↑" not in line and "↓" not in line and "ssim ↑" in text
    html = report_text(tmp_path, {"retired_metric": 0.4})
    assert "<th>retired_metric</th>" in html and "<b>retired_metric</b>: not a registered metric" in html


def test_duplicate_names_are_refused_unless_replaced():
    with pytest.raises(ValueError, match="'ssim' is already registered.*replace=True"):
        register_metric(Metric("ssim", mean_abs_error, False, "a second ssim"))
    original = get_metric("ssim")
    try:
        register_metric(Metric("ssim", mean_abs_error, False, "a second ssim"), replace=True)
        assert METRICS["ssim"].definition == "a second ssim"
    finally:
        register_metric(original, replace=True)
    assert get_metric("ssim") is original
    with pytest.raises(ValueError, match="protocols"):
        Metric("toy", mean_abs_error, True, "x", protocols=("nsd",))
    with pytest.raises(TypeError, match="higher_is_better"):
        Metric("toy", mean_abs_error, "lower", "x")
    with pytest.raises(KeyError, match="no metric named 'toy'"):
        get_metric("toy")


def test_an_unavailable_metric_is_listed_with_its_reason():
    def needs_weights(ctx):
        raise MetricUnavailable("toy weights absent; pass --weights-dir")

    register_metric(Metric("toy_needs_weights", needs_weights, True, "x", ("paper",)))
    try:
        gt, rec = images()
        res = evaluate(gt, rec, "paper")
    finally:
        unregister_metric("toy_needs_weights")
    assert res["unavailable"]["toy_needs_weights"] == "toy weights absent; pass --weights-dir"
    assert "toy_needs_weights" not in res["metrics"]


def test_a_metric_returning_the_wrong_shape_is_named():
    register_metric(Metric("toy_scalar", lambda ctx: np.float64(1.0), True, "x", ("paper",)))
    try:
        gt, rec = images()
        with pytest.raises(ValueError, match="'toy_scalar' returned shape"):
            evaluate(gt, rec, "paper")
    finally:
        unregister_metric("toy_scalar")


def test_gate_separation_is_the_mann_whitney_auroc():
    from scipy.stats import mannwhitneyu

    rng = np.random.default_rng(0)
    groups = np.array(["inside"] * 25 + ["outside"] * 30)
    pi_c = np.concatenate([rng.beta(4, 2, 25), rng.beta(2, 4, 30)])
    pi_c[3] = pi_c[40]  # a tie across groups counts one half
    out = gate_separation(pi_c, groups)
    u = mannwhitneyu(pi_c[:25], pi_c[25:]).statistic
    assert out["pi_c_auroc_inside_vs_outside"] == pytest.approx(u / (25 * 30), abs=1e-12)
    assert out["mean_pi_c"] == pytest.approx({"inside": pi_c[:25].mean(), "outside": pi_c[25:].mean()})
    assert gate_separation(pi_c, np.array(["test"] * 55)) == {}


def test_trust_check_is_spearman_of_ranks_and_skips_missing_trust():
    from scipy.stats import rankdata, spearmanr

    rng = np.random.default_rng(1)
    accuracy, pi_c = rng.random(20), rng.random(20)
    trust = accuracy + rng.normal(0, 0.3, 20)
    trust[[2, 7]] = np.nan
    out = trust_check({"cs": {"accuracy": accuracy, "trust": trust}}, pi_c)
    ok = np.isfinite(trust)
    rho = np.corrcoef(rankdata(trust[ok]), rankdata(accuracy[ok]))[0, 1]
    assert out["trust_check"]["cs"]["trust"]["rho"] == pytest.approx(rho, abs=1e-12)
    assert out["trust_check"]["cs"]["trust"]["p"] == pytest.approx(spearmanr(trust[ok], accuracy[ok]).pvalue)
    assert out["trust_check"]["cs"]["trust"]["n"] == 18
    assert out["trust_check"]["cs"]["pi_c"]["rho"] == pytest.approx(spearmanr(pi_c, accuracy).statistic, abs=1e-12)
    assert out["trust_check"]["cs"]["mean_accuracy"] == pytest.approx(accuracy.mean())
    assert out["trust"]["cs"][2] is None and out["trust"]["cs"][0] == pytest.approx(trust[0])
    json.dumps(out)  # written to metrics.json as it is


def test_right_digit_rates_per_group():
    digit = np.array([True, False, True, True, False, False])
    groups = np.array(["inside", "inside", "inside", "outside", "outside", "outside"])
    out = right_digit_rates({"cs": {"digit": digit}, "knn": {"accuracy": np.ones(6)}}, groups)
    assert out == {"cs": {"inside": pytest.approx(2 / 3), "outside": pytest.approx(1 / 3), "all": 0.5}}
    # one group (a given split): the share over all of them, not the same number twice
    assert right_digit_rates({"cs": {"digit": digit}}, np.zeros(6)) == {"cs": {"all": 0.5}}


def test_per_sample_scores_reads_pngs_and_the_manifest_trust(tmp_path):
    from PIL import Image

    from gess.evaluation.identification import two_way_all_pairs

    gt, rec = images(n=4, side=8, seed=2)
    ids = np.array(["s0", "s1", "s2", "s3"])
    test = SimpleNamespace(stimulus_ids=ids[::-1].copy(), images=gt[::-1].copy(), labels=None)
    dataset = SimpleNamespace(test=SimpleNamespace(averaged=lambda: test))
    (tmp_path / "cs").mkdir()
    for s, im in zip(ids, rec):
        Image.fromarray(im).save(tmp_path / "cs" / f"{s}.png")
    (tmp_path / "cs" / "manifest.json").write_text(json.dumps(
        [{"stimulus_id": s, "file": f"{s}.png", "trust": t} for s, t in zip(ids, [0.9, None, 0.4, 0.6])]))
    encode = lambda x: np.asarray(x, float).reshape(len(x), -1)  # noqa: E731
    out = per_sample_scores(dataset, ids, {"cs": tmp_path / "cs"}, encode)
    np.testing.assert_array_equal(out["cs"]["accuracy"], two_way_all_pairs(encode(gt), encode(rec)))
    np.testing.assert_array_equal(out["cs"]["trust"], [0.9, np.nan, 0.4, 0.6])
    assert "digit" not in out["cs"]


def _sklearn_digit_images(side: int = 28):
    from sklearn.datasets import load_digits

    from gess.data.images import resize_images

    digits = load_digits()
    return resize_images(np.rint(digits.images / 16.0 * 255).astype(np.uint8)[..., None], side), digits.target


def test_labels_stand_for_the_digits_read_on_training_stimuli(tmp_path):
    """A dataset whose labels are class indices (digit69's 1 and 2): each label's digit is the one a reader of the
    labelled extra images reads most often among that label's TRAINING stimuli; labels that are no digit give None."""
    from gess.evaluation.classification import label_digits, labelled_npz_reader
    from gess.run import _digit_reading

    images, digits = _sklearn_digit_images()
    pool, stimuli = np.arange(0, len(images), 2), np.arange(1, len(images), 2)
    np.savez(tmp_path / "labelled.npz", images=images[pool], labels=digits[pool])
    np.savez(tmp_path / "unlabelled.npz", images=images[pool])
    assert labelled_npz_reader(tmp_path / "unlabelled.npz") is None and labelled_npz_reader(None) is None
    reader = labelled_npz_reader(tmp_path / "labelled.npz")
    threes, fives = stimuli[digits[stimuli] == 3][:20], stimuli[digits[stimuli] == 5][:20]
    train_rows, test_rows = np.r_[threes[:15], fives[:15]], np.r_[threes[15:], fives[15:]]
    as_labels = lambda rows: np.where(digits[rows] == 3, 1, 2)  # noqa: E731
    assert label_digits(reader, images[train_rows], as_labels(train_rows)) == {1: 3, 2: 5}
    assert label_digits(reader, images[train_rows], np.arange(len(train_rows)) % 2) is None  # labels that are no digit

    def split(rows):
        ids = np.array([f"s{r}" for r in rows])
        return SimpleNamespace(stimulus_ids=ids, images=images[rows], labels=as_labels(rows))

    train, test = split(train_rows), split(test_rows)
    train.averaged, test.averaged = (lambda: train), (lambda: test)
    dataset = SimpleNamespace(train=train, test=test)
    cfg = SimpleNamespace(dataset=SimpleNamespace(extra_images=tmp_path / "labelled.npz"))
    order = list(test.stimulus_ids[::-1])
    read, expected, described = _digit_reading(cfg, dataset, None, order, None)
    assert "1 -> 3, 2 -> 5" in described
    np.testing.assert_array_equal(expected, digits[test_rows][::-1])
    assert (read.predict(images[test_rows]) == digits[test_rows]).mean() >= 0.8
    cfg.dataset.extra_images = tmp_path / "unlabelled.npz"
    assert _digit_reading(cfg, dataset, None, order, None) is None
