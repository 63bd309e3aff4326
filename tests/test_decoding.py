from __future__ import annotations

import numpy as np
import pytest

from gess.decoding import Ridge, SemanticDecoder, StructuralDecoder, momentum_align
from gess.decoding.semantic import reproject_lle, reproject_released
from gess.decoding import GESSDecoder
from gess.decoding.ridge import cv_folds
from gess.errors import GessInputError

from conftest import DIGIT69, needs


def test_ridge_matches_closed_form():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(40, 25)), rng.normal(size=(40, 3))
    r = Ridge(alpha=7.0).fit(X, Y)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    W = np.linalg.solve(Xc.T @ Xc + 7.0 * np.eye(25), Xc.T @ Yc)
    np.testing.assert_allclose(r.coef_, W, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(r.predict(X), (X - X.mean(0)) @ W + Y.mean(0), rtol=1e-4, atol=1e-4)


def test_ridge_cross_validation_picks_a_sensible_alpha_per_target():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 200))
    signal = X[:, :5] @ rng.normal(size=(5, 4))
    Y = np.concatenate([signal + rng.normal(size=(80, 4)) * 3, rng.normal(size=(80, 2))], 1)  # 2 pure-noise targets
    grid = [1e-3, 1e1, 1e2, 1e3, 1e6]
    r = Ridge(alphas=grid).fit(X, Y)
    assert r.alpha_.shape == (6,) and r.cv_scores_.shape == (5, 6)
    from sklearn.linear_model import RidgeCV

    reference = RidgeCV(alphas=grid, alpha_per_target=True).fit(X, Y)  # the same criterion, exact LOO
    np.testing.assert_array_equal(r.alpha_, reference.alpha_)
    np.testing.assert_allclose(r.predict(X), reference.predict(X), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n,p", [(30, 50), (60, 20)])  # kernel form and primal form
def test_single_alpha_cholesky_matches_the_eigendecomposition(n, p):
    from gess.decoding.ridge import RidgeDecomposition

    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(n, p)), rng.normal(size=(n, 4))
    fast = Ridge(alpha=7.0).fit(X, Y)
    eig = Ridge(alpha=7.0).fit(X, Y, RidgeDecomposition(X))
    np.testing.assert_allclose(fast.coef_, eig.coef_, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n,p", [(30, 50), (60, 20)])  # kernel form and primal form
def test_ridge_float32_matches_a_float64_reference_with_per_target_alphas(n, p):
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(n, p)) * 2 + 1, rng.normal(size=(n, 7))
    grid = [0.1, 3.0, 100.0]
    fast = Ridge(alphas=grid).fit(X, Y)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    for t in range(7):
        a = float(fast.alpha_[t])
        w = np.linalg.solve(Xc.T @ Xc + a * np.eye(p), Xc.T @ Yc[:, t])
        pred = (X - X.mean(0)) @ w + Y[:, t].mean()
        rel = np.abs(fast.predict(X)[:, t] - pred).max() / np.abs(pred).max()
        assert rel < 1e-4, rel
        # the chosen alpha minimises the leave-one-out error, computed here by n refits
        scores = []
        for b in grid:
            errors = []
            for i in range(n):
                keep = np.arange(n) != i
                Xk = X[keep] - X[keep].mean(0)
                wk = np.linalg.solve(Xk.T @ Xk + b * np.eye(p), Xk.T @ (Y[keep, t] - Y[keep, t].mean()))
                errors.append(Y[i, t] - ((X[i] - X[keep].mean(0)) @ wk + Y[keep, t].mean()))
            scores.append(np.mean(np.square(errors)))
        assert grid[int(np.argmin(scores))] == a


