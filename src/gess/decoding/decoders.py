"""GESSDecoder: voxels -> (c', c, s, pi_c), the three GESS decoders (M_c, M_s, M_g) behind one estimator."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from sklearn.base import BaseEstimator

from gess.data.dataset import validate_fmri, voxel_statistics
from gess.decoding.encoding import (KERNEL_MAX_TRIALS, STRUCTURAL_ALPHA_GRID, chosen_structural_selection,
                                    structural_voxels)
from gess.decoding.gating import DEFAULT_GATE, Gate, GateInputs, GATES, calibrate, check_gate, make_gate
from gess.decoding.ridge import RBFKernelRidge, Ridge, RidgeFactorization, cv_folds, factorize
from gess.decoding.semantic import SemanticDecoder
from gess.decoding.structural import StructuralDecoder, StructuralSpace
from gess.decoding.trust import BrainConsistency
from gess.device import using_device
from gess.encoders.base import EncoderSpec
from gess.errors import GessInputError
from gess.io import claim_output_dir
from gess.persistence import CONFIG_NAME, load_component, nest, save_component, unnest


@dataclass
class Decoded:
    """Decoder outputs for n samples: c'' (raw), c' (aligned), c (re-projected), s, pi_c."""

    c_raw: np.ndarray
    c_prime: np.ndarray
    c: np.ndarray
    s: np.ndarray
    pi_c: np.ndarray


