"""The protocols of docs/evaluation.md: the GESS paper's, MindEye's suite (1 and 2) and Brain-Diffuser's variant.

The built-in metrics are registered here the way any metric is (:mod:`gess.evaluation.registry`);
:func:`evaluate` computes every registered metric of a protocol.
"""
from __future__ import annotations

import numpy as np
import torch

from gess.correlation import paired_correlation
from gess.encoders.clip import SUITE_PREPROCESSING as CLIP_SUITE_PREPROCESSING
from gess.evaluation.identification import distinct_stimuli, two_way_all_pairs, two_way_random
from gess.evaluation.networks import SUITE, MetricNetwork, load_network, unavailable_reason
from gess.evaluation.registry import (PROTOCOL_IMAGES, PROTOCOLS, SSIM_READINGS, Metric, MetricContext, MetricUnavailable,
                                      metrics_for, register_metric, resize, to_tensor)

__all__ = ["PROTOCOLS", "evaluate", "protocol_details", "pixcorr", "ssim", "spectral_angle", "rmse_matrix", "cosine_distance_matrix",
           "correlation_distance", "resize", "to_tensor"]


def pixcorr(gt: torch.Tensor, rec: torch.Tensor) -> np.ndarray:
    """Per-sample Pearson r over all flattened RGB values (inputs already at the protocol's size)."""
    return paired_correlation(gt.flatten(1).numpy(), rec.flatten(1).numpy())