@pytest.mark.parametrize("voxels", [40, 10])            # kernel and primal forms
@pytest.mark.parametrize("alphas", [None, [5.0, 50.0]])  # one Cholesky, or the eigendecomposition with per-target alphas
def test_cross_fitted_predictions_equal_refits_without_each_fold(voxels, alphas):
    from gess.decoding.ridge import cv_folds

    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(24, voxels)), rng.normal(size=(24, 3))
    groups = np.repeat(np.arange(8), 3)  # 8 stimuli shown 3 times: repeats never split
    folds = cv_folds(24, 4, groups)
    assert all(len(set(groups[f])) * 3 == len(f) for f in folds)
    ridge = Ridge(alpha=5.0, alphas=alphas, dtype="float64").fit(X, Y)
    cross = ridge.cross_fitted(folds)
    for held in folds:
        keep = np.setdiff1d(np.arange(24), held)
        for t in range(3):
            a = float(np.atleast_1d(ridge.alpha_)[t] if alphas else 5.0)
            refit = Ridge(alpha=a, dtype="float64").fit(X[keep], Y[keep][:, t])
            np.testing.assert_allclose(cross[held, t], refit.predict(X[held])[:, 0], rtol=1e-5, atol=1e-5)


def test_momentum_alignment_gives_target_statistics():
    rng = np.random.default_rng(0)
    pred = rng.normal(3, 0.1, size=(50, 4))
    out = momentum_align(pred, np.full(4, -1.0), np.full(4, 2.0))
    np.testing.assert_allclose(out.mean(0), -1.0, atol=1e-5)
    np.testing.assert_allclose(out.std(0), 2.0, atol=1e-4)


@pytest.mark.parametrize("solver,reg", [(reproject_released, 10.0), (reproject_lle, 1e-3)])
def test_reprojection_weights_sum_to_one(solver, reg):
    rng = np.random.default_rng(0)
    nb = rng.normal(size=(5, 20))
    w = solver(rng.normal(size=20), nb, reg)
    assert np.isclose(w.sum(), 1.0)


def test_released_reprojection_recovers_points_in_the_affine_hull():
    rng = np.random.default_rng(1)
    nb = rng.normal(size=(4, 30))
    true_w = np.array([0.4, 0.3, 0.2, 0.1])
    w = reproject_released(true_w @ nb, nb, regularization=1e-6)
    np.testing.assert_allclose(w, true_w, atol=1e-5)
    # the released penalty pulls toward the nearest neighbour
    w_reg = reproject_released(true_w @ nb, nb, regularization=100.0)
    assert w_reg[0] > 0.9


def test_semantic_decoder_returns_three_stages():
    rng = np.random.default_rng(0)
    X, C = rng.normal(size=(30, 12)), rng.normal(size=(30, 6))
    dec = SemanticDecoder(alpha=1.0, n_neighbors=3).fit(X, C, augment_embeddings=rng.normal(size=(10, 6)))
    raw, aligned, c = dec.decode(X[:4])
    assert raw.shape == aligned.shape == c.shape == (4, 6)
    assert dec.manifold_.shape == (40, 6)
    nodec = SemanticDecoder(alpha=1.0, reprojection="none", alignment="none").fit(X, C)
    r2, a2, c2 = nodec.decode(X[:4])
    assert np.array_equal(r2, a2) and np.array_equal(a2, c2)


def test_estimator_contract():
    """scikit-learn's rules: __init__ stores parameters untouched, fitted state ends with '_'."""
    params = dict(alpha_semantic=5.0, gate="kde", gate_options={"bandwidth": 2.0}, n_neighbors=3)
    est = GESSDecoder(**params)
    assert {k: getattr(est, k) for k in params} == params
    assert not [k for k in vars(est) if k.endswith("_")]
    rng = np.random.default_rng(0)
    est.fit(rng.normal(size=(30, 10)), rng.normal(size=(30, 4)), rng.random((30, 2, 2, 1)))
    assert {k: getattr(est, k) for k in params} == params
    assert {"semantic_", "structural_", "gate_", "voxel_mean_"} <= {k for k in vars(est) if k.endswith("_")}


def _fitted(gate="prediction-knn", n=40, v=25, d=6):
    rng = np.random.default_rng(0)
    X, C, S = rng.normal(size=(n, v)) * 3 + 1, rng.normal(size=(n, d)), rng.random((n, 3, 3, 1))
    from gess.encoders import EncoderSpec

    return GESSDecoder(gate=gate, n_neighbors=3).fit(X, C, S, encoder=EncoderSpec("enc-a", "enc-a", d)), rng


