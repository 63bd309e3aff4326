"""Protocol arithmetic on hand-made inputs with known answers, and the suite's plumbing on tiny random networks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gess.evaluation import evaluate, spectral_angle, two_way_all_pairs, two_way_random
from gess.evaluation.metrics import pixcorr, resize, ssim, to_tensor
from gess.evaluation.networks import SUITE, load_network


def test_all_pairs_identity_and_derangement():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(20, 50))
    assert two_way_all_pairs(f, f).mean() == 1.0
    # reconstruction j is ground truth j-1 and points away from its own: every comparison lost
    one_hot = np.eye(20)
    assert two_way_all_pairs(one_hot, np.roll(one_hot, 1, axis=0) - 0.1 * one_hot).mean() == 0.0


def test_all_pairs_noise_is_chance():
    rng = np.random.default_rng(0)
    score = two_way_all_pairs(rng.normal(size=(200, 40)), rng.normal(size=(200, 40))).mean()
    assert abs(score - 0.5) < 0.05


def test_random_draw_protocol():
    d = np.ones((10, 10)) - np.eye(10)  # own distance 0, others 1
    assert two_way_random(d, trials=10, seed=0).mean() == 1.0
    assert two_way_random(1 - d, trials=10, seed=0).mean() == 0.0
    rng = np.random.default_rng(1)
    noise = two_way_random(rng.random((300, 300)), trials=10, seed=0).mean()
    assert abs(noise - 0.5) < 0.05
    # seeded: the same draws each time
    m = rng.random((30, 30))
    assert np.array_equal(two_way_random(m, seed=3), two_way_random(m, seed=3))


def test_pixel_metrics_on_identical_images():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
    x = resize(to_tensor(imgs), 64)
    assert np.allclose(pixcorr(x, x), 1.0)
    assert np.allclose(ssim(x, x), 1.0)


def test_sam_is_zero_on_scaled_copies():
    rng = np.random.default_rng(0)
    a = rng.random((5, 30))
    assert np.allclose(np.diag(spectral_angle(a, 3.0 * a)), 0.0, atol=1e-6)


def tiny_networks():
    import torchvision

    torch.manual_seed(0)
    return {"alexnet2": torchvision.models.alexnet(), "alexnet5": torchvision.models.alexnet(),
            "inception": torchvision.models.inception_v3(aux_logits=True, init_weights=True, transform_input=True),
            "effnet": torchvision.models.efficientnet_b1(), "swav": torchvision.models.resnet50()}


@pytest.mark.slow
def test_suite_plumbing_with_random_networks(tmp_path):
    """Layers, resizes and shapes of every suite network (random weights: only the plumbing is checked)."""
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 255, (4, 40, 40, 3), dtype=np.uint8)
    nets = tiny_networks()
    shapes = {}
    for name, net in SUITE.items():
        model = load_network(net, model=nets[name])
        shapes[name] = net.features(model, to_tensor(gt)).shape
    assert shapes["alexnet2"] == (4, 192 * 31 * 31)   # features.4 (ReLU after conv2) at 256 input
    assert shapes["alexnet5"] == (4, 256 * 15 * 15)   # features.11 at 256 input
    assert shapes["inception"] == (4, 2048)
    assert shapes["effnet"] == (4, 1280) and shapes["swav"] == (4, 2048)
    res = evaluate(gt, gt, "mindeye", networks=nets, weights_dir=tmp_path)
    assert res["metrics"]["alexnet2"] == 1.0 and res["metrics"]["inception"] == 1.0
    # random EfficientNet/ResNet features are nearly constant, so only their presence is checked here
    assert {"effnet", "swav"} <= set(res["metrics"]) and res["metrics"]["pixcorr"] > 0.999
    assert "clip" in res["unavailable"]


def test_missing_weights_are_listed_not_faked(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 255, (3, 16, 16, 3), dtype=np.uint8)
    res = evaluate(gt, gt[::-1], "mindeye", weights_dir=tmp_path / "none")
    for name in ("alexnet2", "alexnet5", "inception", "effnet", "swav", "clip"):
        assert name in res["unavailable"] and name not in res["metrics"]
    assert "alexnet-owt-7be5be79.pth" in res["unavailable"]["alexnet2"]
    assert {"pixcorr", "ssim", "twoway_rmse", "twoway_sam"} <= set(res["metrics"])


def test_paper_protocol_with_an_encoder():
    from gess.encoders import get_encoder

    rng = np.random.default_rng(0)
    gt = rng.integers(0, 255, (6, 32, 32, 3), dtype=np.uint8)
    res = evaluate(gt, gt, "paper", encoder=get_encoder("efficientnet-lite0"))
    assert res["metrics"]["twoway_rmse"] == 1.0 and res["metrics"]["twoway_sam"] == 1.0
    assert res["metrics"]["twoway_embedding"] == 1.0
    assert res["embedding_encoder"] == "efficientnet-lite0"
    assert len(res["per_sample"]) == 6


def test_knn_baseline_returns_nearest_images():
    from gess.baselines import knn_reconstruct

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(10, 6))
    imgs = np.arange(10)[:, None, None, None] * np.ones((10, 2, 2, 1), np.uint8)
    out, idx = knn_reconstruct(emb[[3, 7]] + 0.01, emb, imgs)
    assert idx.tolist() == [3, 7] and out[0, 0, 0, 0] == 3


def test_paired_correlation_is_the_diagonal_of_the_correlation_matrix():
    from gess.evaluation import correlation_matrix, paired_correlation

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 3, 4)), rng.normal(size=(5, 12))
    assert np.allclose(paired_correlation(a, b), np.diag(correlation_matrix(a, b)))
    assert np.allclose(paired_correlation(a, 2 * a + 1), 1.0)
