"""Ridge regression from one eigendecomposition, reused for every regularisation, target and fold.

The formulation (himalaya's, and the standard of fMRI encoding work):

* centre X with the training means (an unpenalised intercept), then take the
  eigendecomposition of the smaller Gram matrix: ``K = Xc Xc^T`` (n x n) when there
  are fewer trials than voxels (the kernel form), ``Xc^T Xc`` (p x p) otherwise (the
  primal form). Either gives ``Xc = U diag(sqrt(lam)) V^T`` restricted to its rank.
* every alpha is then a rescaling of ``U^T Y``: fitted values ``U diag(lam/(lam+a)) U^T Y``,
  weights ``Xc^T U diag(1/(lam+a)) U^T Y`` (kernel) or ``V diag(sqrt(lam)/(lam+a)) U^T Y``
  (primal). No (n_alphas, voxels, targets) array is ever formed.
* the regularisation is chosen **per target** by exact leave-one-out error (scikit-learn's
  ``RidgeCV`` criterion), ``e_i = (y_i - yhat_i) / (1 - H_ii)``, from the same decomposition:
  one (n x rank) by (rank x targets) product per alpha. (Generalised cross-validation would be
  cheaper but is ill-defined where a small alpha interpolates the training data, n < p.)
* cross-fitted predictions (each trial predicted by a ridge fitted without its fold)
  come from the same decomposition by the exact leave-group-out identity of penalised
  least squares, ``yhat_g^(-g) = y_g - (I - H_gg)^-1 (y_g - yhat_g)``, with the hat
  matrix ``H = 11^T/n + U diag(lam/(lam+a)) U^T`` (intercept included).

Everything runs in torch (CPU or CUDA), in float32 by default (tested against float64).
"""
from __future__ import annotations

import numpy as np
import torch

from gess.device import resolve_device


def _dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "float64": torch.float64}[name]


def _centred_gram(X, device: str | None, dtype: str):
    """(X as a tensor, its column means, the form, the smaller Gram matrix of the centred X) without copying X."""
    if not isinstance(X, torch.Tensor):
        import warnings

        with warnings.catch_warnings():  # a read-only memory map: torch warns about writes, and nothing here writes
            warnings.simplefilter("ignore", UserWarning)
            X = torch.as_tensor(np.asarray(X))
    X = X.to(torch.device(resolve_device(device)), _dtype(dtype))
    n, p = X.shape
    x_mean = X.mean(0)
    if n <= p:
        gram = _symmetric_product(X)
        m = X @ x_mean  # (X - 1m^T)(X - 1m^T)^T = XX^T - m1^T - 1m^T + |mean|^2
        gram = gram - m[:, None] - m[None, :] + x_mean @ x_mean
        form = "kernel"
    else:
        gram = _symmetric_product(X.T) - n * torch.outer(x_mean, x_mean)
        form = "primal"
    return X, x_mean, form, gram


def _symmetric_product(A: torch.Tensor, blocks: int = 4) -> torch.Tensor:
    """A A^T computed block by block on and below the diagonal, mirrored above: (blocks+1)/(2 blocks) of a full
    product (5/8 with 4 blocks), as BLAS's syrk saves; exactly symmetric."""
    n = A.shape[0]
    if n < 1024:
        out = A @ A.T
        return (out + out.T) / 2
    out = torch.empty(n, n, device=A.device, dtype=A.dtype)
    edges = np.linspace(0, n, blocks + 1).astype(int)
    for i in range(blocks):
        rows = slice(edges[i], edges[i + 1])
        for j in range(i + 1):
            cols = slice(edges[j], edges[j + 1])
            block = A[rows] @ A[cols].T
            if i == j:
                block = (block + block.T) / 2
            out[rows, cols] = block
            if i != j:
                out[cols, rows] = block.T
    return out