@pytest.mark.parametrize("gate", ["prediction-knn", "kde", "voxel-knn", "brain-residual"])
def test_save_load_roundtrip(tmp_path, gate):
    model, rng = _fitted(gate)
    X = rng.normal(size=(6, 25))
    before = model.decode(X)
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [".gess-output.json", "config.json", "model.safetensors"]
    after = GESSDecoder.load(tmp_path / "m").decode(X)
    for field in ("c_raw", "c_prime", "c", "s", "pi_c"):
        np.testing.assert_allclose(getattr(before, field), getattr(after, field), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("gate", ["prediction-knn", "kde", "voxel-knn", "brain-residual"])
def test_pi_c_does_not_depend_on_the_batch(gate):
    model, rng = _fitted(gate)
    X = rng.normal(size=(8, 25))
    together = model.decode(X).pi_c
    alone = np.concatenate([model.decode(X[[i, (i + 3) % 8]]).pi_c[:1] for i in range(8)])
    np.testing.assert_allclose(together, alone)
    assert ((together > 0) & (together <= 1)).all()


def test_saved_and_reloaded_decoder_keeps_every_parameter(tmp_path):
    """get_params() comes from the signature; saving keeps all of it (gess 0.1 lost ``device``)."""
    rng = np.random.default_rng(0)
    X, C, S = rng.normal(size=(30, 12)), rng.normal(size=(30, 4)), rng.random((30, 2, 2, 1))
    model = GESSDecoder(alpha_semantic=10.0, alphas=[1.0, 10.0], alignment="reference", n_neighbors=4, reprojection="lle",
                        regularization=0.01, w_c=0.7, gate="kde", gate_options={"bandwidth": 2.0}, cv_folds=3, device="cpu")
    model.fit(X, C, S).save(tmp_path / "m")
    loaded = GESSDecoder.load(tmp_path / "m")
    assert loaded.get_params() == model.get_params()
    import inspect

    assert set(model.get_params()) == set(inspect.signature(GESSDecoder).parameters)


def test_load_rejects_other_voxels_and_encoder(tmp_path):
    from gess.errors import GessInputError

    model, _ = _fitted()
    model.save(tmp_path / "m")
    loaded = GESSDecoder.load(tmp_path / "m")
    with pytest.raises(GessInputError, match="25 voxels"):
        loaded.decode(np.zeros((2, 24)))
    from gess.encoders import EncoderSpec, check_same_encoder

    with pytest.raises(GessInputError, match="enc-a"):
        check_same_encoder(loaded.encoder_, EncoderSpec("enc-b", "enc-b", 6), "a generator")
    check_same_encoder(loaded.encoder_, EncoderSpec("enc-a", "/a/local/copy", 6), "a generator")  # same encoder, other source
    with pytest.raises(GessInputError, match="config.json"):
        GESSDecoder.load(tmp_path / "nothing-here")


@needs(DIGIT69)
def test_digit69_structural_decoder_reaches_the_linear_bar():
    """Issue 2: mean per-image pixel correlation >= 0.78 on the 10 test digits (plain ridge: 0.787)."""
    from gess.data import load_mat
    from gess.decoding import StructuralSpace

    ds = load_mat(DIGIT69)
    space = StructuralSpace(28, grey=True)
    dec = GESSDecoder().fit(ds.train.fmri, np.zeros((90, 2), np.float32), space.targets(ds.train.images))
    s = dec.decode(ds.test.fmri).s
    gt = ds.test.images.astype(np.float64) / 255
    r = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(s, gt)]
    assert np.mean(r) >= 0.78


def _structure_in_a_few_voxels(seed: int = 0, n: int = 80, voxels: int = 40, driven: int = 6):
    """Voxels 0..driven-1 answer to the structural targets, the rest are noise."""
    rng = np.random.default_rng(seed)
    S = rng.random((n, 4, 4, 1))
    X = rng.normal(size=(n, voxels))
    X[:, :driven] += 6 * S.reshape(n, -1)[:, :driven]
    return X, rng.normal(size=(n, 5)), S


