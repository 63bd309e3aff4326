"""M_s, the structural module: ridge from voxels to the flattened structural target."""
from __future__ import annotations

import numpy as np

from gess.decoding.ridge import Ridge


class StructuralDecoder:
    """Predict the structural target (blurred pixels, or the generator's latents of blurred images).

    Parameters
    ----------
    alpha, alphas : as in :class:`~gess.decoding.ridge.Ridge`.

    Attributes
    ----------
    ridge_ : the fitted ridge; target_shape_ : shape of one target.
    """

    def __init__(self, alpha: float = 1000.0, alphas=None, device: str = "cpu"):
        self.alpha = alpha
        self.alphas = alphas
        self.device = device

    def fit(self, fmri: np.ndarray, targets: np.ndarray) -> "StructuralDecoder":
        targets = np.asarray(targets, np.float32)
        self.target_shape_ = tuple(targets.shape[1:])
        self.ridge_ = Ridge(self.alpha, self.alphas, device=self.device).fit(fmri, targets.reshape(len(targets), -1))
        return self

    def predict(self, fmri: np.ndarray) -> np.ndarray:
        return self.ridge_.predict(fmri).reshape((-1,) + self.target_shape_)