def ssim(gt: torch.Tensor, rec: torch.Tensor, reading: str = "2d") -> np.ndarray:
    """Per-sample SSIM on grey images: Gaussian weights, sigma 1.5, no sample covariance, data range 1.

    ``reading`` (:data:`~gess.evaluation.registry.SSIM_READINGS`): ``"2d"``, the suite's 2-D window;
    ``"columns"``, what scikit-image 0.17.2 (pinned by Brain-Diffuser) computes for ``multichannel=True``
    on a grey (H, W) image: the last axis taken for channels, so a 1-D window down each column, in
    float64, the columns averaged; today's ``channel_axis=-1`` on the 2-D array.
    """
    from skimage.color import rgb2gray
    from skimage.metrics import structural_similarity

    if reading not in SSIM_READINGS:
        raise ValueError(f"SSIM reading must be one of {', '.join(SSIM_READINGS)}, got {reading!r}")
    g = rgb2gray(gt.permute(0, 2, 3, 1).numpy())
    r = rgb2gray(rec.permute(0, 2, 3, 1).numpy())
    if reading == "columns":
        g, r = g.astype(np.float64), r.astype(np.float64)  # 0.17.2 filtered in float64 whatever the input
    columns = {"channel_axis": -1} if reading == "columns" else {}
    return np.array([structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                           data_range=1.0, **columns)
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


# --- the built-in metrics -------------------------------------------------------------------------

def _pixcorr(ctx: MetricContext) -> np.ndarray:
    return pixcorr(*ctx.pixel_pair())


def _ssim(ctx: MetricContext) -> np.ndarray:
    return ssim(*ctx.pixel_pair(), ctx.images.ssim)


def _twoway_pixels(distance):
    """The paper's random-draw 2-way identification by ``distance`` at the ground truth's resolution."""
    def compute(ctx: MetricContext) -> np.ndarray:
        rec = ctx.reconstructions_at(ctx.ground_truth.shape[-1]).numpy()
        return two_way_random(distance(rec, ctx.ground_truth.numpy()), ctx.trials, ctx.seed, ctx.distinct)
    return compute


def _twoway_embedding(ctx: MetricContext) -> np.ndarray:
    if ctx.encoder is None:
        raise MetricUnavailable("no embedding encoder given")
    eg, er = ctx.embed(ctx.encoder, ctx.ground_truth), ctx.embed(ctx.encoder, ctx.reconstructions)
    return two_way_random(cosine_distance_matrix(er, eg), ctx.trials, ctx.seed, ctx.distinct)


def _suite_network(net: MetricNetwork):
    """A suite network's metric: all-pairs 2-way identification or correlation distance of its features."""
    def compute(ctx: MetricContext) -> np.ndarray:
        try:
            model = load_network(net, ctx.weights_dir, model=ctx.networks.get(net.name))
        except FileNotFoundError:
            raise MetricUnavailable(unavailable_reason(net, ctx.weights_dir)) from None
        gt, rec = ctx.network_pair()
        size = ctx.images.network_input
        fg, fr = net.features(model, gt, size), net.features(model, rec, size)
        return two_way_all_pairs(fg, fr, ctx.distinct) if net.kind == "twoway" else correlation_distance(fg, fr)
    return compute


def _clip(ctx: MetricContext) -> np.ndarray:
    if ctx.clip_encoder is None:
        raise MetricUnavailable("CLIP ViT-L/14 weights not found in the Hugging Face cache; "
                                "pass --clip DIR (a saved CLIPVisionModelWithProjection)")
    gt, rec = ctx.network_pair()  # float, as the protocol hands them to the networks; MindEye's CLIP preprocessing
    return two_way_all_pairs(ctx.embed_suite_clip(gt), ctx.embed_suite_clip(rec), ctx.distinct)


_SUITE_PROTOCOLS = ("mindeye", "mindeye2", "brain-diffuser")


def _suite_metric(name: str, definition: str) -> Metric:
    """The metric of ``SUITE[name]``; its direction follows the network's kind."""
    net = SUITE[name]
    return Metric(name, _suite_network(net), net.kind == "twoway", definition, _SUITE_PROTOCOLS)


register_metric(Metric("pixcorr", _pixcorr, True,
                       "Pearson correlation of the pixels of reconstruction and stimulus (1 = identical)"))
register_metric(Metric("ssim", _ssim, True, "structural similarity of reconstruction and stimulus, grey (1 = identical)"))
register_metric(Metric("twoway_rmse", _twoway_pixels(rmse_matrix), True,
                       "2-way identification by pixel RMSE: the share of random draws of another test stimulus in "
                       "which the reconstruction is closer to its own stimulus (0.5 = chance, 1 = always)"))
register_metric(Metric("twoway_sam", _twoway_pixels(spectral_angle), True,
                       "2-way identification as above, by the spectral angle (SAM) between the flattened pixel vectors"))
register_metric(Metric("twoway_embedding", _twoway_embedding, True,
                       "2-way identification as above, by the cosine distance of image embeddings ({encoder})"))
register_metric(_suite_metric("alexnet2", "all-pairs 2-way identification on AlexNet layer-2 features"))
register_metric(_suite_metric("alexnet5", "all-pairs 2-way identification on AlexNet layer-5 features"))
register_metric(_suite_metric("inception", "all-pairs 2-way identification on Inception-v3 features"))
register_metric(_suite_metric("effnet", "correlation distance of EfficientNet-B1 features (0 = identical)"))
register_metric(_suite_metric("swav", "correlation distance of SwAV ResNet-50 features (0 = identical)"))
register_metric(Metric("clip", _clip, True, "all-pairs 2-way identification on CLIP ViT-L/14 image embeddings",
                       _SUITE_PROTOCOLS))


RESIZE = "bilinear (torch.nn.functional.interpolate, align_corners=False, no antialiasing), each size in turn"


def protocol_details(protocol: str) -> dict:
    """What a protocol computes, for the metrics file: the resizes each image goes through, the SSIM reading,
    the networks' input sides (written from :data:`~gess.evaluation.registry.PROTOCOL_IMAGES`, not by hand)."""
    images = PROTOCOL_IMAGES[protocol]
    suite = protocol in _SUITE_PROTOCOLS
    details = {
        "reproduces": images.reproduces,
        "ground_truth_size": images.ground_truth_size,  # None: the ground truth as the dataset gives it
        "resize": RESIZE,
        "pixel_metrics": {"ground_truth_resizes": list(images.ground_truth_chain(images.pixels)),
                          "reconstruction_resizes": list(images.pixels),
                          "pixcorr": "Pearson r over all flattened RGB values",
                          "ssim": f"grey (rgb2gray), Gaussian weights, sigma 1.5, use_sample_covariance False, "
                                  f"data_range 1.0; {SSIM_READINGS[images.ssim]}",
                          "ssim_reading": images.ssim},
    }
    if suite:
        inputs = {name: images.network_input or net.input_size for name, net in SUITE.items()}
        details["networks"] = {"ground_truth_resizes": list(images.ground_truth_chain(images.networks)),
                               "reconstruction_resizes": list(images.networks),
                               "input": {**inputs, "clip": images.network_input or 224},
                               "clip_preprocessing": CLIP_SUITE_PREPROCESSING,
                               "identification": "all pairs"}
    else:
        details["identification"] = ("random draws of another test stimulus (trials per sample, seeded); RMSE and "
                                     "SAM on pixels at the ground truth's resolution, embeddings of the images as given "
                                     "(rounded to uint8, the encoder's own preprocessing: for CLIP a bicubic "
                                     "anti-aliased resize to 224 and CLIP normalisation)")
    return details


def evaluate(ground_truth: np.ndarray, reconstructions: np.ndarray, protocol: str = "mindeye", encoder=None,
             weights_dir=None, trials: int = 10, seed: int = 0, networks: dict | None = None, clip_encoder=None) -> dict:
    """Every registered metric of a protocol, with per-sample values.

    Parameters
    ----------
    ground_truth, reconstructions : (N, H, W, C) images, paired by row.
    encoder : the embedding encoder for ``twoway_embedding`` (CLIP ViT-L/14 when
        ``clip_encoder`` is given, which also enables the suite's CLIP metric).
    networks : {name: model} overrides of the suite's networks (tests pass tiny random ones).

    Returns
    -------
    dict with "protocol", "protocol_details" (:func:`protocol_details`: what exactly was computed), "n", "metrics",
    "per_sample" (list of dicts without ids), "unavailable", "embedding_encoder".
    """
    if protocol not in PROTOCOLS:
        from gess.errors import GessInputError

        raise GessInputError(None, "protocol", f"one of {', '.join(PROTOCOLS)}", repr(protocol))
    gt = to_tensor(ground_truth)
    n = len(gt)
    # identical ground-truth images (one stimulus under two ids) are never each other's "other" candidate
    distinct = distinct_stimuli(np.asarray(ground_truth))
    ctx = MetricContext(protocol, gt, to_tensor(reconstructions), None if distinct.sum() == n * (n - 1) else distinct,
                        trials, seed, clip_encoder or encoder, clip_encoder, dict(networks or {}), weights_dir)
    per: dict[str, np.ndarray] = {}
    unavailable: dict[str, str] = {}
    for metric in metrics_for(protocol):
        try:
            values = np.asarray(metric.compute(ctx), np.float64)
        except MetricUnavailable as why:
            unavailable[metric.name] = str(why)
            continue
        if values.shape != (n,):
            raise ValueError(f"metric {metric.name!r} returned shape {values.shape}, expected ({n},): one value per sample")
        per[metric.name] = values
    metrics = {k: float(np.nanmean(v)) for k, v in per.items()}
    per_sample = [{k: float(v[i]) for k, v in per.items()} for i in range(n)]
    return {"protocol": protocol, "protocol_details": protocol_details(protocol), "n": n, "metrics": metrics, "per_sample": per_sample, "unavailable": unavailable,
            "embedding_encoder": getattr(ctx.encoder, "name", None)}
