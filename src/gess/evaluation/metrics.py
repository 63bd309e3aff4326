"""The protocols of docs/evaluation.md: the GESS paper's, MindEye's suite and Brain-Diffuser's variant."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from gess.evaluation.identification import distinct_stimuli, paired_correlation, two_way_all_pairs, two_way_random
from gess.evaluation.networks import SUITE, load_network, unavailable_reason

PROTOCOLS = ("paper", "mindeye", "brain-diffuser")


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 or float [0, 1] images (N, H, W, C) -> float (N, 3, H, W) in [0, 1]."""
    x = torch.as_tensor(np.ascontiguousarray(images))
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    if x.ndim == 3:
        x = x[..., None]
    x = x.permute(0, 3, 1, 2)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def pixcorr(gt: torch.Tensor, rec: torch.Tensor) -> np.ndarray:
    """Per-sample Pearson r over all flattened RGB values (inputs already at the protocol's size)."""
    return paired_correlation(gt.flatten(1).numpy(), rec.flatten(1).numpy())


def ssim(gt: torch.Tensor, rec: torch.Tensor) -> np.ndarray:
    """Per-sample SSIM on grey images: Gaussian weights, sigma 1.5, no sample covariance, data range 1."""
    from skimage.color import rgb2gray
    from skimage.metrics import structural_similarity

    g = rgb2gray(gt.permute(0, 2, 3, 1).numpy())
    r = rgb2gray(rec.permute(0, 2, 3, 1).numpy())
    return np.array([structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
                     for a, b in zip(g, r)])


def spectral_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SAM between every flattened row of ``a`` and of ``b`` (radians): arccos of the cosine."""
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    cos = (a @ b.T) / np.maximum(np.linalg.norm(a, axis=1)[:, None] * np.linalg.norm(b, axis=1)[None], 1e-12)
    return np.arccos(np.clip(cos, -1.0, 1.0))


def rmse_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    d2 = (a**2).sum(1)[:, None] + (b**2).sum(1)[None] - 2 * a @ b.T
    return np.sqrt(np.maximum(d2, 0) / a.shape[1])


def cosine_distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return 1.0 - a @ b.T


def correlation_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """scipy's correlation distance between paired rows."""
    return 1.0 - paired_correlation(a, b)


def _embed(encoder, images: torch.Tensor) -> np.ndarray:
    """Encoder features of [0, 1] images, cached by content (ground truths recur across methods)."""
    from gess.cache import cached_array, fingerprint

    pixels = np.rint(images.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    return cached_array("evaluation", fingerprint(pixels, encoder.spec().to_dict()), lambda: encoder.encode(pixels))


def evaluate(ground_truth: np.ndarray, reconstructions: np.ndarray, protocol: str = "mindeye", encoder=None,
             weights_dir=None, trials: int = 10, seed: int = 0, networks: dict | None = None, clip_encoder=None) -> dict:
    """All metrics of a protocol, with per-sample values.

    Parameters
    ----------
    ground_truth, reconstructions : (N, H, W, C) images, paired by row.
    encoder : the embedding encoder for ``twoway_embedding`` (CLIP ViT-L/14 when
        ``clip_encoder`` is given, which also enables the suite's CLIP metric).
    networks : {name: model} overrides of the suite's networks (tests pass tiny random ones).

    Returns
    -------
    dict with "protocol", "n", "metrics", "per_sample" (list of dicts without ids), "unavailable", "embedding_encoder".
    """
    if protocol not in PROTOCOLS:
        from gess.errors import GessInputError

        raise GessInputError(None, "protocol", f"one of {', '.join(PROTOCOLS)}", repr(protocol))
    gt, rec = to_tensor(ground_truth), to_tensor(reconstructions)
    n = len(gt)
    # identical ground-truth images (one stimulus under two ids) are never each other's "other" candidate
    distinct = distinct_stimuli(np.asarray(ground_truth))
    distinct = None if distinct.sum() == n * (n - 1) else distinct
    per: dict[str, np.ndarray] = {}
    unavailable: dict[str, str] = {}

    # pixel-level: the suite resizes both to 256 then 425; Brain-Diffuser goes to 425 from the original
    if protocol == "brain-diffuser":
        g425, r425 = resize(gt, 425), resize(rec, 425)
    else:
        g256, r256 = resize(gt, 256), resize(rec, 256)
        g425, r425 = resize(g256, 425), resize(r256, 425)
    per["pixcorr"] = pixcorr(g425, r425)
    per["ssim"] = ssim(g425, r425)

    # the paper's random-draw 2-way identification (at the ground truth's resolution)
    side = gt.shape[-1]
    r_gt_res = resize(rec, side).numpy()
    per["twoway_rmse"] = two_way_random(rmse_matrix(r_gt_res, gt.numpy()), trials, seed, distinct)
    per["twoway_sam"] = two_way_random(spectral_angle(r_gt_res, gt.numpy()), trials, seed, distinct)
    emb_encoder = clip_encoder or encoder
    if emb_encoder is not None:
        eg, er = _embed(emb_encoder, gt), _embed(emb_encoder, rec)
        per["twoway_embedding"] = two_way_random(cosine_distance_matrix(er, eg), trials, seed, distinct)
    else:
        unavailable["twoway_embedding"] = "no embedding encoder given"

    if protocol in ("mindeye", "brain-diffuser"):
        base_gt, base_rec = (gt, rec) if protocol == "brain-diffuser" else (g256, r256)
        for name, net in SUITE.items():
            try:
                model = load_network(net, weights_dir, model=(networks or {}).get(name))
            except FileNotFoundError:
                unavailable[name] = unavailable_reason(net, weights_dir)
                continue
            size = 224 if protocol == "brain-diffuser" else None
            fg, fr = net.features(model, base_gt, size), net.features(model, base_rec, size)
            per[name] = two_way_all_pairs(fg, fr, distinct) if net.kind == "twoway" else correlation_distance(fg, fr)
        if clip_encoder is not None:
            cg, cr = _embed(clip_encoder, base_gt), _embed(clip_encoder, base_rec)
            per["clip"] = two_way_all_pairs(cg, cr, distinct)
        else:
            unavailable["clip"] = ("CLIP ViT-L/14 weights not found in the Hugging Face cache; "
                                   "pass --clip DIR (a saved CLIPVisionModelWithProjection)")
    metrics = {k: float(np.nanmean(v)) for k, v in per.items()}
    per_sample = [{k: float(v[i]) for k, v in per.items()} for i in range(n)]
    return {"protocol": protocol, "n": n, "metrics": metrics, "per_sample": per_sample, "unavailable": unavailable,
            "embedding_encoder": getattr(emb_encoder, "name", None)}
