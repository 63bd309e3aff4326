"""M_g, the gate: a per-sample semantic confidence pi_c in [0, 1] (pi_s = 1 - pi_c).

Every gate computes a *typicality* score (higher = more like the training
semantics) and turns it into pi_c with training statistics only, so that one
sample's pi_c never depends on which other samples are decoded with it:

``calibration="conformal"`` (default)
    pi_c = (1 + #{reference scores <= score}) / (n_reference + 1): the conformal
    p-value of the sample among held-out training samples. Inside samples get
    pi_c spread uniformly over (0, 1]; samples less typical than every training
    sample get about 1 / (n + 1).
``calibration="minmax"``
    (score - min) / (max - min) over the reference scores, clipped to [0, 1]
    (closest to the paper's "normalised to [0, 1]").

Gates (``GATES``; a plug-in adds one with :func:`register_gate`):

``prediction-knn``
    Cosine similarity of the centred decoded embedding c'' to its k nearest
    centred training embeddings. Reference: cross-fitted predictions of the
    training set (each decoded by a ridge that never saw it). How well each gate
    separates inside from outside test samples: benchmarks/gate_auroc.py and
    docs/decoding.md.
``voxel-knn``
    Mean Euclidean distance from the z-scored fMRI pattern to its k nearest
    training patterns, after PCA to the training data's main components. The
    reference is each training trial's distance to the others (leave one out).
    Reasoning: ridge shrinks predictions of unfamiliar stimuli toward the training
    mean, so their *decoded* embedding looks typical; the voxel pattern, before
    any regression, does not. Measured: near chance, noise dominates the distances.
``kde``
    The paper: PCA of the training embeddings to 20 dimensions, z-scored, Gaussian
    KDE with bandwidth 1.5, evaluated at the raw decoded embedding c''. Reference:
    leave-one-out log-densities of the training embeddings. Measured: at or
    below chance (ridge shrinks unfamiliar samples toward the training mean).
``brain``
    Evidence from the measured response: how much better the semantic cue explains
    it than the structural cue. Two encoding models (ridge, features -> z-scored
    voxels): one from the image embedding, one from the structural targets. Score:
    r_sem - r_str, r_sem = corr(E_sem(c''), fMRI) and r_str = corr(E_str(s), fMRI), each
    over the voxels its model predicts best on held-out folds. Reference: the same
    score for each training trial, its decoded cues and its encoding models all
    fitted without its fold. Without structural inputs the score is r_sem alone.
    Measured in docs/gating.md (benchmarks/gate_comparison.py).
``brain-residual`` (default)
    How closely the decoded semantics predict the measured response: minus the mean
    squared error of E_sem(c'') (the brain gate's semantic encoding model) against the
    z-scored voxels it reads. Ridge decodes an unfamiliar stimulus toward familiar
    semantics, whose predicted response leaves much of the measured one unexplained.
    Reference: each training trial's error, its c'' and E_sem fitted without its fold.
"""
from __future__ import annotations

from dataclasses import dataclass
import numpy as np
import torch

from gess.correlation import paired_correlation
from gess.decoding.ridge import cv_folds
from gess.decoding.encoding import DEFAULT_ALPHAS, block_standardization, held_out_voxel_correlation, pooled_structure
from gess.errors import GessInputError
from gess.persistence import Component, init_params
from gess.registry import Registry

CALIBRATIONS = ("conformal", "minmax")
MIN_VOXELS = 10  # the brain gate correlates patterns over at least this many voxels (or all there are)


@dataclass
class GateInputs:
    """What a gate may look at for a set of samples.

    fmri : z-scored voxels (n, v); raw_embeddings : the ridge prediction c'' (n, d);
    structure : the decoded structure s (n, ...), when a gate reads it (``needs_structure``);
    structure_targets : the true structural targets (training inputs only);
    groups : the stimulus of each trial (training inputs only: folds never split one).
    """

    fmri: np.ndarray
    raw_embeddings: np.ndarray
    structure: np.ndarray | None = None
    structure_targets: np.ndarray | None = None
    groups: np.ndarray | None = None