def test_structural_voxels_are_those_the_structure_predicts():
    from gess.decoding.encoding import structural_voxels

    X, _, S = _structure_in_a_few_voxels()
    z = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    np.testing.assert_array_equal(structural_voxels(z, S, 6), np.arange(6))
    ranked = structural_voxels(z, S, 40, ranked=True)
    assert sorted(ranked) == list(range(40)) and set(ranked[:6]) == set(range(6))


def test_selected_structural_decoder_reads_only_its_voxels_and_survives_saving(tmp_path):
    X, C, S = _structure_in_a_few_voxels(1)
    model = GESSDecoder(n_neighbors=3, structural_voxels=6, alpha_structural=10.0).fit(X, C, S)
    np.testing.assert_array_equal(model.structural_.voxels_, np.arange(6))
    test = np.random.default_rng(2).normal(size=(5, 40))
    moved = test.copy()
    moved[:, 6:] += 5.0  # voxels M_s does not read
    np.testing.assert_array_equal(model.decode(test).s, model.decode(moved).s)
    assert not np.array_equal(model.decode(test).c_raw, model.decode(moved).c_raw)  # M_c still reads them
    # the same fit as a ridge on those voxels alone
    z = model._standardize(X)
    alone = Ridge(alpha=10.0).fit(z[:, :6], S.reshape(len(S), -1))
    np.testing.assert_allclose(model.decode(test).s.reshape(5, -1), alone.predict(model._standardize(test)[:, :6]),
                               rtol=1e-4, atol=1e-5)
    model.save(tmp_path / "m")
    loaded = GESSDecoder.load(tmp_path / "m")
    assert loaded.structural_voxels == 6
    np.testing.assert_array_equal(loaded.structural_.voxels_, model.structural_.voxels_)
    np.testing.assert_array_equal(loaded.decode(test).s, model.decode(test).s)


def test_selecting_at_least_every_voxel_is_no_selection():
    X, C, S = _structure_in_a_few_voxels(3)
    every = GESSDecoder(n_neighbors=3, structural_voxels="all").fit(X, C, S)
    more = GESSDecoder(n_neighbors=3, structural_voxels=40).fit(X, C, S)
    none = GESSDecoder(n_neighbors=3, structural_voxels=None).fit(X, C, S)
    assert more.structural_.voxels_ is None and every.structural_selection_ is None
    np.testing.assert_array_equal(every.decode(X).s, more.decode(X).s)
    np.testing.assert_array_equal(every.decode(X).s, none.decode(X).s)


def test_the_voxel_count_and_alpha_chosen_on_folds_favour_the_driven_voxels():
    from gess.decoding.encoding import chosen_structural_selection

    X, _, S = _structure_in_a_few_voxels(5, n=120, voxels=200)
    z = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    chosen = chosen_structural_selection(z, S, voxel_grid=(6, 50), alphas=(1.0, 100.0))
    assert chosen["voxels"] == 6 and chosen["trials"] == 120
    assert set(chosen["scores"]) == {"6", "50", "all"} and set(chosen["scores"]["6"]) == {"1", "100"}
    assert chosen["scores"]["6"][f"{chosen['alpha']:g}"] == max(max(d.values()) for d in chosen["scores"].values())


def test_the_voxel_ranking_of_the_selection_never_sees_the_held_out_trials(monkeypatch):
    import gess.decoding.encoding as encoding

    X, _, S = _structure_in_a_few_voxels(6, n=50)
    z = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    seen = []
    real = encoding.structural_voxels
    monkeypatch.setattr(encoding, "structural_voxels", lambda z_, s_, *a, **k: seen.append(len(z_)) or real(z_, s_, *a, **k))
    encoding.chosen_structural_selection(z, S, folds=5, voxel_grid=(6,), alphas=(10.0,))
    assert seen == [40] * 5        # ranked on each fold's 40 fitting trials, never on all 50