class RidgeDecomposition:
    """The eigendecomposition of one training matrix, shared by every ridge fitted on it.

    Parameters
    ----------
    X : (n, p) array or tensor; it is read, never copied in full (a float32 numpy
        array on the CPU is used in place).
    device, dtype : where (None: the process device, :func:`gess.device.get_device`) and in
        which precision the algebra runs.

    Attributes
    ----------
    form : ``"kernel"`` (n <= p) or ``"primal"``
    U : (n, r) left singular vectors of the centred X; lam : (r,) squared singular values
    V : (p, r) right singular vectors (primal form only)
    x_mean : (p,) training means of X
    """

    def __init__(self, X, device: str | None = None, dtype: str = "float32"):
        self.X, self.x_mean, self.form, gram = _centred_gram(X, device, dtype)
        self.device, self.dtype, self.n = self.X.device, self.X.dtype, len(self.X)
        if self.form == "kernel":
            lam, U = torch.linalg.eigh(gram)
            self.V = None
        else:
            lam, V = torch.linalg.eigh(gram)
        keep = lam > lam.max().clamp_min(1e-30) * (1e-6 if self.dtype == torch.float32 else 1e-12)
        self.lam = lam[keep]
        if self.form == "kernel":
            self.U = U[:, keep]
        else:
            self.V = V[:, keep]
            self.U = (self.X @ self.V - self.x_mean @ self.V) / self.lam.sqrt()

    # -------------------------------------------------------------- targets
    def project(self, Y) -> "ProjectedTargets":
        """Centre Y and project it on U once; every alpha reuses the result."""
        Y = torch.as_tensor(np.asarray(Y).reshape(self.n, -1), device=self.device).to(self.dtype)
        y_mean = Y.mean(0)
        Yc = Y - y_mean
        UtY = self.U.T @ Yc
        return ProjectedTargets(Yc, y_mean, UtY)

    def loo(self, targets: "ProjectedTargets", alphas: torch.Tensor, block: int = 2048) -> torch.Tensor:
        """(n_alphas, t) mean squared leave-one-out errors (lower is better); targets in blocks of ``block``.

        Residuals and leverages are formed from ``a/(lam+a)`` (what the fit leaves out), never
        as ``1 - (what it explains)``: at small alphas the latter cancels to float32 noise.
        """
        t = targets.UtY.shape[1]
        out = torch.empty(len(alphas), t, device=self.device, dtype=self.dtype)
        U2 = self.U ** 2
        # U spans every centred direction when the kernel has full rank n - 1: nothing lies outside it, and
        # computing "1 - what U holds" would only add float32 noise of the size of a small alpha's residual
        complete = self.form == "kernel" and self.U.shape[1] == self.n - 1
        outside_leverage = 0.0 if complete else (1.0 - 1.0 / self.n - U2.sum(1)).clamp_min(0)
        left = [a / (self.lam + a) for a in alphas]
        leverages = [(U2 @ g + outside_leverage).clamp_min(1e-20)[:, None] for g in left]
        for start in range(0, t, block):
            cols = slice(start, start + block)
            outside = 0.0 if complete else targets.Yc[:, cols] - self.U @ targets.UtY[:, cols]  # what no alpha fits
            for i, g in enumerate(left):
                resid = self.U @ (g[:, None] * targets.UtY[:, cols]) + outside
                out[i, cols] = ((resid / leverages[i]) ** 2).mean(0)
        return out

    def solve(self, targets: "ProjectedTargets", alpha_per_target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(coef (p, t), intercept (t,)) for one alpha per target (grouped: one pass per distinct alpha)."""
        t = targets.UtY.shape[1]
        p = self.X.shape[1]
        coef = torch.empty(p, t, device=self.device, dtype=self.dtype)
        for a, cols in _groups(alpha_per_target):
            if self.form == "kernel":
                dual = self.U @ (targets.UtY[:, cols] / (self.lam + a)[:, None])
                coef[:, cols] = self.X.T @ dual  # 1^T dual = 0 (U is orthogonal to 1), so Xc^T dual = X^T dual
            else:
                coef[:, cols] = self.V @ (targets.UtY[:, cols] * (self.lam.sqrt() / (self.lam + a))[:, None])
        intercept = targets.y_mean - self.x_mean @ coef
        return coef, intercept

    def fitted(self, targets: "ProjectedTargets", alpha_per_target: torch.Tensor) -> torch.Tensor:
        """Centred in-sample predictions (n, t)."""
        out = torch.empty_like(targets.Yc)
        for a, cols in _groups(alpha_per_target):
            out[:, cols] = self.U @ (targets.UtY[:, cols] * (self.lam / (self.lam + a))[:, None])
        return out

    def cross_fitted(self, targets: "ProjectedTargets", alpha_per_target: torch.Tensor, folds: list[np.ndarray]) -> torch.Tensor:
        """(n, t) predictions of each trial by a ridge (intercept included) fitted without its fold; exact."""
        fitted = self.fitted(targets, alpha_per_target)
        out = torch.empty_like(targets.Yc)
        for a, cols in _groups(alpha_per_target):
            h = self.lam / (self.lam + a)
            for held in folds:
                idx = torch.as_tensor(held, device=self.device)
                Ug = self.U[idx]
                H = (Ug * h) @ Ug.T + 1.0 / self.n
                resid = targets.Yc[idx][:, cols] - fitted[idx][:, cols]
                eye = torch.eye(len(idx), device=self.device, dtype=self.dtype)
                out[idx[:, None], torch.as_tensor(cols, device=self.device)[None, :]] = (
                    targets.Yc[idx][:, cols] - torch.linalg.solve(eye - H, resid))
        return out + targets.y_mean


class RidgeFactorization:
    """One alpha, one Cholesky factorisation: what a single-alpha fit needs (a third of an eigendecomposition's cost).

    Kernel form (n <= p): ``L L^T = Kc + a I``; dual coefficients ``D = (Kc + a I)^-1 Yc``,
    weights ``X^T D``, fitted values ``Yc - a D``. Primal form: ``L L^T = Xc^T Xc + a I``.
    Cross-fitted predictions use the same leave-group-out identity as :class:`RidgeDecomposition`.
    """

    def __init__(self, X, alpha: float, device: str | None = None, dtype: str = "float32"):
        self.X, self.x_mean, self.form, gram = _centred_gram(X, device, dtype)
        self.device, self.dtype, self.n, self.alpha = self.X.device, self.X.dtype, len(self.X), float(alpha)
        gram.diagonal().add_(self.alpha)
        self.L = torch.linalg.cholesky(gram)

    def project(self, Y) -> "ProjectedTargets":
        Y = torch.as_tensor(np.asarray(Y).reshape(self.n, -1), device=self.device).to(self.dtype)
        y_mean = Y.mean(0)
        Yc = Y - y_mean
        return ProjectedTargets(Yc, y_mean, None)

    def _dual(self, targets: "ProjectedTargets") -> torch.Tensor:
        if getattr(targets, "dual", None) is None:
            if self.form == "kernel":
                targets.dual = torch.cholesky_solve(targets.Yc, self.L)
            else:
                targets.dual = torch.cholesky_solve(self.X.T @ targets.Yc, self.L)  # the weights themselves
        return targets.dual

    def solve(self, targets: "ProjectedTargets", alpha_per_target=None) -> tuple[torch.Tensor, torch.Tensor]:
        dual = self._dual(targets)
        coef = self.X.T @ dual if self.form == "kernel" else dual  # 1^T dual = 0: Xc^T dual = X^T dual
        return coef, targets.y_mean - self.x_mean @ coef

    def fitted(self, targets: "ProjectedTargets", alpha_per_target=None) -> torch.Tensor:
        dual = self._dual(targets)
        if self.form == "kernel":
            return targets.Yc - self.alpha * dual
        return self.X @ dual - self.x_mean @ dual

    def cross_fitted(self, targets: "ProjectedTargets", alpha_per_target, folds: list[np.ndarray]) -> torch.Tensor:
        fitted = self.fitted(targets)
        out = torch.empty_like(targets.Yc)
        for held in folds:
            idx = torch.as_tensor(held, device=self.device)
            eye = torch.eye(len(idx), device=self.device, dtype=self.dtype)
            if self.form == "kernel":  # H = 1/n + I - a (Kc + a I)^-1
                unit = torch.zeros(self.n, len(idx), device=self.device, dtype=self.dtype)
                unit[idx, torch.arange(len(idx), device=self.device)] = 1.0
                inverse_cols = torch.cholesky_solve(unit, self.L)[idx]
                H = eye - self.alpha * inverse_cols + 1.0 / self.n
            else:  # H = 1/n + Xc_g (Xc^T Xc + a I)^-1 Xc_g^T
                Xg = self.X[idx] - self.x_mean
                H = Xg @ torch.cholesky_solve(Xg.T, self.L) + 1.0 / self.n
            out[idx] = targets.Yc[idx] - torch.linalg.solve(eye - H, targets.Yc[idx] - fitted[idx])
        return out + targets.y_mean


class ProjectedTargets:
    """Centred targets, their means, their projection on U and their squared norms."""

    def __init__(self, Yc, y_mean, UtY):
        self.Yc, self.y_mean, self.UtY = Yc, y_mean, UtY
        self.dual = None


def _groups(alpha_per_target: torch.Tensor):
    values = alpha_per_target.detach().cpu().numpy()
    for a in np.unique(values):
        yield float(a), np.flatnonzero(values == a)


def factorize(X, alphas, device: str | None = None, dtype: str = "float32"):
    """The cheapest exact factorisation for ``alphas``: one Cholesky for a single alpha, an eigendecomposition for a grid."""
    grid = np.atleast_1d(np.asarray(alphas, np.float64))
    if len(np.unique(grid)) == 1:
        return RidgeFactorization(X, float(grid[0]), device, dtype)
    return RidgeDecomposition(X, device, dtype)


def cv_folds(n: int, folds: int, groups=None) -> list[np.ndarray]:
    """Contiguous folds of trials; with ``groups`` (e.g. stimulus ids) no group is split across folds."""
    if groups is None:
        return [f for f in np.array_split(np.arange(n), min(folds, n)) if len(f)]
    groups = np.asarray(groups)
    order = list(dict.fromkeys(groups.tolist()))
    parts = np.array_split(np.arange(len(order)), min(folds, len(order)))
    index = {g: i for i, g in enumerate(order)}
    fold_of = np.array([index[g] for g in groups])
    return [np.flatnonzero(np.isin(fold_of, part)) for part in parts if len(part)]


class Ridge:
    """Multi-output ridge with an intercept; with a grid, one alpha per target by leave-one-out error.

    Parameters
    ----------
    alpha : regularisation used when ``alphas`` is None.
    alphas : candidate values; each target gets the one with the lowest leave-one-out error.
    device : torch device for the linear algebra ("cpu", "cuda"; None: the process device).
    dtype : "float32" (default) or "float64".

    Attributes
    ----------
    coef_ : (n_features, n_targets) ndarray
    intercept_ : (n_targets,) ndarray
    alpha_ : the regularisation used: a float, or (n_targets,) with a grid
    cv_scores_ : (n_alphas, n_targets) mean squared leave-one-out errors, when ``alphas`` is given

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(50, 10)); Y = X @ np.ones((10, 2))
    >>> Ridge(alpha=1e-3).fit(X, Y).predict(X[:1]).shape
    (1, 2)
    """

    def __init__(self, alpha: float = 1000.0, alphas=None, device: str | None = None, dtype: str = "float32"):
        self.alpha = alpha
        self.alphas = alphas
        self.device = device
        self.dtype = dtype

    @classmethod
    def from_arrays(cls, coef: np.ndarray, intercept: np.ndarray, alpha) -> "Ridge":
        """A fitted ridge from stored weights."""
        ridge = cls(alpha)
        ridge.coef_, ridge.intercept_, ridge.alpha_ = coef, intercept, alpha
        return ridge

    def fit(self, X: np.ndarray, Y: np.ndarray, decomposition=None, chunk: int = 8192) -> "Ridge":
        """Fit on (n, p) X and (n, ...) Y; pass a ``decomposition`` of X (see :func:`factorize`) to share it.

        Targets are fitted ``chunk`` at a time, so 36,864 latent targets need no more working
        memory than 8,192 (the weights themselves aside).
        """
        dec = decomposition or factorize(X, self.alpha if self.alphas is None else self.alphas, self.device, self.dtype)
        Y = np.asarray(Y).reshape(dec.n, -1)
        t = Y.shape[1]
        self.coef_ = np.empty((dec.X.shape[1], t), np.float32)
        self.intercept_ = np.empty(t, np.float32)
        alphas, scores = [], []
        for start in range(0, t, chunk):
            cols = slice(start, start + chunk)
            targets = dec.project(Y[:, cols])
            alpha = self._choose(dec, targets)
            coef, intercept = dec.solve(targets, alpha)
            self.coef_[:, cols] = coef.float().cpu().numpy()
            self.intercept_[cols] = intercept.float().cpu().numpy()
            alphas.append(alpha)
            scores.append(getattr(self, "cv_scores_", None))
        self.targets_ = targets if t <= chunk else None  # kept for cross_fitted (one chunk of targets)
        self.alpha_per_target_ = torch.cat(alphas)
        if self.alphas is not None and len(self.alphas) > 1:
            self.cv_scores_ = np.concatenate(scores, axis=1)
        values = self.alpha_per_target_.cpu().numpy()
        self.alpha_ = float(values[0]) if self.alphas is None or len(self.alphas) == 1 else values.astype(np.float32)
        self.decomposition_ = dec
        return self

    def _choose(self, dec, targets: ProjectedTargets) -> torch.Tensor:
        t = targets.Yc.shape[1]
        if self.alphas is None or len(self.alphas) == 1:
            a = float(self.alpha if self.alphas is None else self.alphas[0])
            return torch.full((t,), a, device=dec.device, dtype=dec.dtype)
        if not isinstance(dec, RidgeDecomposition):
            raise ValueError("an alpha grid needs an eigendecomposition (gess.decoding.ridge.factorize(X, alphas))")
        grid = torch.as_tensor(np.asarray(self.alphas, np.float64), device=dec.device, dtype=dec.dtype)
        scores = dec.loo(targets, grid)
        self.cv_scores_ = scores.cpu().numpy()
        return grid[scores.argmin(0)]

    def cross_fitted(self, folds: list[np.ndarray]) -> np.ndarray:
        """Predictions of each training trial by this ridge refitted without its fold (from the same decomposition)."""
        if self.targets_ is None:
            raise ValueError("cross-fitting keeps one chunk of targets: fit with a larger chunk")
        return self.decomposition_.cross_fitted(self.targets_, self.alpha_per_target_, folds).float().cpu().numpy()

    def release(self) -> "Ridge":
        """Drop the decomposition and training targets (keep only what predicts)."""
        for name in ("decomposition_", "targets_"):
            self.__dict__.pop(name, None)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, dtype=np.float32) @ self.coef_ + self.intercept_).astype(np.float32)


def cross_fitted_predictions(X: np.ndarray, Y: np.ndarray, alpha: float, folds: int = 5, device: str | None = None,
                             groups=None) -> np.ndarray:
    """Predictions of each training sample by a ridge fitted without its fold."""
    ridge = Ridge(alpha, device=device).fit(X, Y)
    return ridge.cross_fitted(cv_folds(len(X), folds, groups)).reshape(np.asarray(Y).shape)


class RBFKernelRidge:
    """Kernel ridge with a Gaussian (RBF) kernel and an intercept: a nonlinear decoder for small training sets.

    ``k(x, x') = exp(-gamma * ||x - x'||^2 / p)`` for p features: ``gamma`` is per feature, so its scale does
    not change with how many voxels are read (on z-scored voxels 0.1-1 is the useful range). The fit is
    scikit-learn's ``KernelRidge`` on centred targets; the model keeps its training samples (n x p) and dual
    coefficients (n x targets), so it suits thousands of training trials, not NSD's tens of thousands.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(30, 5)); Y = np.tanh(X[:, :2])
    >>> RBFKernelRidge(alpha=0.1, gamma=0.5).fit(X, Y).predict(X[:3]).shape
    (3, 2)
    """

    def __init__(self, alpha: float = 0.1, gamma: float = 0.3):
        self.alpha = alpha
        self.gamma = gamma

    @classmethod
    def from_arrays(cls, samples: np.ndarray, dual_coef: np.ndarray, intercept: np.ndarray, alpha: float,
                    gamma: float) -> "RBFKernelRidge":
        """A fitted model from stored arrays."""
        model = cls(alpha, gamma)
        model.samples_, model.dual_coef_, model.intercept_ = samples, dual_coef, intercept
        model.alpha_ = alpha
        return model

    def fit(self, X: np.ndarray, Y: np.ndarray) -> "RBFKernelRidge":
        from sklearn.kernel_ridge import KernelRidge

        X = np.asarray(X, np.float32)
        Y = np.asarray(Y, np.float64).reshape(len(X), -1)
        self.intercept_ = Y.mean(0).astype(np.float32)
        fitted = KernelRidge(alpha=self.alpha, kernel="rbf", gamma=self._gamma(X)).fit(X.astype(np.float64), Y - Y.mean(0))
        self.samples_, self.dual_coef_ = X, np.asarray(fitted.dual_coef_, np.float32)
        self.alpha_ = float(self.alpha)
        return self

    def _gamma(self, X: np.ndarray) -> float:
        return float(self.gamma) / max(1, X.shape[1])

    def predict(self, X: np.ndarray, rows: int = 1024) -> np.ndarray:
        from sklearn.metrics.pairwise import rbf_kernel

        X = np.asarray(X, np.float32)
        out = np.empty((len(X), self.dual_coef_.shape[1]), np.float32)
        for start in range(0, len(X), rows):  # (rows x n) kernel blocks, whatever the number of test trials
            block = rbf_kernel(X[start:start + rows], self.samples_, gamma=self._gamma(self.samples_))
            out[start:start + rows] = block @ self.dual_coef_ + self.intercept_
        return out

    def cross_fitted(self, Y: np.ndarray, folds: list[np.ndarray]) -> np.ndarray:
        """Predictions of each training sample (of :meth:`fit`'s X, with targets ``Y``) by the model refitted
        without its fold."""
        Y = np.asarray(Y).reshape(len(self.samples_), -1)
        out = np.empty(Y.shape, np.float32)
        for held in folds:
            keep = np.setdiff1d(np.arange(len(Y)), held)
            out[held] = RBFKernelRidge(self.alpha, self.gamma).fit(self.samples_[keep], Y[keep]).predict(self.samples_[held])
        return out