class Gate(Component):
    """Base class: subclasses implement ``_fit_scorer`` and ``typicality`` and return reference scores.

    Persistence comes with the base (:class:`gess.persistence.Component`): the config is
    the name and the constructor's arguments, the state the fitted arrays (``*_``).
    """

    name = "gate"
    needs_structure = False  # whether fit and decode should pass the (cross-fitted) decoded structure
    # whether the score depends on the response's noise level: then a stimulus shown several times is scored
    # trial by trial, as its single-trial reference was, and the scores averaged (GESSDecoder.pi_c_over_trials)
    scores_single_trials = False

    def __init__(self, calibration: str = "conformal"):
        self.calibration = calibration

    def fit(self, train: GateInputs, train_embeddings: np.ndarray, cross_fitted: GateInputs) -> "Gate":
        """Learn from training data; ``cross_fitted`` holds training samples decoded by models that never saw them."""
        if self.calibration not in CALIBRATIONS:
            raise GessInputError(None, "calibration", f"one of {CALIBRATIONS}", repr(self.calibration))
        self.reference_scores_ = np.sort(self._fit_scorer(train, np.asarray(train_embeddings, np.float32), cross_fitted))
        return self

    def typicality(self, inputs: GateInputs) -> np.ndarray:
        raise NotImplementedError

    def _fit_scorer(self, train: GateInputs, train_embeddings: np.ndarray, cross_fitted: GateInputs) -> np.ndarray:
        raise NotImplementedError

    def pi_c(self, inputs: GateInputs) -> np.ndarray:
        """Semantic confidence in [0, 1], one per sample, from training statistics only."""
        return calibrate(self.typicality(inputs), self.reference_scores_, self.calibration)

    def config(self) -> dict:
        return {"name": self.name, **super().config()}

    @classmethod
    def from_config(cls, config: dict) -> "Gate":
        """The gate ``config["name"]`` names, built with the rest of ``config``."""
        return make_gate(config.get("name", cls.name), **{k: v for k, v in config.items() if k != "name"})


def calibrate(scores: np.ndarray, reference_sorted: np.ndarray, calibration: str = "conformal") -> np.ndarray:
    """Map typicality scores to [0, 1] using sorted reference scores of training samples."""
    scores = np.asarray(scores, np.float64)
    if calibration == "conformal":
        below = np.searchsorted(reference_sorted, scores, side="right")
        return ((below + 1) / (len(reference_sorted) + 1)).astype(np.float32)
    lo, hi = float(reference_sorted[0]), float(reference_sorted[-1])
    return np.clip((scores - lo) / max(hi - lo, 1e-12), 0.0, 1.0).astype(np.float32)


