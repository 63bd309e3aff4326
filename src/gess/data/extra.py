"""Extra images without fMRI: the training pool of a prior, the unpaired images of a self-supervised M_s.

``--extra-images`` takes a folder of images or an ``.npz`` holding an ``images`` array
((n, H, W) or (n, H, W, 1|3), uint8 or floats in [0, 1]). Extra images must never
contain a test stimulus: :func:`check_no_test_stimuli` finds exact and near-exact
copies (Pearson correlation of the centred grey pixels above 0.95, the rule that
took digit69's test stimuli out of ``mnist_minus_digit69_test.npz``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from gess.correlation import standardized_rows
from gess.errors import GessInputError

NEAR_COPY_CORRELATION = 0.95


def load_extra_images(path: str | Path) -> np.ndarray:
    """uint8 images (n, H, W, C) of a folder or of an ``.npz``'s ``images`` array."""
    from gess.data.dataset import validate_images
    from gess.data.images import load_image_folder

    path = Path(path)
    if path.is_dir():
        images = load_image_folder(path)[0]
        return images if not _all_grey(images) else images[..., :1]
    if path.suffix.lower() != ".npz":
        raise GessInputError(path, None, "a folder of images or an .npz with an 'images' array", "neither")
    if not path.is_file():
        raise GessInputError(path, None, "an existing .npz file", "no such file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "images" not in archive.files:
                raise GessInputError(path, "images", "an 'images' array", f"arrays {sorted(archive.files)}")
            images = archive["images"]
    except (OSError, ValueError) as exc:
        raise GessInputError(path, None, "a readable .npz", f"unreadable ({exc})") from None
    if len(images) == 0:
        raise GessInputError(path, "images", "at least one image", "none")
    return validate_images(images, path, "images")


def _all_grey(images: np.ndarray) -> bool:
    return images.shape[-1] == 3 and bool((images[..., :1] == images).all())


def match_images(images: np.ndarray, side: int, channels: int) -> np.ndarray:
    """uint8 images converted to ``side`` x ``side`` and 1 or 3 channels (to join another set)."""
    from gess.data.images import center_crop, resize_images, to_rgb

    images = resize_images(center_crop(images), side)
    if channels == 1 and images.shape[-1] == 3:
        return np.rint(images.mean(-1, keepdims=True)).astype(np.uint8)
    return to_rgb(images) if channels == 3 else images


def _normalised_pixels(images: np.ndarray, side: int) -> np.ndarray:
    """Grey pixels at ``side``, centred and scaled to unit norm per image (rows of a correlation)."""
    return standardized_rows(match_images(images, side, 1), np.float32)


def near_copies(candidates: np.ndarray, references: np.ndarray, threshold: float = NEAR_COPY_CORRELATION,
                chunk: int = 8192) -> list[tuple[int, int, float]]:
    """(candidate index, reference index, correlation) of every pair correlating above ``threshold``.

    Images are compared grey at the smaller of the two sides (at most 32 px), so a
    resized or re-encoded copy is still found.
    """
    side = min(candidates.shape[1], references.shape[1], 32)
    refs = _normalised_pixels(references, side)
    found = []
    for start in range(0, len(candidates), chunk):
        corr = _normalised_pixels(candidates[start:start + chunk], side) @ refs.T
        for i, j in zip(*np.nonzero(corr > threshold)):
            found.append((start + int(i), int(j), float(corr[i, j])))
    return found


def check_no_test_stimuli(extra: np.ndarray, test_images: np.ndarray, test_ids, source: str | Path | None) -> None:
    """Refuse (bad input, exit 2) an extra image set holding a copy of any test stimulus."""
    found = near_copies(extra, test_images)
    if found:
        index, ref, corr = found[0]
        raise GessInputError(source, "images", "no test stimulus of the dataset (training on the test set is refused)",
                             f"{len({f[1] for f in found})} test stimuli among them, e.g. image {index} is a copy of "
                             f"test stimulus {test_ids[ref]} (correlation {corr:.3f})")


def without_copies(images: np.ndarray, references: np.ndarray) -> np.ndarray:
    """``images`` less every near copy of a reference (a held-out fold's stimuli, for validation)."""
    drop = {i for i, _, _ in near_copies(images, references)}
    return images if not drop else images[[i for i in range(len(images)) if i not in drop]]


def subset(images: np.ndarray, limit: int | None, seed: int = 0) -> np.ndarray:
    """At most ``limit`` of ``images``: a seeded random choice, in their original order."""
    if limit is None or len(images) <= limit:
        return images
    keep = np.sort(np.random.default_rng(seed).choice(len(images), limit, replace=False))
    return images[keep]


class ExtraImages:
    """Extra images read and checked once, at the edge, then passed on as one object.

    ``images`` : uint8 (n, H, W, C); ``source`` : the file or folder they came from
    (None for an array given in memory), named in errors and recorded in provenance.
    """

    def __init__(self, images: np.ndarray, source: str | Path | None = None):
        self.images = images
        self.source = None if source is None else str(source)
        self._clean_for: set[str] = set()  # fingerprints of the test sets already checked

    @classmethod
    def read(cls, path: str | Path) -> "ExtraImages":
        """A folder of images or an ``.npz`` with an ``images`` array (:func:`load_extra_images`)."""
        return cls(load_extra_images(path), path)

    @classmethod
    def coerce(cls, value: "ExtraImages | np.ndarray | str | Path | None") -> "ExtraImages | None":
        """``value`` as extra images: read when a path, wrapped when an array, kept when already read."""
        if value is None or isinstance(value, cls):
            return value
        if isinstance(value, (str, Path)):
            return cls.read(value)
        from gess.data.dataset import validate_images

        return cls(validate_images(np.asarray(value), None, "extra images"))

    def __len__(self) -> int:
        return len(self.images)

    def refuse_test_stimuli(self, dataset) -> "ExtraImages":
        """Refuse (bad input naming the source) a set holding a copy of one of ``dataset``'s test stimuli."""
        from gess.cache import fingerprint

        key = fingerprint(dataset.test.images)
        if key not in self._clean_for:
            check_no_test_stimuli(self.images, dataset.test.images, dataset.test.stimulus_ids, self.source)
            self._clean_for.add(key)
        return self

    def without_copies_of(self, references: np.ndarray) -> "ExtraImages":
        """These images less every near copy of ``references`` (a held-out fold's stimuli)."""
        return ExtraImages(without_copies(self.images, references), self.source)

    def matched(self, side: int, channels: int, limit: int | None = None, seed: int = 0) -> np.ndarray:
        """At most ``limit`` of the images (seeded), at ``side`` px with ``channels`` channels."""
        return match_images(subset(self.images, limit, seed), side, channels)
