"""Simulated fMRI from any set of images: a documented, seeded encoding model.

Voxel model (``SimulatedFMRIModel``)
------------------------------------
* Low-level voxels (``n_low``): retinotopic Gaussian receptive fields on the
  grey-level image (resized to ``rf_resolution`` px, slightly blurred, mean
  luminance removed). Centres uniform over the visual field, sizes
  (sigma) uniform in ``rf_sigma_range`` pixels. Response = RF-weighted sum.
* Semantic voxels (``n_semantic``): radial-basis (category-selective) tuning to
  prototype embeddings: r = exp(-||u - p||^2 / (2 w^2)), u the unit-normalised
  image embedding, p a prototype (the unit embedding of a randomly chosen image
  of the pool), w = ``tuning_width`` times the median distance between unit
  embeddings. This non-linearity is what creates a semantic gap: a linear
  semantic code would be decoded as well outside the training semantics as
  inside (docs/data.md, "Simulated fMRI").
* Each voxel's signal is z-scored over the pool; each trial adds independent
  Gaussian noise of variance 1 / ``snr``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gess.data.dataset import Dataset, Split
from gess.data.images import gaussian_smooth, resize_images
from gess.errors import GessInputError

PROVENANCE = "simulated fMRI (gess.data.simulated): retinotopic low-level voxels + RBF semantic voxels + Gaussian noise"


@dataclass
class SimulatedFMRIModel:
    n_low: int = 1000
    n_semantic: int = 1000
    snr: float = 1.0
    tuning_width: float = 0.5
    rf_resolution: int = 32
    rf_sigma_range: tuple[float, float] = (1.5, 4.0)
    seed: int = 0

    def signals(self, images: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
        """Noise-free voxel signals (n, n_low + n_semantic), z-scored over the given pool."""
        rng = np.random.default_rng(self.seed)
        low = self._low_level(images, rng)
        sem = self._semantic(embeddings, rng)
        signal = np.concatenate([low, sem], axis=1)
        signal -= signal.mean(0)
        signal /= np.maximum(signal.std(0), 1e-8)
        return signal.astype(np.float32)

    def _low_level(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.n_low == 0:
            return np.zeros((len(images), 0), np.float32)
        side = self.rf_resolution
        grey = resize_images(images, side).astype(np.float32).mean(axis=-1, keepdims=True)
        grey = gaussian_smooth(grey.astype(np.uint8), 0.7)[..., 0] / 255.0
        grey -= grey.mean(axis=(1, 2), keepdims=True)
        yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
        cy, cx = rng.uniform(0, side, self.n_low), rng.uniform(0, side, self.n_low)
        sigma = rng.uniform(*self.rf_sigma_range, self.n_low)
        rf = np.exp(-((yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2) / (2 * sigma[:, None, None] ** 2))
        rf /= rf.sum(axis=(1, 2), keepdims=True)
        return grey.reshape(len(grey), -1) @ rf.reshape(self.n_low, -1).T

    def _semantic(self, embeddings: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.n_semantic == 0:
            return np.zeros((len(embeddings), 0), np.float32)
        u = embeddings - embeddings.mean(0)
        u = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-8)
        protos = u[rng.integers(0, len(u), self.n_semantic)]
        d2 = ((u[:, None, :] - protos[None]) ** 2).sum(-1)
        pair = ((u[:, None, :] - u[None, : min(len(u), 300)]) ** 2).sum(-1)
        width = self.tuning_width * float(np.median(np.sqrt(pair[pair > 0])))
        return np.exp(-d2 / (2 * width**2)).astype(np.float32)

    def trials(self, signal: np.ndarray, repeats: int, rng: np.random.Generator) -> np.ndarray:
        noise = rng.normal(0.0, 1.0 / np.sqrt(self.snr), size=(repeats,) + signal.shape).astype(np.float32)
        return (signal[None] + noise).reshape(-1, signal.shape[1]) if repeats > 1 else signal + noise[0]


def simulate_dataset(images: np.ndarray, stimulus_ids, embeddings: np.ndarray, train_ids, test_ids,
                     model: SimulatedFMRIModel | None = None, train_repeats: int = 1, test_repeats: int = 1,
                     labels: np.ndarray | None = None, name: str = "simulated") -> Dataset:
    """Simulate a train/test experiment over a pool of images.

    Parameters
    ----------
    images : (n, H, W, C) uint8 pool; stimulus_ids : (n,) ids; embeddings : (n, d)
        semantic features of the pool (any encoder's).
    train_ids, test_ids : which pool images are shown in training and in test.
    train_repeats, test_repeats : trials per stimulus (test repeats are usually averaged).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> imgs = rng.integers(0, 255, (20, 16, 16, 3), dtype=np.uint8); emb = rng.normal(size=(20, 8))
    >>> ids = [f"im{i}" for i in range(20)]
    >>> ds = simulate_dataset(imgs, ids, emb, ids[:15], ids[15:], SimulatedFMRIModel(n_low=10, n_semantic=10))
    >>> ds.train.fmri.shape, ds.test.fmri.shape
    ((15, 20), (5, 20))
    """
    model = model or SimulatedFMRIModel()
    ids = np.asarray(stimulus_ids).astype(str)
    if len(ids) != len(images) or len(embeddings) != len(images):
        raise GessInputError(None, "embeddings", f"{len(images)} ids and embeddings (one per image)", f"{len(ids)} and {len(embeddings)}")
    lookup = {s: i for i, s in enumerate(ids)}
    signal = model.signals(images, np.asarray(embeddings, np.float32))
    rng = np.random.default_rng(model.seed + 1)

    def side(wanted, repeats) -> Split:
        rows = np.array([lookup[str(s)] for s in wanted])
        fmri = model.trials(signal[rows], repeats, rng)
        trial_ids = np.tile(ids[rows], repeats)
        return Split(fmri, trial_ids, images[rows], ids[rows].copy(), labels[rows] if labels is not None else None)

    return Dataset(side(train_ids, train_repeats), side(test_ids, test_repeats), name=name, source="simulated",
                   provenance=PROVENANCE, extra={"simulation": vars(model).copy()})


# ------------------------------------------------------------------ simulated experiments
@dataclass
class ImagePool:
    """The images a simulated experiment shows: scikit-learn's digits (they ship with it) or a folder."""

    images: str = "sklearn-digits"
    n_per_class: int = 60        # sklearn-digits: images drawn per digit class
    image_size: int = 32

    def load(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(uint8 images, ids, class labels or None)."""
        from gess.data.images import load_image_folder

        if self.images == "sklearn-digits":
            from sklearn.datasets import load_digits

            digits = load_digits()
            rng = np.random.default_rng(0)
            rows = np.concatenate([rng.choice(np.where(digits.target == k)[0], self.n_per_class, replace=False)
                                   for k in range(10)])
            return self._sklearn_digits(digits, rows)
        images, ids = load_image_folder(self.images, size=self.image_size)
        return images, ids, None

    def world(self) -> tuple[np.ndarray, np.ndarray]:
        """Every image of the pool's source (all 1,797 scikit-learn digits; a folder's images): (images, ids)."""
        if self.images == "sklearn-digits":
            from sklearn.datasets import load_digits

            digits = load_digits()
            images, ids, _ = self._sklearn_digits(digits, np.arange(len(digits.target)))
            return images, ids
        images, ids, _ = self.load()
        return images, ids

    def _sklearn_digits(self, digits, rows: np.ndarray):
        imgs = np.rint(digits.images[rows] / 16.0 * 255).astype(np.uint8)[..., None]
        ids = np.array([f"digit{digits.target[r]}-{r:04d}" for r in rows])
        return resize_images(imgs, self.image_size), ids, digits.target[rows]


@dataclass
class SimulatedExperiment:
    """A simulated recording over an image pool, and what the report needs to tell its story.

    ``groups`` maps each test stimulus to ``"inside"`` (held out from the training side of
    the split, so inside the training semantics) or ``"outside"`` (from the other side).
    """

    dataset: Dataset
    pool_images: np.ndarray
    pool_ids: np.ndarray
    embeddings: np.ndarray
    split: object               # gess.split.GeneralizedSplit
    groups: dict
    unused_ids: list
    world_images: np.ndarray | None = None   # every image of the pool's source
    world_ids: np.ndarray | None = None
    world_embeddings: np.ndarray | None = None

    def images_of(self, ids) -> np.ndarray:
        lookup = {s: i for i, s in enumerate(self.pool_ids)}
        return self.pool_images[[lookup[s] for s in ids]]

    def augment_images(self) -> np.ndarray | None:
        """Pool images shown in no trial: they sample the semantic manifold (C_aug)."""
        return self.images_of(self.unused_ids) if self.unused_ids else None

    def generator_images(self) -> tuple[np.ndarray, np.ndarray]:
        """Every image of the source but the test stimuli, and their embeddings: what a generator may learn the world from."""
        test = set(self.dataset.test.stimulus_ids.tolist())
        if self.world_images is None:
            keep = [i for i, s in enumerate(self.pool_ids) if s not in test]
            return self.pool_images[keep], self.embeddings[keep]
        keep = [i for i, s in enumerate(self.world_ids) if s not in test]
        return self.world_images[keep], self.world_embeddings[keep]

    def group_of(self, stimulus_ids) -> np.ndarray:
        return np.array([self.groups[s] for s in stimulus_ids])


def simulate_experiment(pool: ImagePool, model: SimulatedFMRIModel, embed, clusters: int = 20,
                        split_method: str = "kernighan-lin", inside_test: int = 30, outside_test: int = 30,
                        seed: int = 0) -> SimulatedExperiment:
    """Pool -> embeddings (``embed(images)``) -> generalized split -> simulated fMRI.

    The split's training side gives the training stimuli and ``inside_test`` held-out
    test stimuli; its other side gives ``outside_test`` test stimuli.
    """
    from gess.split import generalized_split

    images, ids, labels = pool.load()
    world_images, world_ids = pool.world()
    world_emb = embed(world_images)  # the pool is a subset of its source: one encoding serves both
    at = {s: i for i, s in enumerate(world_ids)}
    emb = world_emb[[at[s] for s in ids]]
    split = generalized_split(emb, ids, clusters, split_method, seed=seed)
    rng = np.random.default_rng(seed)
    inside = rng.choice(split.train, min(inside_test, len(split.train) // 3), replace=False)
    outside = rng.choice(split.test, min(outside_test, len(split.test)), replace=False)
    held = set(inside)
    train = [i for i in split.train if i not in held]
    test = list(inside) + list(outside)
    ds = simulate_dataset(images, ids, emb, train, test, model, labels=labels, name="simulated")
    groups = {s: "inside" for s in inside} | {s: "outside" for s in outside}
    shown = set(train) | set(test)
    return SimulatedExperiment(ds, images, ids, emb, split, groups, [i for i in ids if i not in shown], world_images,
                               world_ids, world_emb)