def _pca_basis(X: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, components (k, v) and singular values of the data's PCA."""
    mean = X.mean(0)
    _, s, Vh = np.linalg.svd(X - mean, full_matrices=False)
    k = max(1, min(n_components, len(s)))
    return mean.astype(np.float32), Vh[:k].astype(np.float32), s[:k].astype(np.float32)


def _knn_mean_distance(queries: np.ndarray, points: np.ndarray, k: int, exclude_self: bool = False) -> np.ndarray:
    d = torch.cdist(torch.as_tensor(queries, dtype=torch.float32), torch.as_tensor(points, dtype=torch.float32))
    if exclude_self:
        d.fill_diagonal_(float("inf"))
    k = min(k, d.shape[1] - (1 if exclude_self else 0))
    return torch.topk(d, k, largest=False).values.mean(1).numpy()


class VoxelKNNGate(Gate):
    """Novelty of the voxel pattern: mean distance to the k nearest training patterns (see module doc)."""

    name = "voxel-knn"

    def __init__(self, n_neighbors: int = 10, n_components: int = 100, calibration: str = "conformal"):
        super().__init__(calibration)
        self.n_neighbors = n_neighbors
        self.n_components = n_components

    def _project(self, fmri: np.ndarray) -> np.ndarray:
        return (np.asarray(fmri, np.float32) - self.pca_mean_) @ self.pca_components_.T

    def _fit_scorer(self, train, train_embeddings, cross_fitted):
        self.pca_mean_, self.pca_components_, _ = _pca_basis(np.asarray(train.fmri, np.float32), self.n_components)
        self.train_points_ = self._project(train.fmri)
        return -_knn_mean_distance(self.train_points_, self.train_points_, self.n_neighbors, exclude_self=True)

    def typicality(self, inputs: GateInputs) -> np.ndarray:
        return -_knn_mean_distance(self._project(inputs.fmri), self.train_points_, self.n_neighbors)


class KDEGate(Gate):
    """The paper's gate: Gaussian KDE (bandwidth 1.5) on PCA-20, z-scored training embeddings."""

    name = "kde"

    def __init__(self, bandwidth: float = 1.5, n_components: int = 20, calibration: str = "conformal"):
        super().__init__(calibration)
        self.bandwidth = bandwidth
        self.n_components = n_components

    def _features(self, emb: np.ndarray) -> np.ndarray:
        z = (np.asarray(emb, np.float32) - self.pca_mean_) @ self.pca_components_.T
        return (z - self.feature_mean_) / self.feature_std_

    def _log_density(self, feats: np.ndarray, exclude_self: bool = False) -> np.ndarray:
        # log of the mean Gaussian kernel over training points (sklearn KernelDensity's definition)
        d2 = torch.cdist(torch.as_tensor(feats, dtype=torch.float64), torch.as_tensor(self.train_features_, dtype=torch.float64)) ** 2
        logk = -d2 / (2 * self.bandwidth**2)
        n = self.train_features_.shape[0]
        if exclude_self:
            logk.fill_diagonal_(-float("inf"))
            n -= 1
        dim = feats.shape[1]
        norm = -np.log(n) - 0.5 * dim * np.log(2 * np.pi * self.bandwidth**2)
        return (torch.logsumexp(logk, dim=1).numpy() + norm).astype(np.float64)

    def _fit_scorer(self, train, train_embeddings, cross_fitted):
        self.pca_mean_, self.pca_components_, _ = _pca_basis(train_embeddings, self.n_components)
        z = (train_embeddings - self.pca_mean_) @ self.pca_components_.T
        self.feature_mean_, self.feature_std_ = z.mean(0), np.maximum(z.std(0), 1e-8)
        self.train_features_ = ((z - self.feature_mean_) / self.feature_std_).astype(np.float32)
        return self._log_density(self.train_features_, exclude_self=True)

    def typicality(self, inputs: GateInputs) -> np.ndarray:
        return self._log_density(self._features(inputs.raw_embeddings))


class PredictionKNNGate(Gate):
    """Cosine similarity of the centred decoded embedding to its nearest centred training embeddings."""

    name = "prediction-knn"

    def __init__(self, n_neighbors: int = 10, calibration: str = "conformal"):
        super().__init__(calibration)
        self.n_neighbors = n_neighbors

    def _unit(self, emb: np.ndarray) -> np.ndarray:
        z = np.asarray(emb, np.float32) - self.embedding_mean_
        return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-8)

    def _fit_scorer(self, train, train_embeddings, cross_fitted):
        self.embedding_mean_ = train_embeddings.mean(0)
        self.train_units_ = self._unit(train_embeddings)
        return self.typicality(cross_fitted)

    def typicality(self, inputs: GateInputs) -> np.ndarray:
        sims = self._unit(inputs.raw_embeddings) @ self.train_units_.T
        k = min(self.n_neighbors, sims.shape[1])
        return np.sort(sims, axis=1)[:, -k:].mean(1)


