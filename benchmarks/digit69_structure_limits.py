"""What limits the structural cue on digit69: alternatives to the ridge decoder on held-out TRAINING folds.

    python benchmarks/digit69_structure_limits.py [--data ../shared/data/digit69/digit69_28x28.mat]
        [--mnist ../shared/data/mnist/mnist_minus_digit69_test.npz]

The 5 folds of ``gess.folds.held_out_fold_outputs`` (seed 0) of the 90 training stimuli; the test set
never enters. Targets are the structural decoder's (the stimuli blurred by gess's default radius at
28 px); every score is the mean per-image pixel correlation / Gaussian SSIM (sigma 1.5) with the sharp
stimuli at 28 px. Rows:
- ridge (``gess.decoding.ridge.Ridge``, voxels z-scored on the fitting fold) at several alphas (default 1000);
- ridge on the k voxels an encoding model of the blurred pixels predicts best on held-out folds of the fitting
  fold (``gess.decoding.encoding.structural_voxels``, what ``GESSDecoder(structural_voxels=k)`` reads), k x alpha;
- the count and alpha chosen on folds of the fitting fold alone (``structural_voxels="auto"``, the default);
- the decode projected onto the top-k principal components of 10,000 MNIST digits blurred alike;
- a linear-Gaussian encoding model (ridge, pixels -> voxels; per-voxel noise from its residuals) inverted
  under a Gaussian image prior whose covariance mixes MNIST's with the fitting fold's (posterior mean), on every
  voxel and on the selected ones;
- means of ridges over several voxel counts and alphas; the inversion with a full (Ledoit-Wolf) voxel noise
  covariance; the decode blended with the class mean of a digit read-out; a sigmoid contrast stretch; targets
  blurred otherwise;
- an RBF kernel ridge on the selected voxels, k x gamma x alpha, and the voxels, kernel and alpha chosen on folds
  of the fitting fold (``structural_kernel="auto"``, the default);
- the posterior mean of 10,000 MNIST digits under an encoding model (Naselaris et al. 2009's empirical prior);
- the stimuli themselves down to 8-20 px and back: what a prior at that side could keep at best.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from digit69_methods import grey, ssim28  # noqa: E402


def main():
    from gess.data import load_dataset
    from gess.decoding.encoding import chosen_structural_selection, structural_voxels
    from gess.decoding.ridge import RBFKernelRidge, Ridge
    from gess.data.images import gaussian_smooth, resize_images, scaled_radius, STRUCTURAL_SMOOTHING_RADIUS_768
    from gess.correlation import paired_correlation

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/digit69/digit69_28x28.mat")
    ap.add_argument("--mnist", default="../shared/data/mnist/mnist_minus_digit69_test.npz")
    args = ap.parse_args()
    train = load_dataset(args.data).train
    radius = scaled_radius(STRUCTURAL_SMOOTHING_RADIUS_768, 28)
    n = len(train.stimulus_ids)
    fmri = train.fmri.astype(np.float64)
    blurred = gaussian_smooth(train.images, radius) / 255.0
    pixels = blurred.reshape(n, -1)
    stimuli = train.images
    mnist = np.load(args.mnist)["images"][:10000][..., None]
    mnist = (gaussian_smooth(mnist, radius) / 255.0).reshape(len(mnist), -1)
    mnist_mean, mnist_cov = mnist.mean(0), np.cov(mnist.T)
    _, _, components = np.linalg.svd(mnist - mnist_mean, full_matrices=False)
    folds = np.array_split(np.random.default_rng(0).permutation(n), 5)

    def score(decoded, rows):
        images = np.rint(np.clip(decoded, 0, 1).reshape(-1, 28, 28, 1) * 255).astype(np.uint8).repeat(3, -1)
        return paired_correlation(grey(images), grey(stimuli[rows])), ssim28(stimuli[rows], images)

    def cross_validated(decode, needs_fold: bool = False):
        r, s = [], []
        for held in folds:
            keep = np.setdiff1d(np.arange(n), held)
            mean, std = fmri[keep].mean(0), fmri[keep].std(0) + 1e-8
            y, z = (fmri[keep] - mean) / std, (fmri[held] - mean) / std
            decoded = decode(y, pixels[keep], z, keep) if needs_fold else decode(y, pixels[keep], z)
            a, b = score(decoded, held)
            r.append(a)
            s.append(b)
        return np.concatenate(r).mean(), np.concatenate(s).mean()

    def ridge(y, x, y_new, alpha):  # gess's structural decoder: ridge with an intercept, voxels z-scored
        return Ridge(alpha=alpha, dtype="float64").fit(y, x).predict(y_new)

    def gaussian_inversion(y, x, y_new, alpha, mix, full_noise: bool = False):
        prior = (1 - mix) * mnist_cov + mix * np.cov(x.T) + 1e-4 * np.eye(x.shape[1])
        xc, yc = x - x.mean(0), y - y.mean(0)
        weights = yc.T @ np.linalg.solve(xc @ xc.T + alpha * np.eye(len(xc)), xc)  # voxels x pixels
        residuals = yc - xc @ weights.T
        if full_noise:  # posterior mean through the voxels' covariance, W P W^T + C (voxels x voxels)
            from sklearn.covariance import LedoitWolf

            covariance = weights @ prior @ weights.T + LedoitWolf().fit(residuals).covariance_
            return x.mean(0) + (y_new - y.mean(0)) @ np.linalg.solve(covariance, weights @ prior)
        noise = residuals.var(0)
        noise = noise + 1e-3 * noise.mean()
        scaled = weights.T / noise
        gain = np.linalg.inv(np.linalg.inv(prior) + scaled @ weights) @ scaled
        return x.mean(0) + (y_new - y.mean(0)) @ gain.T

    for alpha in (100, 300, 1000, 3000, 10000):
        print(f"ridge alpha {alpha:<6}            pixcorr %.3f  SSIM %.3f" % cross_validated(lambda y, x, z: ridge(y, x, z, alpha)))
    selections = {}  # per fitting fold, the voxels ordered as structural_voxels ranks them (computed once)

    def best_voxels(y, fold, k):
        if tuple(fold) not in selections:
            selections[tuple(fold)] = structural_voxels(y.astype(np.float32), blurred[fold], y.shape[1], ranked=True)
        return np.sort(selections[tuple(fold)][:k])

    def selected(k, alpha):
        def decode(y, x, z, fold):
            voxels = best_voxels(y, fold, k)
            return ridge(y[:, voxels], x, z[:, voxels], alpha)
        return decode
    for k in (200, 300, 500, 800, 1200):
        for alpha in (30, 100, 300, 1000):
            print(f"ridge on {k:>4} voxels, alpha {alpha:<4} pixcorr %.3f  SSIM %.3f" % cross_validated(selected(k, alpha), needs_fold=True))
    picks = []

    def automatic(y, x, z, fold):  # what GESSDecoder's default structural_voxels="auto" does on the fitting fold
        chosen = chosen_structural_selection(y.astype(np.float32), blurred[fold])
        voxels = best_voxels(y, fold, chosen["voxels"]) if chosen["voxels"] else slice(None)
        picks.append((chosen["voxels"] or "all", chosen["alpha"]))
        return ridge(y[:, voxels], x, z[:, voxels], chosen["alpha"])
    print("ridge, voxels and alpha auto      pixcorr %.3f  SSIM %.3f" % cross_validated(automatic, needs_fold=True),
          "(per fold: " + ", ".join(f"{k} voxels, alpha {a:g}" for k, a in picks) + ")")
    for k in (20, 40, 80, 160):
        basis = components[:k]
        project = lambda y, x, z: (ridge(y, x, z, 1000) - mnist_mean) @ basis.T @ basis + mnist_mean  # noqa: E731
        print(f"ridge 1000, MNIST PCA {k:<4}      pixcorr %.3f  SSIM %.3f" % cross_validated(project))
    for alpha in (0.01, 1.0, 10.0):
        for mix in (0.0, 0.5, 0.8):
            invert = lambda y, x, z: gaussian_inversion(y, x, z, alpha, mix)  # noqa: E731
            print(f"Gaussian inversion a {alpha:<5} mix {mix}  pixcorr %.3f  SSIM %.3f" % cross_validated(invert))
    for k in (500, 800):  # the same inversion on the selected voxels
        def invert_selected(y, x, z, fold, k=k):
            voxels = best_voxels(y, fold, k)
            return gaussian_inversion(y[:, voxels], x, z[:, voxels], 0.01, 0.8)
        print(f"Gaussian inversion on {k} voxels    pixcorr %.3f  SSIM %.3f" % cross_validated(invert_selected, needs_fold=True))
    for name, members in (("300/500/800 voxels, alpha 100", [(k, 100) for k in (300, 500, 800)]),
                          ("300-1200 voxels, alpha 100/300", [(k, a) for k in (300, 500, 800, 1200) for a in (100, 300)])):
        def ensemble(y, x, z, fold, members=members):
            return np.mean([selected(k, a)(y, x, z, fold) for k, a in members], 0)
        print(f"mean of ridges on {name}: pixcorr %.3f  SSIM %.3f" % cross_validated(ensemble, needs_fold=True))
    for k in (500, 800):  # the inversion with a full (Ledoit-Wolf) voxel noise covariance instead of a diagonal one
        def invert_full_noise(y, x, z, fold, k=k):
            voxels = best_voxels(y, fold, k)
            return gaussian_inversion(y[:, voxels], x, z[:, voxels], 0.01, 0.8, full_noise=True)
        print(f"inversion, full noise cov, {k} voxels pixcorr %.3f  SSIM %.3f" % cross_validated(invert_full_noise, needs_fold=True))
    for weight in (0.2, 0.4, 0.6):  # the decode blended with the class mean a digit read-out of the voxels expects
        def with_class_mean(y, x, z, fold, weight=weight):
            from sklearn.linear_model import LogisticRegression

            labels = train.labels[fold]
            probabilities = LogisticRegression(C=0.01, max_iter=2000).fit(y, labels).predict_proba(z)
            means = np.stack([x[labels == c].mean(0) for c in np.unique(labels)])
            return (1 - weight) * selected(500, 100)(y, x, z, fold) + weight * probabilities @ means
        print(f"blend with class mean, weight {weight} pixcorr %.3f  SSIM %.3f" % cross_validated(with_class_mean, needs_fold=True))
    for gain in (1, 2, 4):  # a per-image sigmoid contrast stretch of the decode
        def stretched(y, x, z, fold, gain=gain):
            d = selected(500, 100)(y, x, z, fold)
            return 1 / (1 + np.exp(-gain * (d - d.mean(1, keepdims=True)) / (d.std(1, keepdims=True) + 1e-8)))
        print(f"sigmoid stretch, gain {gain}          pixcorr %.3f  SSIM %.3f" % cross_validated(stretched, needs_fold=True))
    for target_radius in (0.0, 1.0, 1.5, 2.0):  # M_s's targets blurred otherwise (500 voxels, alpha 100)
        other = (gaussian_smooth(stimuli, target_radius) / 255.0 if target_radius else stimuli / 255.0).reshape(n, -1)
        def other_targets(y, x, z, fold, other=other):
            voxels = best_voxels(y, fold, 500)
            return ridge(y[:, voxels], other[fold], z[:, voxels], 100)
        print(f"targets blurred by {target_radius} px          pixcorr %.3f  SSIM %.3f" % cross_validated(other_targets, needs_fold=True))
    for k in (200, 300, 500, 800):  # an RBF kernel ridge on the selected voxels (GESSDecoder's structural_kernel)
        for gamma in (0.1, 0.3, 1.0):
            for alpha in (0.01, 0.03, 0.1, 0.3):
                def rbf(y, x, z, fold, k=k, gamma=gamma, alpha=alpha):
                    voxels = best_voxels(y, fold, k)
                    return RBFKernelRidge(alpha, gamma).fit(y[:, voxels], x).predict(z[:, voxels])
                print(f"RBF on {k:>4} voxels, gamma {gamma:<3} alpha {alpha:<4} pixcorr %.3f  SSIM %.3f"
                      % cross_validated(rbf, needs_fold=True))
    picks.clear()

    def automatic_with_kernels(y, x, z, fold):  # the default since structural_kernel="auto": kernels compared too
        chosen = chosen_structural_selection(y.astype(np.float32), blurred[fold], kernels=("linear", "rbf"))
        voxels = best_voxels(y, fold, chosen["voxels"]) if chosen["voxels"] else slice(None)
        picks.append((chosen["voxels"] or "all", chosen["kernel"], chosen["gamma"], chosen["alpha"]))
        if chosen["kernel"] == "rbf":
            return RBFKernelRidge(chosen["alpha"], chosen["gamma"]).fit(y[:, voxels], x).predict(z[:, voxels])
        return ridge(y[:, voxels], x, z[:, voxels], chosen["alpha"])
    print("voxels, kernel and alpha auto     pixcorr %.3f  SSIM %.3f" % cross_validated(automatic_with_kernels, needs_fold=True),
          "(per fold: " + ", ".join(f"{k} voxels, {kind} gamma {g}, alpha {a:g}" for k, kind, g, a in picks) + ")")
    for temperature in (4, 8, 16):  # Bayesian reconstruction over an empirical prior (Naselaris et al. 2009)
        def posterior_mean(y, x, z, fold, temperature=temperature):
            # the posterior mean of 10,000 blurred MNIST digits under an encoding model of the 500 best voxels
            # (ridge pixels -> voxels, alpha 10; per-voxel noise from its cross-fitted residuals)
            from scipy.special import logsumexp

            voxels = best_voxels(y, fold, 500)
            inner = np.array_split(np.random.default_rng(1).permutation(len(y)), 5)
            residuals = np.zeros((len(y), len(voxels)))
            for part in inner:
                rest = np.setdiff1d(np.arange(len(y)), part)
                residuals[part] = y[part][:, voxels] - Ridge(10, dtype="float64").fit(x[rest], y[rest][:, voxels]).predict(x[part])
            predicted = Ridge(10, dtype="float64").fit(x, y[:, voxels]).predict(mnist)
            loglik = -0.5 * (((z[:, voxels][:, None] - predicted[None]) ** 2) / (residuals.var(0) + 1e-6)).sum(-1)
            return np.exp(loglik / temperature - logsumexp(loglik / temperature, axis=1, keepdims=True)) @ mnist
        print(f"MNIST posterior mean, T {temperature:<3}      pixcorr %.3f  SSIM %.3f" % cross_validated(posterior_mean, needs_fold=True))
    for side in (8, 10, 12, 16, 20):
        round_trip = resize_images(resize_images(stimuli, side), 28)
        r, s = paired_correlation(grey(round_trip), grey(stimuli)).mean(), ssim28(stimuli, round_trip).mean()
        print(f"stimuli via {side:>2} px and back       pixcorr %.3f  SSIM %.3f" % (r, s))


if __name__ == "__main__":
    main()