def test_the_selection_scores_a_seeded_subset_of_whole_stimuli():
    from gess.decoding.encoding import _group_subset

    groups = np.repeat(np.arange(30), 3)                       # 30 stimuli seen three times each
    rows = _group_subset(groups, 20, seed=0)
    assert 20 <= len(rows) < 23 and np.array_equal(rows, np.sort(rows))
    kept = set(groups[rows].tolist())
    assert all((groups[rows] == g).sum() == 3 for g in kept)   # a stimulus is taken with all its repeats
    assert np.array_equal(rows, _group_subset(groups, 20, seed=0)) and len(_group_subset(groups, 500, 0)) == 90


def test_an_automatic_selection_is_recorded_and_survives_saving(tmp_path):
    X, C, S = _structure_in_a_few_voxels(7, n=60)
    model = GESSDecoder(n_neighbors=3).fit(X, C, S)            # structural_voxels="auto" by default
    chosen = model.structural_selection_
    assert model.structural_voxels == "auto" and chosen["trials"] == 60
    assert model.alpha_structural_used_ == chosen["alpha"] and model.metadata_["structural_selection"] == chosen
    assert chosen["voxels"] is None and model.structural_.voxels_ is None   # 40 voxels: below every count of the grid
    model.save(tmp_path / "m")
    loaded = GESSDecoder.load(tmp_path / "m")
    assert loaded.structural_selection_ == chosen
    np.testing.assert_array_equal(loaded.decode(X[:4]).s, model.decode(X[:4]).s)


