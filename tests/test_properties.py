"""Properties of the mathematics, checked on generated inputs (hypothesis)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
seeds = st.integers(0, 2**31 - 1)


def gaussian(seed, *shape):
    return np.random.default_rng(seed).normal(size=shape)


@SETTINGS
@given(seed=seeds, k=st.integers(2, 6), reg=st.floats(0.0, 20.0))
def test_released_reprojection_weights_sum_to_one_and_keep_a_manifold_point(seed, k, reg):
    from gess.decoding.semantic import reproject_released

    neighbours = gaussian(seed, k, 8)
    w = reproject_released(neighbours[0], neighbours, reg)
    assert np.isclose(w.sum(), 1.0)
    np.testing.assert_allclose(w @ neighbours, neighbours[0], atol=1e-6)  # a point on the manifold stays put


@SETTINGS
@given(seed=seeds, k=st.integers(2, 6))
def test_lle_reprojection_weights_sum_to_one(seed, k):
    from gess.decoding.semantic import reproject_lle

    neighbours = gaussian(seed, k, 8)
    w = reproject_lle(gaussian(seed + 1, 8), neighbours, 1e-3)
    assert np.isclose(w.sum(), 1.0)


@SETTINGS
@given(seed=seeds, n=st.integers(3, 30), d=st.integers(1, 10))
def test_alignment_gives_exactly_the_target_statistics(seed, n, d):
    from gess.decoding import momentum_align

    pred = gaussian(seed, n, d) * 3 + 1
    mean, std = gaussian(seed + 1, d), np.abs(gaussian(seed + 2, d)) + 0.1
    out = momentum_align(pred, mean, std)
    np.testing.assert_allclose(out.mean(0), mean, atol=1e-4)
    np.testing.assert_allclose(out.std(0), std, rtol=1e-3)


@SETTINGS
@given(seed=seeds, n_ref=st.integers(1, 50), calibration=st.sampled_from(["conformal", "minmax"]))
def test_pi_c_is_in_unit_interval_and_monotone_in_typicality(seed, n_ref, calibration):
    from gess.decoding.gating import calibrate

    reference = np.sort(gaussian(seed, n_ref))
    scores = np.sort(gaussian(seed + 1, 40) * 2)
    pi = calibrate(scores, reference, calibration)
    assert ((pi >= 0) & (pi <= 1)).all()
    assert (np.diff(pi) >= 0).all()


@pytest.fixture(scope="module")
def fitted_decoders():
    from gess.decoding import GESSDecoder

    rng = np.random.default_rng(0)
    X, C, S = rng.normal(size=(40, 20)), rng.normal(size=(40, 5)), rng.random((40, 2, 2, 1))
    return {gate: GESSDecoder(gate=gate, n_neighbors=3, alignment="reference").fit(X, C, S)
            for gate in ("prediction-knn", "kde", "voxel-knn", "brain-residual")}


@SETTINGS
@given(seed=seeds, gate=st.sampled_from(["prediction-knn", "kde", "voxel-knn", "brain-residual"]), others=st.integers(1, 6))
def test_a_samples_pi_c_ignores_the_other_samples(fitted_decoders, seed, gate, others):
    model = fitted_decoders[gate]
    X = gaussian(seed, 1 + others, 20)
    alone = model.decode(np.repeat(X[:1], 2, 0)).pi_c[0]
    together = model.decode(X).pi_c[0]
    assert np.isclose(alone, together)


@pytest.fixture(scope="module")
def tiny_backend():
    from gess.generation.backends.pixel import PixelBackend, PixelPrior

    torch.manual_seed(0)
    return PixelBackend(PixelPrior(image_size=8, channels=1, cond_dim=4, block_out_channels=(8, 16), norm_num_groups=4))


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=seeds)
def test_cs_with_zero_structural_weight_is_plain_sampling(tiny_backend, seed):
    from gess.generation import ComponentSubstitution, CSOptions, sample

    rng = np.random.default_rng(seed)
    cond = tiny_backend.condition(rng.normal(size=(2, 4)), rng.normal(size=(2, 4)))
    plain = sample(tiny_backend, cond, [seed % 1000, seed % 1000 + 1], steps=3)
    cs = ComponentSubstitution(torch.randn(2, 1, 8, 8), np.zeros(2), CSOptions(), steps=3)
    assert torch.equal(sample(tiny_backend, cond, [seed % 1000, seed % 1000 + 1], steps=3, substitution=cs), plain)


@SETTINGS
@given(seed=seeds, n=st.integers(2, 12))
def test_two_way_identification_is_permutation_equivariant(seed, n):
    from gess.evaluation import two_way_all_pairs

    gt, rec = gaussian(seed, n, 6), gaussian(seed + 1, n, 6)
    perm = np.random.default_rng(seed).permutation(n)
    np.testing.assert_allclose(two_way_all_pairs(gt[perm], rec[perm]), two_way_all_pairs(gt, rec)[perm])


@SETTINGS
@given(seed=seeds, n=st.integers(6, 25), alpha=st.floats(0.01, 1000.0))
def test_ridge_predictions_are_equivariant_to_permuting_trials(seed, n, alpha):
    from gess.decoding import Ridge

    X, Y = gaussian(seed, n, 7), gaussian(seed + 1, n, 3)
    perm = np.random.default_rng(seed).permutation(n)
    test = gaussian(seed + 2, 4, 7)
    a = Ridge(alpha, dtype="float64").fit(X, Y).predict(test)  # the mathematics, not float32's rounding
    b = Ridge(alpha, dtype="float64").fit(X[perm], Y[perm]).predict(test)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@settings(max_examples=10, deadline=None)
@given(seed=seeds, n_clusters=st.integers(2, 8), method=st.sampled_from(["kernighan-lin", "stoer-wagner"]))  # "random" is the control
def test_generalized_split_never_puts_a_cluster_on_both_sides(seed, n_clusters, method):
    from gess.split import generalized_split

    emb = gaussian(seed, 60, 5)
    ids = [f"im{i}" for i in range(60)]
    split = generalized_split(emb, ids, n_clusters, method, seed=seed % 1000)
    train, test = set(split.train), set(split.test)
    assert train and test and not train & test and train | test == set(ids)
    for cluster in set(split.clusters):
        members = {i for i, c in zip(split.ids, split.clusters) if c == cluster}
        assert members <= train or members <= test


@SETTINGS
@given(seed=seeds, n=st.integers(1, 6), width=st.integers(2, 300), offset=st.floats(-1e3, 1e3),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_row_correlations_are_pearson_in_every_dtype(seed, n, width, offset, dtype):
    from gess.correlation import correlation_matrix, paired_correlation

    a = (gaussian(seed, n, width) + offset).astype(dtype)
    b = (gaussian(seed + 1, n, width) * 3 - offset).astype(dtype)
    expected = np.array([np.corrcoef(a[i].astype(np.float64), b[i].astype(np.float64))[0, 1] for i in range(n)])
    tolerance = 1e-9 if dtype == np.float64 else 1e-3
    np.testing.assert_allclose(paired_correlation(a, b), expected, atol=tolerance)
    np.testing.assert_allclose(paired_correlation(a, b, dtype=None), expected, atol=tolerance)
    assert paired_correlation(a, b, dtype=None).dtype == dtype  # the encoding model's selection stays in float32
    np.testing.assert_allclose(np.diag(correlation_matrix(a, b)), paired_correlation(a, b), atol=1e-12)


@SETTINGS
@given(value=st.floats(-1e4, 1e4), width=st.integers(1, 2000), dtype=st.sampled_from([np.float32, np.float64]))
def test_a_constant_row_correlates_zero_with_everything(value, width, dtype):
    # its centred values are the rounding error of its mean: scaled to unit norm they used to correlate ~1
    # with themselves (0.1 over 1,000 float32 values; 123.456 over 1,000 float64 values)
    from gess.correlation import correlation_matrix, paired_correlation, standardized_rows

    constant = np.full((2, width), value, dtype)
    other = gaussian(width, 2, width)
    assert not standardized_rows(constant).any()
    assert not paired_correlation(constant, constant, dtype=None).any()
    assert not correlation_matrix(constant, other).any()


def test_constant_rows_that_rounding_used_to_turn_into_perfect_correlations():
    from gess.correlation import paired_correlation

    for value, dtype in ((0.1, np.float32), (123.456, np.float64), (0.9, np.float64)):
        constant = np.full((1, 1000), value, dtype)
        assert paired_correlation(constant, constant, dtype=None)[0] == 0.0
