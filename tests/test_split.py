from __future__ import annotations

import json

import numpy as np
import pytest

from gess.split import generalized_split, nearest_train_similarity


def blobs(k=4, n=15, d=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.abs(rng.normal(size=(k, d))) * 0 + np.eye(k, d) * 5 + 0.2
    emb = np.concatenate([c + rng.normal(size=(n, d)) * 0.1 for c in centres])
    return emb, [f"im{i:03d}" for i in range(k * n)]


def test_split_keeps_clusters_together():
    emb, ids = blobs()
    s = generalized_split(emb, ids, n_clusters=4)
    assert len(s.train) + len(s.test) == len(ids) and not set(s.train) & set(s.test)
    assert len(s.test) == 30  # a balanced cut of four equal clusters
    for c in set(s.clusters):
        members = {i for i, cl in zip(ids, s.clusters) if cl == c}
        assert members <= set(s.train) or members <= set(s.test)
    json.dumps(s.to_json())


def test_stoer_wagner_with_minimum_test_fraction():
    emb, ids = blobs(k=5)
    bare = generalized_split(emb, ids, n_clusters=5, method="stoer-wagner")
    grown = generalized_split(emb, ids, n_clusters=5, method="stoer-wagner", min_test_fraction=0.35)
    assert len(grown.test) >= 0.35 * len(ids) and len(grown.test) >= len(bare.test)


@pytest.mark.slow
def test_generalized_split_is_semantically_far(imagenet_sample):
    """Issue 4: test images are further from training images than under a random split of the same sizes."""
    _, ids, emb = imagenet_sample
    s = generalized_split(emb, ids)
    r = generalized_split(emb, ids, method="random")
    assert len(r.test) == len(s.test)
    assert nearest_train_similarity(emb, ids, s) < nearest_train_similarity(emb, ids, r) - 0.02


def test_split_cli_writes_json_and_picture(tmp_path):
    from PIL import Image

    from gess.cli import main

    rng = np.random.default_rng(0)
    (tmp_path / "imgs").mkdir()
    for i in range(24):
        base = np.zeros((32, 32, 3), np.uint8)
        base[..., i % 3] = 200  # three colour families
        Image.fromarray(np.clip(base + rng.integers(0, 40, base.shape), 0, 255).astype(np.uint8)).save(tmp_path / "imgs" / f"im{i:02d}.png")
    with pytest.raises(SystemExit) as exc:
        main(["split", "--images", str(tmp_path / "imgs"), "--clusters", "4", "--out", str(tmp_path / "split.json")])
    assert exc.value.code == 0
    payload = json.loads((tmp_path / "split.json").read_text())
    assert len(payload["train"]) + len(payload["test"]) == 24
    assert set(payload["nearest_train_similarity"]) == {"this_split", "random_split_same_sizes"}
    assert (tmp_path / "split.png").stat().st_size > 1000
