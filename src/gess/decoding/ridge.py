"""Ridge regression by one SVD per fit, reused for every regularisation value (himalaya's formulation)."""
from __future__ import annotations

import numpy as np
import torch


def solve_ridge_svd(X: torch.Tensor, Y: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """Ridge weights for every alpha: returns (n_alphas, n_features, n_targets).

    X and Y must already be centred. W(alpha) = V diag(s / (s^2 + alpha)) U^T Y.
    """
    U, s, Vh = torch.linalg.svd(X, full_matrices=False)
    UtY = U.T @ Y
    shrink = s[None, :] / (s[None, :] ** 2 + alphas[:, None])  # (n_alphas, rank)
    return torch.einsum("kr,ar,rt->akt", Vh.T, shrink, UtY)


def _r2_per_target(Y_true: torch.Tensor, Y_pred: torch.Tensor) -> torch.Tensor:
    ss_res = ((Y_true - Y_pred) ** 2).sum(0)
    ss_tot = ((Y_true - Y_true.mean(0)) ** 2).sum(0).clamp_min(1e-12)
    return 1.0 - ss_res / ss_tot


class Ridge:
    """Multi-output ridge regression with an intercept, optionally choosing alpha by K-fold CV.

    Parameters
    ----------
    alpha : regularisation used when ``alphas`` is None.
    alphas : candidate values; the one with the best mean cross-validated R^2 is kept.
    cv : number of folds for the alpha search.
    device : torch device for the linear algebra ("cpu" or "cuda").

    Attributes
    ----------
    coef_ : (n_features, n_targets) ndarray
    intercept_ : (n_targets,) ndarray
    alpha_ : the regularisation used
    cv_scores_ : (n_alphas,) mean CV R^2 per candidate, when ``alphas`` is given

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(50, 10)); Y = X @ np.ones((10, 2))
    >>> Ridge(alpha=1e-3).fit(X, Y).predict(X[:1]).shape
    (1, 2)
    """

    def __init__(self, alpha: float = 1000.0, alphas=None, cv: int = 5, device: str = "cpu"):
        self.alpha = alpha
        self.alphas = alphas
        self.cv = cv
        self.device = device

    @classmethod
    def from_arrays(cls, coef: np.ndarray, intercept: np.ndarray, alpha: float) -> "Ridge":
        """A fitted ridge from stored weights."""
        ridge = cls(alpha)
        ridge.coef_, ridge.intercept_, ridge.alpha_ = coef, intercept, alpha
        return ridge

    def _tensors(self, X, Y) -> tuple[torch.Tensor, torch.Tensor]:
        X_t = torch.as_tensor(np.asarray(X), dtype=torch.float64, device=self.device)
        return X_t, torch.as_tensor(np.asarray(Y), dtype=torch.float64, device=self.device).reshape(len(X_t), -1)

    def select_alpha(self, X: np.ndarray, Y: np.ndarray) -> float:
        """The regularisation ``fit`` would use (CV over ``alphas`` when given), without the final fit."""
        if self.alphas is not None and len(self.alphas) > 1:
            X_t, Y_t = self._tensors(X, Y)
            self.cv_scores_ = self._cross_validate(X_t, Y_t, torch.as_tensor(self.alphas, dtype=torch.float64, device=self.device))
            return float(np.asarray(self.alphas)[int(np.argmax(self.cv_scores_))])
        return float(self.alphas[0] if self.alphas is not None else self.alpha)

    def fit(self, X: np.ndarray, Y: np.ndarray) -> "Ridge":
        self.alpha_ = self.select_alpha(X, Y)
        X_t, Y_t = self._tensors(X, Y)
        x_mean, y_mean = X_t.mean(0), Y_t.mean(0)
        W = solve_ridge_svd(X_t - x_mean, Y_t - y_mean, torch.tensor([self.alpha_], dtype=torch.float64, device=self.device))[0]
        self.coef_ = W.float().cpu().numpy()
        self.intercept_ = (y_mean - x_mean @ W).float().cpu().numpy()
        return self

    def _cross_validate(self, X: torch.Tensor, Y: torch.Tensor, alphas: torch.Tensor) -> np.ndarray:
        folds = np.array_split(np.arange(len(X)), min(self.cv, len(X)))
        scores = torch.zeros(len(alphas), dtype=torch.float64, device=X.device)
        for held in folds:
            train = np.setdiff1d(np.arange(len(X)), held)
            xm, ym = X[train].mean(0), Y[train].mean(0)
            Ws = solve_ridge_svd(X[train] - xm, Y[train] - ym, alphas)
            for a in range(len(alphas)):
                pred = (X[held] - xm) @ Ws[a] + ym
                scores[a] += _r2_per_target(Y[held], pred).mean()
        return (scores / len(folds)).cpu().numpy()

    def predict(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, dtype=np.float32) @ self.coef_ + self.intercept_).astype(np.float32)


def cross_fitted_predictions(X: np.ndarray, Y: np.ndarray, alpha: float, folds: int = 5, device: str = "cpu") -> np.ndarray:
    """Predictions of each training sample by a ridge fitted without its fold."""
    X_t = torch.as_tensor(np.asarray(X), dtype=torch.float64, device=device)
    Y_t = torch.as_tensor(np.asarray(Y), dtype=torch.float64, device=device).reshape(len(X_t), -1)
    out = torch.empty_like(Y_t)
    alpha_t = torch.tensor([alpha], dtype=torch.float64, device=device)
    for held in np.array_split(np.arange(len(X_t)), min(folds, len(X_t))):
        train = np.setdiff1d(np.arange(len(X_t)), held)
        xm, ym = X_t[train].mean(0), Y_t[train].mean(0)
        W = solve_ridge_svd(X_t[train] - xm, Y_t[train] - ym, alpha_t)[0]
        out[held] = (X_t[held] - xm) @ W + ym
    return out.float().cpu().numpy()
