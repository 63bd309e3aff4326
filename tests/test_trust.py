"""The trust score (brain consistency) and the checks of a score against per-sample accuracy."""
from __future__ import annotations

import numpy as np

from gess.decoding.trust import BrainConsistency
from gess.evaluation.trustworthiness import describe, identification_per_sample, spearman


def _encoding_world(seed=0, n=120, d=12, v=80, noise=1.0):
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(d, v))
    embeddings = rng.normal(size=(n, d)).astype(np.float32)
    voxels = (embeddings @ weights + noise * rng.normal(size=(n, v)) * np.sqrt(d)).astype(np.float32)
    return rng, weights, embeddings, voxels


def test_true_images_are_trusted_and_unrelated_ones_are_not():
    rng, weights, embeddings, voxels = _encoding_world()
    model = BrainConsistency(n_voxels=40).fit(voxels[:100], embeddings[:100])
    assert len(model.voxels_) <= 40 and (model.voxel_r_ > 0).all()
    own = model.score(embeddings[100:], voxels[100:])
    other = model.score(rng.normal(size=(20, 12)).astype(np.float32), voxels[100:])
    assert own.min() >= 0 and own.max() <= 1
    assert own.mean() > 0.85 and abs(other.mean() - 0.5) < 0.2


def test_trust_follows_how_much_signal_a_trial_carries():
    rng, weights, embeddings, voxels = _encoding_world(noise=0.5, n=200)
    model = BrainConsistency().fit(voxels[:100], embeddings[:100])
    test = embeddings[100:] @ weights
    noisy = test + rng.normal(size=test.shape) * np.linspace(0.1, 5, len(test))[:, None] * np.sqrt(12)
    trust = model.score(embeddings[100:], noisy.astype(np.float32))
    assert spearman(-np.arange(len(test)), trust)["rho"] > 0.6


def test_state_round_trip():
    _, _, embeddings, voxels = _encoding_world()
    model = BrainConsistency().fit(voxels[:100], embeddings[:100])
    again = BrainConsistency(**model.config()).load_state(model.state())
    np.testing.assert_array_equal(again.score(embeddings[100:], voxels[100:]), model.score(embeddings[100:], voxels[100:]))


def test_an_images_match_does_not_depend_on_the_rows_scored_with_it():
    """Best-of-N keeps the best match: the same candidate must score the same alone or in any batch."""
    _, _, embeddings, voxels = _encoding_world(d=64, v=200)
    model = BrainConsistency().fit(voxels[:100], embeddings[:100])
    together = model.match(embeddings[100:], voxels[100:])
    for rows in ([0], [3], [1, 2], list(range(7)), [19, 4, 11]):
        np.testing.assert_array_equal(model.match(embeddings[100:][rows], voxels[100:][rows]), together[rows])


def test_identification_per_sample_and_sentences():
    rng = np.random.default_rng(1)
    truth = rng.normal(size=(10, 6))
    accuracy = identification_per_sample(truth, truth + 0.01 * rng.normal(size=truth.shape))
    assert np.allclose(accuracy, 1.0)
    stats = spearman(np.arange(10), np.arange(10) + 0.0)
    assert stats["rho"] > 0.999 and stats["p"] < 0.01
    assert "significant" in describe("cs", "trust", stats)
    assert "no significant relation" in describe("cs", "pi_c", spearman(np.arange(10), rng.permutation(10)))
    assert "undefined" in describe("cs", "trust", spearman(np.ones(10), np.arange(10)))


def _share_beaten(model, embeddings, voxels):
    """The empirical share of training trials an image's own response beats (gess's trust until 2026-12-03)."""
    from gess.correlation import standardized_rows

    predicted = standardized_rows(model.predicted(embeddings, None, np.float64))
    own = model.match(embeddings, voxels)
    others = predicted @ standardized_rows(np.asarray(model.reference_, np.float64)).T
    return (others < own[:, None]).mean(1)


def test_trust_still_ranks_reconstructions_that_beat_every_training_trial():
    rng, weights, embeddings, voxels = _encoding_world(noise=0.2, n=260)
    model = BrainConsistency().fit(voxels[:100], embeddings[:100])
    test = embeddings[100:] @ weights
    noisy = (test + rng.normal(size=test.shape) * np.linspace(0.05, 1.0, len(test))[:, None] * np.sqrt(12)).astype(np.float32)
    share, trust = _share_beaten(model, embeddings[100:], noisy), model.score(embeddings[100:], noisy)
    at_ceiling = share == 1
    assert at_ceiling.sum() > 100  # the empirical share cannot order these
    assert len(np.unique(trust[at_ceiling])) == at_ceiling.sum()
    assert spearman(-np.arange(len(test))[at_ceiling], trust[at_ceiling])["rho"] > 0.4


def test_trust_reads_the_share_of_training_trials_beaten_below_the_ceiling():
    rng, _, embeddings, voxels = _encoding_world(n=700, noise=2.0)
    model = BrainConsistency().fit(voxels[:600], embeddings[:600])
    candidates = np.concatenate([embeddings[600:], rng.normal(size=(100, 12)).astype(np.float32)])
    responses = np.concatenate([voxels[600:], voxels[600:]])
    share, trust = _share_beaten(model, candidates, responses), model.score(candidates, responses)
    inside = share < 0.98
    assert inside.sum() > 50 and np.abs(trust[inside] - share[inside]).mean() < 0.05


def test_an_images_trust_does_not_depend_on_the_rows_scored_with_it():
    _, _, embeddings, voxels = _encoding_world(d=64, v=200)
    model = BrainConsistency().fit(voxels[:100], embeddings[:100])
    together = model.score(embeddings[100:], voxels[100:])
    for rows in ([0], [5], [2, 9], [19, 4, 11]):
        # equal up to float64 rounding: BLAS may sum one row and a batch in another order (1 ulp seen in CI)
        np.testing.assert_allclose(model.score(embeddings[100:][rows], voxels[100:][rows]), together[rows],
                                   rtol=1e-12, atol=0)