class BrainGate(Gate):
    """Evidence from the brain: r_sem - r_str, how much better the semantic cue explains the response (module doc).

    Parameters
    ----------
    alphas : ridge grid of the encoding models (one alpha per voxel by leave-one-out error).
    n_voxels : each model reads at most this many voxels, its best on held-out folds (those above 0).
    folds : folds of the cross-fitted reference and of the voxel selection.
    n_components : keep this many principal components of each feature block (None: all).
    """

    name = "brain"
    needs_structure = True

    def __init__(self, alphas=DEFAULT_ALPHAS, n_voxels: int = 1000, folds: int = 5, n_components: int | None = None,
                 calibration: str = "conformal"):
        super().__init__(calibration)
        self.alphas = alphas
        self.n_voxels = n_voxels
        self.folds = folds
        self.n_components = n_components

    def _fit_scorer(self, train, train_embeddings, cross_fitted):
        z = np.asarray(train.fmri, np.float32)
        blocks = {"sem": (train_embeddings, cross_fitted.raw_embeddings)}
        if self.needs_structure and train.structure_targets is not None and cross_fitted.structure is not None:
            blocks["str"] = (train.structure_targets, cross_fitted.structure)
        self.uses_structure_ = np.array("str" in blocks)
        folds = cv_folds(len(z), self.folds, train.groups)
        reference = np.zeros(len(z))
        for block, (truth, decoded) in blocks.items():
            x = self._fit_features(block, truth)
            fitted = self._fit_encoding(x, z, train.groups)
            for key, value in fitted.items():
                setattr(self, f"{block}_{key}_", value)
            sign = 1.0 if block == "sem" else -1.0
            reference += sign * self._cross_fitted_match(x, self._features(block, decoded), z, folds, train.groups)
        return reference

    def _fit_features(self, block: str, truth: np.ndarray) -> np.ndarray:
        """Learn the block's standardisation (and PCA) from the true training features; return them transformed."""
        raw = _flat(truth, block)
        mean, scale = block_standardization([raw])
        setattr(self, f"{block}_mean_", mean)
        setattr(self, f"{block}_scale_", scale)
        if self.n_components is not None:
            _, basis, _ = _pca_basis((raw - mean) / scale, self.n_components)
            setattr(self, f"{block}_basis_", basis.T.copy())
        return self._features(block, truth)

    def _features(self, block: str, values: np.ndarray) -> np.ndarray:
        x = (_flat(values, block) - getattr(self, f"{block}_mean_")) / getattr(self, f"{block}_scale_")
        return x @ getattr(self, f"{block}_basis_") if self.n_components is not None else x

    def _fit_encoding(self, x: np.ndarray, z: np.ndarray, groups) -> dict:
        """Ridge features -> every voxel; keep the voxels best predicted on held-out folds."""
        ridge, r = held_out_voxel_correlation(x, z, self.alphas, self.folds, groups)
        order = np.argsort(-r)[: self.n_voxels]
        voxels = order[r[order] > 0]
        if len(voxels) < min(MIN_VOXELS, len(order)):  # a correlation needs a pattern: the best few, even if poor
            voxels = order[:MIN_VOXELS]
        voxels = np.sort(voxels)
        return {"voxels": voxels.astype(np.int64), "coef": ridge.coef_[:, voxels].astype(np.float32),
                "intercept": ridge.intercept_[voxels].astype(np.float32)}

    def _cross_fitted_match(self, x_true, x_decoded, z, folds, groups) -> np.ndarray:
        """Each training trial's match, with the encoding model (and its voxels) fitted without the trial's fold."""
        match = np.zeros(len(z))
        for fold in folds:
            rest = np.setdiff1d(np.arange(len(z)), fold)
            fitted = self._fit_encoding(x_true[rest], z[rest], None if groups is None else np.asarray(groups)[rest])
            match[fold] = self._score(x_decoded[fold], z[fold], fitted["voxels"], fitted["coef"], fitted["intercept"])
        return match

    def _score(self, x, z, voxels, coef, intercept) -> np.ndarray:
        """How well the encoding model's prediction from features ``x`` matches the measured ``z``: Pearson r."""
        return _match(x, z, voxels, coef, intercept)

    def evidence(self, inputs: GateInputs) -> dict[str, np.ndarray]:
        """r_sem and, when the gate reads structure, r_str of each sample."""
        z = np.asarray(inputs.fmri, np.float32)
        out = {"sem": self._block_match("sem", inputs.raw_embeddings, z)}
        if bool(self.uses_structure_):
            if inputs.structure is None:
                raise ValueError("the brain gate was fitted with structural cues: pass the decoded structure")
            out["str"] = self._block_match("str", inputs.structure, z)
        return out

    def _block_match(self, block: str, values: np.ndarray, z: np.ndarray) -> np.ndarray:
        return self._score(self._features(block, values), z, getattr(self, f"{block}_voxels_"),
                           getattr(self, f"{block}_coef_"), getattr(self, f"{block}_intercept_"))

    def typicality(self, inputs: GateInputs) -> np.ndarray:
        ev = self.evidence(inputs)
        return ev["sem"] - ev["str"] if "str" in ev else ev["sem"]

    def load_state(self, arrays):
        super().load_state(arrays)
        self.uses_structure_ = np.array(bool(np.asarray(self.uses_structure_)))
        return self


