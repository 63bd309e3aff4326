"""Which digit does a reconstruction show? Read by a classifier, not by eye.

A :class:`DigitReader` is a logistic regression on grey pixels, trained on labelled
digits that are not test stimuli: scikit-learn's digits for the demo
(:func:`sklearn_digits_reader`), MNIST for digit69 (:func:`mnist_reader`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


class DigitReader:
    """Logistic regression on grey pixels at ``side`` px, each image scaled to [0, 1] by its own range.

    The per-image scaling makes a faint but well-shaped reconstruction read as its digit.
    """

    def __init__(self, side: int = 16, C: float = 0.05, max_iter: int = 2000):
        self.side = side
        self.C = C
        self.max_iter = max_iter

    def _features(self, images: np.ndarray) -> np.ndarray:
        from gess.data.extra import match_images

        x = np.asarray(images)
        if x.dtype != np.uint8:
            x = np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)
        if x.ndim == 3:
            x = x[..., None]
        x = match_images(x, self.side, 1).reshape(len(x), -1).astype(np.float32)
        lo, hi = x.min(1, keepdims=True), x.max(1, keepdims=True)
        return (x - lo) / np.maximum(hi - lo, 1.0)

    def fit(self, images: np.ndarray, labels: np.ndarray) -> "DigitReader":
        from sklearn.linear_model import LogisticRegression

        self.model_ = LogisticRegression(C=self.C, max_iter=self.max_iter).fit(self._features(images), np.asarray(labels))
        return self

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.model_.predict(self._features(images))


def sklearn_digit_row(stimulus_id: str) -> int | None:
    """The row of scikit-learn's digits a simulated pool id (``digit7-0123``) names, else None."""
    head, _, row = str(stimulus_id).rpartition("-")
    return int(row) if head.startswith("digit") and row.isdigit() else None


def sklearn_digits_reader(exclude_ids=(), image_size: int = 32) -> DigitReader:
    """A reader trained on every scikit-learn digit but those ``exclude_ids`` name (the test stimuli)."""
    from sklearn.datasets import load_digits

    from gess.data.images import resize_images

    digits = load_digits()
    excluded = {sklearn_digit_row(s) for s in exclude_ids}
    rows = np.array([r for r in range(len(digits.target)) if r not in excluded])
    images = resize_images(np.rint(digits.images[rows] / 16.0 * 255).astype(np.uint8)[..., None], image_size)
    return DigitReader(side=16).fit(images, digits.target[rows])


def mnist_reader(path: str | Path, max_images: int = 20000, seed: int = 0) -> DigitReader:
    """A reader trained on (a seeded subset of) an MNIST ``.npz`` (``images``, ``labels``) at 28 px."""
    with np.load(path) as data:
        images, labels = data["images"], data["labels"]
    if len(images) > max_images:
        keep = np.random.default_rng(seed).choice(len(images), max_images, replace=False)
        images, labels = images[keep], labels[keep]
    return DigitReader(side=28, C=0.05).fit(images, labels)


def labelled_npz_reader(path: str | Path | None) -> DigitReader | None:
    """:func:`mnist_reader` on an extra-images ``.npz`` that holds ``labels`` beside its ``images``; None for any
    other source (a folder, an ``.npz`` without labels)."""
    if path is None or Path(path).suffix != ".npz" or not Path(path).is_file():
        return None
    with np.load(path) as data:
        if "labels" not in data.files or "images" not in data.files:
            return None
    return mnist_reader(path)


def label_digits(reader: DigitReader, images: np.ndarray, labels: np.ndarray, least_share: float = 0.5) -> dict | None:
    """The digit each dataset label stands for: the one ``reader`` reads most often among that label's images
    (the TRAINING stimuli: no test image enters). None when the labels are not digits the reader knows: a label
    whose most-read digit holds less than ``least_share`` of its images, or two labels on one digit."""
    labels = np.asarray(labels)
    read = reader.predict(images)
    mapping = {}
    for label in np.unique(labels):
        digits, counts = np.unique(read[labels == label], return_counts=True)
        if counts.max() < least_share * counts.sum():
            return None
        mapping[int(label)] = int(digits[counts.argmax()])
    return mapping if len(set(mapping.values())) == len(mapping) else None

