"""Semantic features of images, cached by content and encoder, shared out over launched processes."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from gess.cache import cache_dir, cached_array, fingerprint
from gess.device import resolve_device
from gess.encoders import ImageEncoder, get_encoder
from gess.encoders.features import semantic_features
from gess.io import save_npz
from gess.parallel import Shard, current_shard


@lru_cache(maxsize=4)
def _encoder(spec, device: str) -> ImageEncoder:
    return get_encoder(spec, device=device)


def encoder_of(spec, device: str | None = None) -> ImageEncoder:
    """The encoder a stored :class:`~gess.encoders.EncoderSpec` names, built once per process and device."""
    return _encoder(spec, resolve_device(device))


def encode_images(encoder: ImageEncoder, images: np.ndarray, use_cache: bool = True) -> np.ndarray:
    """Semantic features of uint8 images, cached by content and encoder.

    Under a launcher every process encodes its share of the encoder's global batches (the
    same batches whatever the number of processes, so the same numbers); the main process
    joins the shares into the cache entry, which every process then reads.
    """
    key = fingerprint(images, encoder.spec().to_dict())
    shard = current_shard()
    if shard.count == 1 or not use_cache:
        return cached_array("semantic", key, lambda: semantic_features(encoder, images), enabled=use_cache)
    return _encode_sharded(encoder, images, key, shard)


def _encode_sharded(encoder: ImageEncoder, images: np.ndarray, key: str, shard: Shard) -> np.ndarray:
    folder = cache_dir() / "semantic"
    whole = folder / f"{key}.npz"
    if not whole.is_file():
        _encode_my_batches(encoder, images, folder / f"{key}.part{shard.index}of{shard.count}.npz", shard)
        shard.wait()
        if shard.is_main and not whole.is_file():
            _join_parts(folder, key, shard.count, len(images), whole)
        shard.wait()
    with np.load(whole) as z:
        return z["array"]


def _encode_my_batches(encoder: ImageEncoder, images: np.ndarray, part, shard: Shard) -> None:
    size = encoder.batch_size
    batches = [np.arange(i, min(i + size, len(images))) for i in range(0, len(images), size)]
    mine = shard.mine(list(range(len(batches))))
    if mine and not part.is_file():
        rows = np.concatenate([batches[b] for b in mine])
        save_npz(part, rows=rows, array=semantic_features(encoder, images[rows]))


def _join_parts(folder, key: str, count: int, n: int, whole) -> None:
    out = None
    for index in range(count):
        path = folder / f"{key}.part{index}of{count}.npz"
        if not path.is_file():
            continue
        with np.load(path) as z:
            out = np.empty((n, z["array"].shape[1]), np.float32) if out is None else out
            out[z["rows"]] = z["array"]
    save_npz(whole, array=out)
    for path in folder.glob(f"{key}.part*of{count}.npz"):
        path.unlink()