class BrainResidualGate(BrainGate):
    """How closely the decoded semantics predict the measured response: minus the mean squared error of
    E_sem(c'') against the z-scored voxels E_sem reads (module doc). Parameters as :class:`BrainGate`'s.

    An unfamiliar stimulus is decoded toward familiar semantics (ridge shrinks it to the training mean), and
    the response those semantics predict leaves much of what was measured unexplained. A correlation would
    not see it (it ignores the amplitude of the mismatch); the squared error does.
    """

    name = "brain-residual"
    needs_structure = False
    scores_single_trials = True  # averaging repeats shrinks the noise, hence the error, of inside and outside alike

    def _score(self, x, z, voxels, coef, intercept) -> np.ndarray:
        return _negative_residual(x, z, voxels, coef, intercept)


def _flat(values: np.ndarray, block: str) -> np.ndarray:
    """Features of a block: embeddings as they are; structural targets pooled (pixels) or flattened."""
    values = np.asarray(values, np.float32)
    if block == "str" and values.ndim == 4:
        return pooled_structure(values)
    return values.reshape(len(values), -1)


def _match(x: np.ndarray, z: np.ndarray, voxels: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """Pearson r of each row's predicted response with its measured one, over ``voxels`` (float64)."""
    predicted = np.asarray(x, np.float64) @ coef.astype(np.float64) + intercept
    measured = np.asarray(z, np.float64)[:, voxels]
    return paired_correlation(predicted, measured)


def _negative_residual(x: np.ndarray, z: np.ndarray, voxels: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """Minus the mean squared difference of each row's predicted response from its measured one, over ``voxels``."""
    predicted = np.asarray(x, np.float64) @ coef.astype(np.float64) + intercept
    return -((np.asarray(z, np.float64)[:, voxels] - predicted) ** 2).mean(1)


GATES: Registry[type[Gate]] = Registry("gate")
DEFAULT_GATE = "brain-residual"


def register_gate(gate: type[Gate], replace: bool = False) -> type[Gate]:
    """Make a :class:`Gate` subclass known by its ``name`` to ``GESSDecoder(gate=...)``, ``gess fit --gate`` and run
    configs; a saved model names its gate, so the module that registers it must be imported (a plug-in) to load it."""
    if not (isinstance(gate, type) and issubclass(gate, Gate)) or gate.name == Gate.name:
        raise TypeError(f"register_gate takes a Gate subclass with its own name, got {gate!r}")
    return GATES.register(gate.name, gate, replace)


for _gate in (PredictionKNNGate, KDEGate, VoxelKNNGate, BrainGate, BrainResidualGate):
    register_gate(_gate)


def gate_class(name: str, source=None, field_name: str = "gate") -> type[Gate]:
    """The registered gate called ``name``; bad input naming ``source`` and the field otherwise."""
    if name not in GATES:
        raise GessInputError(source, field_name, f"one of {', '.join(GATES)}", repr(name))
    return GATES[name]


def make_gate(name: str = DEFAULT_GATE, **options) -> Gate:
    return gate_class(name)(**options)


def check_gate(name: str, options: dict | None = None, source=None, field_name: str = "gate") -> Gate:
    """The gate ``name`` built with ``options``, refused as bad input naming ``source`` and the field (an unknown
    name, an argument its constructor does not take, an unknown calibration) before any fitting."""
    cls = gate_class(name, source, field_name)
    options = dict(options or {})
    taken = init_params(cls)
    unknown = [key for key in options if key not in taken]
    if unknown:
        raise GessInputError(source, f"{field_name}_options.{unknown[0]}", f"an argument of the {name} gate "
                             f"({', '.join(taken)})", repr(unknown[0]))
    gate = cls(**options)
    if gate.calibration not in CALIBRATIONS:
        raise GessInputError(source, f"{field_name}_options.calibration", f"one of {', '.join(CALIBRATIONS)}",
                             repr(gate.calibration))
    return gate