class GESSDecoder(BaseEstimator):
    """Fit M_c, M_s and M_g on training fMRI; decode test fMRI into (c', c, s, pi_c).

    Voxels are z-scored with training statistics inside the estimator, so
    ``fit`` and ``decode`` take raw fMRI.

    Parameters
    ----------
    alpha_semantic : the ridge regularisation of M_c (paper: 1000).
    alpha_structural : the ridge regularisation of M_s (paper: 1000).
    alphas : optional grid; when given, each ridge chooses alpha by 5-fold CV.
    structural_voxels : M_s reads only this many voxels, those an encoding model of the structural targets
        predicts best on held-out folds of the training trials; ``"all"`` (or None): every voxel, at
        ``alpha_structural``; ``"auto"`` (default): the count (or every voxel) and M_s's alpha chosen together on
        held-out folds of the training trials, the voxels ranked inside each fold
        (:func:`~gess.decoding.encoding.chosen_structural_selection`; alphas from ``alphas`` when given, else
        :data:`~gess.decoding.encoding.STRUCTURAL_ALPHA_GRID`; ``alpha_structural`` is then not read).
    structural_kernel : M_s as a linear ridge (``"linear"``, the paper's), as a kernel ridge with a Gaussian kernel
        (``"rbf"``, :class:`~gess.decoding.ridge.RBFKernelRidge`: nonlinear in the voxels, for small training
        sets), or ``"auto"`` (default): with ``structural_voxels="auto"`` the folds choose between them (and the
        kernel's width and alpha, :data:`~gess.decoding.encoding.RBF_GAMMA_GRID` and ``RBF_ALPHA_GRID``) together
        with the voxels, for a ridge M_s of at most :data:`~gess.decoding.encoding.KERNEL_MAX_TRIALS` training
        trials; otherwise linear.
    structural_rbf_gamma, structural_rbf_alpha : the RBF kernel's width (per voxel) and alpha when they are not
        chosen on the folds (``structural_kernel="rbf"`` with a fixed ``structural_voxels``).
    alignment : M_c's alignment of the decoded embeddings (:class:`~gess.decoding.semantic.SemanticDecoder`):
        "batch" (the released code: z-score the predictions with their own statistics, give them those of the
        known embeddings), "reference" (the statistics of cross-fitted training predictions: each sample decoded
        independently of the others) or "none".
    n_neighbors : K, the known embeddings the re-projection onto the manifold reads (released: 5).
    reprojection : the re-projection onto the manifold of known embeddings: "released" (affine weights, a
        penalty toward the nearest neighbour), "lle" (ridge on the local Gram matrix) or "none".
    regularization : the re-projection's: 10 for "released" (the released value), a relative ridge (e.g. 1e-3)
        for "lle"; None: that default.
    w_c : c = w_c * re-projected + (1 - w_c) * c' (released: 1).
    gate : M_g, the name of a registered gate (:data:`gess.decoding.gating.GATES`; a plug-in adds one with
        :func:`~gess.decoding.gating.register_gate`).
    gate_options : the gate's constructor arguments (a mapping; e.g. {"calibration": "minmax"}).
    cv_folds : folds of the cross-fitted training predictions used for
        calibration and reference alignment.
    structural_decoder : M_s as a ridge (``"ridge"``, fast) or as Beliy et al.'s
        self-supervised encoder-decoder (``"self-supervised"``, the paper's experiments;
        :mod:`gess.decoding.selfsupervised`).
    self_supervised : the self-supervised M_s's
        :class:`~gess.decoding.selfsupervised.SelfSupervisedOptions` (a mapping; ``gess fit --ss-*``).
    device : torch device of the fitting ("cpu", "cuda"); None: the process device
        (:func:`gess.device.get_device`, ``GESS_DEVICE``).

    The constructor's signature is the one declaration of these options:
    ``get_params`` (scikit-learn's), run configs and ``gess fit`` flags are read from it.

    Attributes
    ----------
    semantic_ : the fitted M_c (:class:`~gess.decoding.semantic.SemanticDecoder`)
    structural_ : the fitted M_s (:class:`~gess.decoding.structural.StructuralDecoder`)
    gate_ : the fitted M_g (:class:`~gess.decoding.gating.Gate`)
    encoder_ : the :class:`~gess.encoders.EncoderSpec` of the embeddings it was fitted on
    structure_space_ : the :class:`~gess.decoding.structural.StructuralSpace` config of its targets
    metadata_ : provenance (dataset, fingerprint, ...)

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 30)); C = rng.normal(size=(40, 8)); S = rng.random((40, 4, 4, 1))
    >>> out = GESSDecoder(n_neighbors=3).fit(X, C, S).decode(X[:5])
    >>> out.c.shape, out.s.shape, out.pi_c.shape
    ((5, 8), (5, 4, 4, 1), (5,))
    """

    def __init__(self, alpha_semantic: float = 1000.0, alpha_structural: float = 1000.0, alphas: list[float] | None = None,
                 structural_voxels: int | Literal["auto", "all"] | None = "auto",
                 structural_kernel: Literal["auto", "linear", "rbf"] = "auto", structural_rbf_gamma: float = 0.3,
                 structural_rbf_alpha: float = 0.1,
                 alignment: Literal["batch", "reference", "none"] = "batch", n_neighbors: int = 5,
                 reprojection: Literal["released", "lle", "none"] = "released",
                 regularization: float | None = None, w_c: float = 1.0, gate: str = DEFAULT_GATE,
                 gate_options: dict | None = None, cv_folds: int = 5,
                 structural_decoder: Literal["ridge", "self-supervised"] = "ridge", self_supervised: dict | None = None,
                 device: str | None = None):
        self.alpha_semantic = alpha_semantic
        self.alpha_structural = alpha_structural
        self.alphas = alphas
        self.structural_voxels = structural_voxels
        self.structural_kernel = structural_kernel
        self.structural_rbf_gamma = structural_rbf_gamma
        self.structural_rbf_alpha = structural_rbf_alpha
        self.alignment = alignment
        self.n_neighbors = n_neighbors
        self.reprojection = reprojection
        self.regularization = regularization
        self.w_c = w_c
        self.gate = gate
        self.gate_options = gate_options
        self.cv_folds = cv_folds
        self.structural_decoder = structural_decoder
        self.self_supervised = self_supervised
        self.device = device

    # ------------------------------------------------------------------ fit
    def fit(self, fmri: np.ndarray, embeddings: np.ndarray, structure: np.ndarray,
            augment_embeddings: np.ndarray | None = None, encoder: EncoderSpec | None = None,
            structure_space: StructuralSpace | None = None, metadata: dict | None = None,
            groups=None, extra_structure: np.ndarray | None = None, unpaired_fmri: np.ndarray | None = None,
            checkpoint: str | Path | None = None, progress: bool = False) -> "GESSDecoder":
        """Fit on training trials.

        Parameters
        ----------
        fmri : (n, v) raw voxels (a memory-mapped array is read, not copied: one float32
            z-scored copy is all the memory the voxels take); embeddings : (n, d) image
            embeddings of each trial's image; structure : (n, ...) structural targets;
        augment_embeddings : (m, d) extra embeddings sampling the manifold (C_aug).
        encoder : who made ``embeddings`` (kept, compared when decoding or generating).
        structure_space : what ``structure`` is (kept, so generators know how to use s).
        metadata : provenance recorded in the saved config.
        groups : (n,) the stimulus of each trial; cross-fitting folds never split one
            stimulus's repeats (default: every trial its own stimulus).
        extra_structure : (m, ...) structural targets of extra images without fMRI, and
        unpaired_fmri : (k, v) raw fMRI without images: the self-supervised M_s's cycles.
        checkpoint : where the self-supervised M_s saves and resumes its training.

        One eigendecomposition of the z-scored voxels serves M_c, M_s, every alpha of
        the grid and the cross-fitted predictions of the gate (:mod:`gess.decoding.ridge`).
        """
        check_gate(self.gate, self.gate_options)  # an unregistered gate or bad options: refused before any fitting
        fmri = validate_fmri(fmri, None, "training fMRI")
        embeddings = np.asarray(embeddings, np.float32)
        structure = np.asarray(structure, np.float32)
        for name, arr in (("embeddings", embeddings), ("structure", structure)):
            if len(arr) != len(fmri):
                raise GessInputError(None, name, f"{len(fmri)} rows (one per fMRI trial)", f"{len(arr)}")
        self.n_voxels_ = fmri.shape[1]
        self.voxel_mean_, self.voxel_std_, constant = voxel_statistics(fmri, with_constant=True)
        if constant:  # kept (z-scored to 0, so they carry nothing), said aloud
            import warnings

            warnings.warn(f"{constant} of {fmri.shape[1]} voxels are constant over the training trials; "
                          "they carry no signal and are kept at 0 after z-scoring", stacklevel=2)
        with using_device(self.device):
            # the trust model also reads blurred pixels (not latents): it sees them again in every reconstruction
            pixels = structure_space is not None and structure_space.kind == "pixels" and structure.ndim == 4
            self.fit_seconds_ = self._fit_decoders(fmri, embeddings, structure, augment_embeddings, groups, extra_structure,
                                                   unpaired_fmri, checkpoint, progress, metadata, pixels)
        self.encoder_ = encoder or EncoderSpec("unknown", "unknown", int(embeddings.shape[1]))
        self.structure_space_ = structure_space.config() if structure_space is not None else None
        self.metadata_ = {**dict(metadata or {}), "constant_voxels": constant,
                          "trust_features": self.trust_.feature_scores_,
                          **({"structural_selection": self.structural_selection_} if self.structural_selection_ else {})}
        return self

    def _fit_decoders(self, fmri, embeddings, structure, augment_embeddings, groups, extra_structure, unpaired_fmri,
                      checkpoint, progress, metadata, trust_sees_pixels: bool) -> dict:
        """M_c, M_s, M_g and the trust model on the z-scored voxels; returns the seconds each took."""
        timings = {}
        clock = time.perf_counter()
        z = self._standardize(fmri)
        # one factorisation of the voxels for both decoders: a Cholesky per alpha, or one eigendecomposition for a grid
        semantic_alphas = self.alphas if self.alphas is not None else [self.alpha_semantic]
        shared = factorize(z, semantic_alphas)
        timings["decomposition"] = time.perf_counter() - clock

        clock = time.perf_counter()
        semantic_ridge = Ridge(self.alpha_semantic, self.alphas).fit(z, embeddings, shared)
        timings["semantic"] = time.perf_counter() - clock
        clock = time.perf_counter()
        cross = semantic_ridge.cross_fitted(cv_folds(len(z), self.cv_folds, groups))
        timings["cross-fitting"] = time.perf_counter() - clock
        self.semantic_ = self._semantic_decoder()
        self.semantic_.fit(z, embeddings, augment_embeddings, cross_fitted=cross, ridge=semantic_ridge.release())
        clock = time.perf_counter()
        count, kernel, alpha_structural, alphas_structural = self._structural_selection(z, structure, groups)
        timings["structural selection"] = time.perf_counter() - clock
        structural_alphas = alphas_structural if alphas_structural is not None else [alpha_structural]
        clock = time.perf_counter()
        voxels, read = None, z  # the voxels M_s reads (None: all) and their z-scores
        if count is not None and count < z.shape[1]:
            voxels = structural_voxels(z, structure, count, self.cv_folds, groups)
            read = z[:, voxels]
            if kernel is None:
                shared = factorize(read, structural_alphas)
        elif isinstance(shared, RidgeFactorization) and structural_alphas != semantic_alphas and kernel is None:
            shared = factorize(z, structural_alphas)
        gate = make_gate(self.gate, **(self.gate_options or {}))
        structural_cross = None
        targets = structure.reshape(len(structure), -1)
        if kernel is not None:
            structural_ridge = kernel.fit(read, targets)
            if gate.needs_structure:
                structural_cross = kernel.cross_fitted(targets, cv_folds(len(z), self.cv_folds, groups)).reshape(structure.shape)
        elif self.structural_decoder == "self-supervised" or gate.needs_structure:  # cross-fitting needs one chunk
            structural_ridge = Ridge(alpha_structural, alphas_structural).fit(read, targets, shared,
                                                                               chunk=max(8192, targets.shape[1]))
            structural_cross = structural_ridge.cross_fitted(cv_folds(len(z), self.cv_folds, groups)).reshape(structure.shape)
        else:
            structural_ridge = Ridge(alpha_structural, alphas_structural).fit(read, targets, shared)
        del read
        self.structural_ = StructuralDecoder(alpha_structural, alphas_structural)
        self.structural_.fit(z, structure, ridge=structural_ridge if kernel is not None else structural_ridge.release(),
                             voxels=voxels)
        self.alpha_structural_used_ = self.structural_.alpha_used_
        timings["structural"] = time.perf_counter() - clock
        if self.structural_decoder == "self-supervised":
            clock = time.perf_counter()
            self.structural_ = self._fit_self_supervised(z, structure, structural_cross, extra_structure, unpaired_fmri,
                                                         checkpoint, progress, metadata)
            timings["self-supervised M_s"] = time.perf_counter() - clock
        del shared
        clock = time.perf_counter()
        self.gate_ = gate
        if gate.needs_structure:  # the structural cue: decoded by models that never saw the trial, and the truth
            self.gate_.fit(GateInputs(z, self.semantic_.predict_raw(z), structure_targets=structure, groups=groups),
                           embeddings, GateInputs(z, cross, structure=structural_cross, groups=groups))
        else:
            self.gate_.fit(GateInputs(z, self.semantic_.predict_raw(z), groups=groups), embeddings,
                           GateInputs(z, cross, groups=groups))
        timings["gate"] = time.perf_counter() - clock
        clock = time.perf_counter()
        self.trust_ = BrainConsistency().fit(z, embeddings, groups, structure if trust_sees_pixels else None)
        timings["trust"] = time.perf_counter() - clock
        return timings

    def _structural_selection(self, z, structure, groups) -> tuple[int | None, RBFKernelRidge | None, float, list | None]:
        """M_s's voxel count (None: every voxel), its kernel ridge (None: a linear ridge), alpha and alpha grid
        (None: that one alpha): as given, or with ``structural_voxels="auto"`` chosen on held-out folds (the
        record kept as ``structural_selection_``)."""
        self.structural_selection_ = None
        if self.structural_kernel == "rbf" and self.structural_decoder == "self-supervised":
            raise GessInputError(None, "structural_kernel", "linear or auto with the self-supervised M_s (it refines a "
                                 "linear readout)", "rbf")
        if self.structural_voxels != "auto":
            count = None if self.structural_voxels in (None, "all") else int(self.structural_voxels)
            if self.structural_kernel == "rbf":
                kernel = RBFKernelRidge(self.structural_rbf_alpha, self.structural_rbf_gamma)
                return count, kernel, self.structural_rbf_alpha, None
            return count, None, self.alpha_structural, self.alphas
        rbf_allowed = self.structural_decoder == "ridge" and len(z) <= KERNEL_MAX_TRIALS
        kernels = {"linear": ("linear",), "rbf": ("rbf",),
                   "auto": ("linear", "rbf") if rbf_allowed else ("linear",)}[self.structural_kernel]
        chosen = chosen_structural_selection(
            z, structure, self.cv_folds, groups, alphas=self.alphas if self.alphas is not None else STRUCTURAL_ALPHA_GRID,
            kernels=kernels)
        self.structural_selection_ = chosen
        kernel = RBFKernelRidge(chosen["alpha"], chosen["gamma"]) if chosen["kernel"] == "rbf" else None
        return chosen["voxels"], kernel, chosen["alpha"], None

    def _semantic_decoder(self) -> SemanticDecoder:
        return SemanticDecoder(self.alpha_semantic, self.alphas, self.alignment, self.n_neighbors, self.reprojection,
                               self.regularization, self.w_c)

    def _fit_self_supervised(self, z, structure, cross, extra_structure, unpaired_fmri, checkpoint, progress, metadata):
        from gess.decoding.selfsupervised import SelfSupervisedOptions, SelfSupervisedStructuralDecoder
        from gess.options import build

        if structure.ndim != 4:
            raise GessInputError(None, "structural_decoder", "pixel targets (n, S, S, C) for the self-supervised M_s "
                                 "(structure kind: pixels)", f"targets shaped {structure.shape[1:]}")
        options = build(SelfSupervisedOptions, self.self_supervised or {}, None, "self_supervised")
        unpaired = self._standardize(validate_fmri(unpaired_fmri, None, "unpaired fMRI")) if (
            unpaired_fmri is not None and options.unpaired_fmri != "none") else None
        ridge = self.structural_.ridge_
        resume_key = {"data": (metadata or {}).get("fingerprint")}
        return SelfSupervisedStructuralDecoder(options).fit(
            z, structure, ridge.coef_, ridge.intercept_, extra_structure, unpaired, cross, checkpoint, resume_key, progress)

    def _standardize(self, fmri: np.ndarray, rows: int = 1024) -> np.ndarray:
        """z-scored float32 voxels, written block by block into one array (no transient copies)."""
        z = np.empty(fmri.shape, np.float32)
        for start in range(0, len(fmri), rows):
            block = np.asarray(fmri[start:start + rows], np.float32)
            np.subtract(block, self.voxel_mean_, out=z[start:start + rows])
            z[start:start + rows] /= self.voxel_std_
        return z

    # --------------------------------------------------------------- decode
    def decode(self, fmri: np.ndarray, source: str | None = None, pi_c: np.ndarray | None = None) -> Decoded:
        """Decode raw test fMRI (n, v) into c'', c', c, s and pi_c (the gate's, unless ``pi_c`` is given: one
        scored otherwise, e.g. :meth:`pi_c_over_trials`, so the gate does not score these samples twice)."""
        z = self._checked_z(fmri, source)
        raw, aligned, reproj = self.semantic_.decode(z)
        s = self.structural_.predict(z)
        if pi_c is None:
            pi_c = self.gate_.pi_c(self._gate_inputs(z, raw, s))
        elif len(pi_c) != len(z):
            raise ValueError(f"pi_c has {len(pi_c)} values for {len(z)} samples")
        return Decoded(raw, aligned, reproj, s, np.asarray(pi_c))

    def _checked_z(self, fmri: np.ndarray, source: str | None) -> np.ndarray:
        """Raw fMRI checked (finite, 2-D, this decoder's voxel count) and z-scored with the training statistics."""
        fmri = validate_fmri(fmri, source, "fMRI")
        self.check_voxels(fmri.shape[1], source)
        return self._standardize(fmri)

    def _gate_inputs(self, z: np.ndarray, raw: np.ndarray, s: np.ndarray | None = None) -> GateInputs:
        """What the gate reads of z-scored samples: c'', and the decoded structure when it reads it."""
        if self.gate_.needs_structure and s is None:
            s = self.structural_.predict(z)
        return GateInputs(z, raw, structure=s if self.gate_.needs_structure else None)

    def pi_c_over_trials(self, fmri: np.ndarray, stimulus_of_trial: np.ndarray, source: str | None = None) -> np.ndarray:
        """pi_c per stimulus from its single trials (raw fMRI, one row per trial; ``stimulus_of_trial`` the row's
        stimulus, 0 .. n-1): each trial scored as the gate's single-trial reference was, the scores averaged per
        stimulus, then calibrated. For gates whose score depends on the noise level (``scores_single_trials``),
        which averaging repeats before decoding would shift for every stimulus alike."""
        z = self._checked_z(fmri, source)
        scores = self.gate_.typicality(self._gate_inputs(z, self.semantic_.predict_raw(z)))
        index = np.asarray(stimulus_of_trial, np.int64)
        counts = np.bincount(index)
        means = np.bincount(index, weights=scores, minlength=len(counts))[counts > 0] / counts[counts > 0]
        return calibrate(means, self.gate_.reference_scores_, self.gate_.calibration)

    # ---------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` then ``config.json`` into ``directory``, each atomically.

        Other files in ``directory`` are left alone; a directory holding anything but a
        gess model is refused. The two files share a save id, so weights and config
        from different saves (an interrupted save) are never read together.
        """
        directory = claim_output_dir(directory, "model")
        structural = "structural.ss" if self.structural_decoder == "self-supervised" else "structural"
        arrays = {"voxel_mean": self.voxel_mean_, "voxel_std": self.voxel_std_, **nest("semantic", self.semantic_.state()),
                  **nest(structural, self.structural_.state()), **nest("gate", self.gate_.state())}
        config = {
            "params": self.get_params(), "n_voxels": int(self.n_voxels_),
            "embedding_dim": int(self.semantic_.manifold_.shape[1]), "structure_shape": list(self.structural_.target_shape_),
            "alpha_semantic_used": _alpha_record(self.semantic_.ridge_.alpha_),
            "alpha_structural_used": _alpha_record(self.alpha_structural_used_), "gate": self.gate_.config(),
            "encoder": self.encoder_.to_dict(), "structure_space": self.structure_space_, "metadata": self.metadata_,
        }
        if getattr(self, "trust_", None) is not None:
            arrays.update(nest("trust", self.trust_.state()))
            config["trust"] = self.trust_.config()
        if self.structural_decoder == "self-supervised":
            config["self_supervised"] = self.structural_.config()
        save_component(directory, "GESSDecoder", config, arrays)
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str | None = None) -> "GESSDecoder":
        """Read a directory written by :meth:`save`; ``device`` overrides the saved one."""
        config, arrays = load_component(directory, "GESSDecoder", "a fitted gess model", untagged=True)
        if "params" not in config:
            raise GessInputError(Path(directory) / CONFIG_NAME, "_class_name", "a gess model config (GESSDecoder)",
                                 repr(config.get("_class_name")))
        self = cls(**{**config["params"], **({"device": device} if device is not None else {})})
        self.n_voxels_ = config["n_voxels"]
        self.voxel_mean_, self.voxel_std_ = arrays["voxel_mean"], arrays["voxel_std"]
        self.semantic_ = self._semantic_decoder().load_state(unnest("semantic", arrays), config["alpha_semantic_used"])
        if "self_supervised" in config:
            from gess.decoding.selfsupervised import SelfSupervisedStructuralDecoder

            with using_device(self.device):
                self.structural_ = SelfSupervisedStructuralDecoder.from_state(config["self_supervised"],
                                                                              unnest("structural.ss", arrays))
        else:
            self.structural_ = StructuralDecoder(self.alpha_structural, self.alphas).load_state(
                unnest("structural", arrays), config["alpha_structural_used"], config["structure_shape"])
        self.alpha_structural_used_ = config["alpha_structural_used"]
        gate_name = config["gate"].get("name")
        if gate_name not in GATES:  # a plug-in's gate: the model needs the module that registers it
            raise GessInputError(Path(directory) / CONFIG_NAME, "gate.name", f"a registered gate ({', '.join(GATES)}); a "
                                 "plug-in's gate needs its module in $GESS_PLUGINS or a gess.plugins entry point",
                                 repr(gate_name))
        self.gate_ = Gate.from_state(config["gate"], unnest("gate", arrays))
        trust = unnest("trust", arrays)
        self.trust_ = BrainConsistency.from_state(config["trust"], trust) if trust and "trust" in config else None
        self.metadata_ = config.get("metadata", {})
        self.structural_selection_ = self.metadata_.get("structural_selection")
        stored_encoder = config.get("encoder") or self.metadata_.get("encoder")  # gess 0.1 kept it in metadata
        self.encoder_ = EncoderSpec.from_dict(stored_encoder) if stored_encoder else EncoderSpec("unknown", "unknown", config["embedding_dim"])
        self.structure_space_ = config.get("structure_space") or self.metadata_.get("structure")
        return self

    def trust(self, embeddings: np.ndarray, fmri: np.ndarray, structure: np.ndarray | None = None) -> np.ndarray | None:
        """Trust in [0, 1] of reconstructions (their image embeddings and, when the trust model reads them, their
        structural targets) decoded from raw ``fmri`` (:class:`~gess.decoding.trust.BrainConsistency`); None for a
        model saved without it."""
        if getattr(self, "trust_", None) is None:
            return None
        return self.trust_.score(embeddings, self._standardize(fmri), structure)

    def brain_match(self, embeddings: np.ndarray, fmri: np.ndarray, structure: np.ndarray | None = None) -> np.ndarray:
        """Pearson r of each reconstruction's predicted response with the raw ``fmri`` it came from (best-of-N's score)."""
        return self.trust_.match(embeddings, self._standardize(fmri), structure)

    @property
    def trust_reads_structure(self) -> bool:
        """Whether the trust model needs the reconstructions' structural targets besides their embeddings."""
        return getattr(self, "trust_", None) is not None and bool(self.trust_.uses_structure_)

    def check_voxels(self, n_voxels: int, source: str | None = None) -> None:
        """Raise a clear error when test fMRI has another number of voxels than the model was fitted on."""
        if n_voxels != self.n_voxels_:
            raise GessInputError(source, "fMRI", f"{self.n_voxels_} voxels (the model was fitted on that many)", f"{n_voxels}")


def _alpha_record(alpha) -> float | dict:
    """A scalar alpha as is; per-target alphas summarised (the weights hold their effect)."""
    if isinstance(alpha, dict):
        return alpha
    if np.ndim(alpha) == 0:
        return float(alpha)
    values, counts = np.unique(np.asarray(alpha), return_counts=True)
    return {"per_target": {f"{v:g}": int(c) for v, c in zip(values, counts)}}