def test_ridge_fitted_in_target_chunks_equals_one_pass():
    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(30, 50)), rng.normal(size=(30, 11))
    for alphas in (None, [0.1, 10.0, 1000.0]):
        whole = Ridge(alpha=3.0, alphas=alphas).fit(X, Y)
        chunked = Ridge(alpha=3.0, alphas=alphas).fit(X, Y, chunk=4)
        np.testing.assert_allclose(chunked.coef_, whole.coef_, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(np.atleast_1d(chunked.alpha_), np.atleast_1d(whole.alpha_))


# ------------------------------------------------------------------ M_s with an RBF kernel
def _structure_as_bumps(seed: int, n: int = 120, voxels: int = 8):
    """Targets that are Gaussian bumps of the voxel pattern: nonlinear in the voxels, what an RBF kernel fits."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, voxels))
    centres = rng.normal(size=(16, voxels))
    S = np.exp(-((X[:, None] - centres[None]) ** 2).sum(-1) / 8).reshape(n, 4, 4, 1)
    return X + 0.1 * rng.normal(size=X.shape), rng.normal(size=(n, 5)), S


def _linear_structure(seed: int, n: int = 120, voxels: int = 60, driven: int = 16):
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(n, driven))
    X = rng.normal(size=(n, voxels))
    X[:, :driven] = u + 0.5 * rng.normal(size=(n, driven))
    return X, rng.normal(size=(n, 5)), (0.1 * u + 0.5).reshape(n, 4, 4, 1)


def test_rbf_kernel_ridge_is_scikit_learns_and_the_selection_shortcut_is_the_same_model():
    from sklearn.kernel_ridge import KernelRidge

    from gess.decoding.encoding import _rbf_decodes
    from gess.decoding.ridge import RBFKernelRidge

    X, _, S = _structure_as_bumps(0)
    Y = S.reshape(len(S), -1)
    model = RBFKernelRidge(alpha=0.05, gamma=0.5).fit(X[:100], Y[:100])
    reference = KernelRidge(alpha=0.05, kernel="rbf", gamma=0.5 / X.shape[1]).fit(X[:100], Y[:100] - Y[:100].mean(0))
    np.testing.assert_allclose(model.predict(X[100:]), reference.predict(X[100:]) + Y[:100].mean(0), atol=1e-5)
    shortcut = _rbf_decodes(X[:100], X[100:], Y[:100].astype(np.float64), [(0.5, 0.05), (1.0, 0.3)])
    np.testing.assert_allclose(shortcut[0.5, 0.05], model.predict(X[100:]), atol=1e-4)
    np.testing.assert_allclose(shortcut[1.0, 0.3], RBFKernelRidge(0.3, 1.0).fit(X[:100], Y[:100]).predict(X[100:]), atol=1e-4)
    folds = cv_folds(100, 5)
    crossed = model.cross_fitted(Y[:100], folds)
    np.testing.assert_allclose(crossed[folds[2]], RBFKernelRidge(0.05, 0.5).fit(
        np.delete(X[:100], folds[2], 0), np.delete(Y[:100], folds[2], 0)).predict(X[folds[2]]), atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_folds_choose_the_kernel_the_structure_needs(seed):
    from gess.decoding.encoding import chosen_structural_selection

    for data, expected in ((_structure_as_bumps, "rbf"), (_linear_structure, "linear")):
        X, _, S = data(seed)
        z = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
        chosen = chosen_structural_selection(z, S, voxel_grid=(16,), kernels=("linear", "rbf"))
        best_linear = max(max(by_alpha.values()) for by_alpha in chosen["scores"].values())
        best_rbf = max(max(max(a.values()) for a in by_gamma.values()) for by_gamma in chosen["rbf_scores"].values())
        assert chosen["kernel"] == expected and (best_rbf > best_linear) == (expected == "rbf")
        assert (chosen["gamma"] is None) == (expected == "linear")


def test_an_rbf_structural_decoder_is_chosen_saved_and_read_back(tmp_path):
    from safetensors.numpy import load_file

    X, C, S = _structure_as_bumps(3)
    model = GESSDecoder(n_neighbors=3).fit(X, C, S)             # structural_kernel="auto" by default
    chosen = model.structural_selection_
    assert chosen["kernel"] == "rbf" and model.structural_.kernel_ is not None and model.structural_.ridge_ is None
    assert model.alpha_structural_used_ == chosen["alpha"] and model.structural_.kernel_.gamma == chosen["gamma"]
    model.save(tmp_path / "m")
    assert "structural.kernel_dual_coef" in load_file(tmp_path / "m" / "model.safetensors")
    loaded = GESSDecoder.load(tmp_path / "m")
    test = np.random.default_rng(9).normal(size=(6, X.shape[1]))
    np.testing.assert_array_equal(loaded.decode(test).s, model.decode(test).s)
    linear = GESSDecoder(n_neighbors=3, structural_kernel="linear").fit(X, C, S)
    assert linear.structural_selection_["kernel"] == "linear" and "rbf_scores" not in linear.structural_selection_
    assert linear.structural_.kernel_ is None


def test_a_fixed_rbf_structural_decoder_uses_its_own_width_and_alpha():
    from gess.decoding.ridge import RBFKernelRidge

    X, C, S = _structure_as_bumps(4)
    model = GESSDecoder(n_neighbors=3, structural_voxels="all", structural_kernel="rbf", structural_rbf_gamma=0.7,
                        structural_rbf_alpha=0.02).fit(X, C, S)
    assert model.structural_selection_ is None and model.alpha_structural_used_ == 0.02
    z = model._standardize(X)
    alone = RBFKernelRidge(0.02, 0.7).fit(z, S.reshape(len(S), -1))
    test = np.random.default_rng(5).normal(size=(4, X.shape[1]))
    np.testing.assert_allclose(model.decode(test).s.reshape(4, -1), alone.predict(model._standardize(test)), atol=1e-6)


def test_auto_keeps_the_linear_ridge_beyond_the_kernels_trial_limit_and_for_the_self_supervised_decoder(monkeypatch):
    import gess.decoding.decoders as decoders

    X, C, S = _structure_as_bumps(5)
    monkeypatch.setattr(decoders, "KERNEL_MAX_TRIALS", len(X) - 1)
    model = GESSDecoder(n_neighbors=3).fit(X, C, S)
    assert model.structural_selection_["kernel"] == "linear" and "rbf_scores" not in model.structural_selection_
    with pytest.raises(GessInputError, match="structural_kernel"):
        GESSDecoder(structural_kernel="rbf", structural_decoder="self-supervised").fit(X, C, S)
