"""gess's NSD metric suite (protocol "mindeye") against MindEye's evaluation code path, on seeded random networks.

The reference values are computed here from the definitions in MindEye's evaluation notebooks (identical in
MindEye 1 and 2):
  MedARC-AI/fMRI-reconstruction-NSD, src/Reconstruction_Metrics.ipynb (its .py export at commit 195a3323), and
  MedARC-AI/MindEyeV2, src/final_evaluations.ipynb (commit 07761ff6).
What they do, step by step:
* ground truths and reconstructions (float tensors in [0, 1]) are first resized to 256 x 256 with
  ``transforms.Resize``. Their torchvision predates 0.17 (MindEye1's environment.yaml pins 0.14.1; MindEye2's
  notebook prints the "antialias default will change in v0.17" warning), so on tensors every such resize is
  bilinear WITHOUT anti-aliasing; torchvision >= 0.17 needs ``antialias=False`` to do the same, passed below;
* PixCorr: ``Resize(425, bilinear)``, flatten each image, ``np.corrcoef`` per pair, mean;
* SSIM: ``Resize(425, bilinear)``, ``skimage.color.rgb2gray``, ``structural_similarity(rec, gt,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)``, mean. Their extra
  ``multichannel=True`` is left out: the scikit-image here ignores it on 2-D images and spec/metrics.md defines
  the suite's SSIM as the 2-D window (MindEye's environment does not pin scikit-image);
* ``two_way_identification``: features of every reconstruction and every ground truth (``preprocess`` =
  Resize to the network's size + normalisation, ``create_feature_extractor`` node), ``r = np.corrcoef(reals,
  preds)[:n, n:]``, per reconstruction j the count of ``r[:, j] < r[j, j]``, divided by n - 1, averaged;
  AlexNet nodes features.4 / features.11 at 256, Inception avgpool at 342, CLIP image embedding at 224 with
  CLIP's normalisation (the float 256-px images resized bilinearly without anti-aliasing, like every resize
  there), all others ImageNet's;
* EffNet-B1 (avgpool, 255) and SwAV (avgpool, 224): ``scipy.spatial.distance.correlation`` per pair, mean.

The networks are small and random, shaped like torchvision's (gess's wrappers take any module with the node):
AlexNet's layer layout at a fraction of its width, and for Inception, EfficientNet and SwAV small convnets with an
``avgpool`` node; CLIP is a tiny random ``CLIPVisionModelWithProjection`` at 224 px. Only the protocol is under
test, not the weights (tests/test_evaluation.py checks the real architectures' nodes and shapes).
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.spatial.distance
import torch
from torch import nn
from torchvision import transforms

N = 8
IMAGENET = dict(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
CLIP = dict(mean=[0.48145466, 0.4578275, 0.40821073], std=[0.26862954, 0.26130258, 0.27577711])


class TinyAlexNet(nn.Module):
    """torchvision's AlexNet layout at a fraction of the width: ``features`` indexed as there (features.4 is the
    ReLU after conv 2, features.11 the ReLU after conv 5), then ``avgpool`` and a classifier."""

    def __init__(self, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(8, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2))
        self.avgpool = nn.AdaptiveAvgPool2d(6)
        self.classifier = nn.Linear(16 * 36, 10)

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class TinyConvNet(nn.Module):
    """torchvision-shaped: ``features`` then an ``avgpool`` node, then a head that the metrics never reach."""

    def __init__(self, seed: int, width: int = 12):
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(nn.Conv2d(3, width, 7, stride=4, padding=3), nn.ReLU(),
                                      nn.Conv2d(width, width, 3, stride=2, padding=1), nn.Tanh())
        self.avgpool = nn.AdaptiveAvgPool2d(3)
        self.fc = nn.Linear(width * 9, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))


@pytest.fixture(scope="module")
def case():
    """Random ground truths (300 px) and reconstructions (160 px) that partly resemble them, and the networks.

    Each reconstruction mixes its own stimulus (30 %), another one (70 %) and noise, so that the 2-way scores lie
    well inside (0.5, 1) and a change of protocol moves them."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    rng = np.random.default_rng(0)
    base = rng.random((N, 6, 6, 3))
    gt = np.clip(np.kron(base, np.ones((1, 50, 50, 1))) + 0.25 * rng.random((N, 300, 300, 3)), 0, 1)
    gt = np.rint(gt * 255).astype(np.uint8)
    small = torch.nn.functional.interpolate(torch.from_numpy(gt).permute(0, 3, 1, 2).float(), size=(160, 160),
                                            mode="bilinear", antialias=True).permute(0, 2, 3, 1).numpy() / 255
    rec = 0.3 * small + 0.7 * np.roll(small, 1, axis=0) + 0.4 * np.random.default_rng(1).normal(size=small.shape)
    rec = np.rint(np.clip(rec, 0, 1) * 255).astype(np.uint8)
    alexnet = TinyAlexNet(0).eval()
    nets = {"alexnet2": alexnet, "alexnet5": alexnet, "inception": TinyConvNet(1).eval(),
            "effnet": TinyConvNet(2).eval(), "swav": TinyConvNet(3).eval()}
    torch.manual_seed(0)
    clip = CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                                          num_attention_heads=4, image_size=224, patch_size=32,
                                                          projection_dim=16)).eval()
    return gt, rec, nets, clip


@pytest.fixture(scope="module")
def gess_result(case):
    from gess.encoders.clip import CLIPImageEncoder
    from gess.evaluation import evaluate

    gt, rec, nets, clip = case
    encoder = CLIPImageEncoder(model=clip, device="cpu")
    return evaluate(gt, rec, "mindeye", networks=nets, clip_encoder=encoder, weights_dir="/nonexistent")


def per_sample(result, name):
    return np.array([row[name] for row in result["per_sample"]])


# --- MindEye's code path, reproduced ---------------------------------------------------------------

def as_mindeye_tensors(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, 256, 256) in [0, 1], as MindEye's first ``transforms.Resize((256, 256))``."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    return transforms.Resize((256, 256), antialias=False)(x).float().clamp(0, 1)


def resize_to(size):
    return transforms.Resize(size, interpolation=transforms.InterpolationMode.BILINEAR, antialias=False)


def mindeye_pixcorr(gt, rec):
    pre = resize_to(425)
    g, r = pre(gt).reshape(len(gt), -1), pre(rec).reshape(len(rec), -1)
    return np.array([np.corrcoef(g[i].numpy(), r[i].numpy())[0][1] for i in range(len(gt))])


def mindeye_ssim(gt, rec):
    from skimage.color import rgb2gray
    from skimage.metrics import structural_similarity

    pre = resize_to(425)
    g = rgb2gray(pre(gt).permute(0, 2, 3, 1).numpy())
    r = rgb2gray(pre(rec).permute(0, 2, 3, 1).numpy())
    return np.array([structural_similarity(b, a, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                           data_range=1.0) for a, b in zip(g, r)])


@torch.no_grad()
def mindeye_features(images, model, size, norm, node=None):
    """``model(stack(preprocess(image) for image))``: per-image Resize(size) + Normalize, then the node's output."""
    pre = transforms.Compose([resize_to(size), transforms.Normalize(**norm)])
    out = model(torch.stack([pre(im) for im in images]))
    return (out if node is None else out[node]).float().flatten(1).numpy()


def mindeye_two_way(real_feats, pred_feats):
    """MindEye's ``two_way_identification(..., return_avg=False)``: per reconstruction, the share of the other
    ground truths whose correlation with it is below its own ground truth's."""
    n = len(real_feats)
    r = np.corrcoef(real_feats, pred_feats)[:n, n:]     # r[i, j] = corr(gt_i, rec_j)
    wins = (r < np.diag(r)).sum(0)                       # broadcast: r[i, j] < r[j, j]
    return wins / (n - 1)


def mindeye_correlation_distance(real_feats, pred_feats):
    return np.array([scipy.spatial.distance.correlation(real_feats[i], pred_feats[i]) for i in range(len(real_feats))])


def feature_extractor(model, *nodes):
    from torchvision.models.feature_extraction import create_feature_extractor

    return create_feature_extractor(model, return_nodes=list(nodes)).eval()


# --- the tests -----------------------------------------------------------------------------------

def test_pixcorr_and_ssim(case, gess_result):
    gt, rec, _, _ = case
    g, r = as_mindeye_tensors(gt), as_mindeye_tensors(rec)
    np.testing.assert_allclose(per_sample(gess_result, "pixcorr"), mindeye_pixcorr(g, r), rtol=0, atol=1e-6)
    np.testing.assert_allclose(per_sample(gess_result, "ssim"), mindeye_ssim(g, r), rtol=0, atol=1e-6)
    assert 0.1 < gess_result["metrics"]["pixcorr"] < 0.5 and 0.02 < gess_result["metrics"]["ssim"] < 0.5


def test_alexnet_and_inception_two_way(case, gess_result):
    gt, rec, nets, _ = case
    g, r = as_mindeye_tensors(gt), as_mindeye_tensors(rec)
    alex = feature_extractor(nets["alexnet2"], "features.4", "features.11")  # one extractor, two nodes, as MindEye
    for name, node in (("alexnet2", "features.4"), ("alexnet5", "features.11")):
        expected = mindeye_two_way(mindeye_features(g, alex, 256, IMAGENET, node), mindeye_features(r, alex, 256, IMAGENET, node))
        np.testing.assert_array_equal(per_sample(gess_result, name), expected, err_msg=name)
        assert gess_result["metrics"][name] == pytest.approx(expected.mean(), abs=1e-12)
    inception = feature_extractor(nets["inception"], "avgpool")
    expected = mindeye_two_way(mindeye_features(g, inception, 342, IMAGENET, "avgpool"),
                               mindeye_features(r, inception, 342, IMAGENET, "avgpool"))
    np.testing.assert_array_equal(per_sample(gess_result, "inception"), expected)
    # not trivially perfect or at chance everywhere: the comparison can tell protocols apart
    values = [gess_result["metrics"][k] for k in ("alexnet2", "alexnet5", "inception")]
    assert all(0.6 < v < 0.95 for v in values), values


def test_effnet_and_swav_correlation_distance(case, gess_result):
    gt, rec, nets, _ = case
    g, r = as_mindeye_tensors(gt), as_mindeye_tensors(rec)
    for name, size in (("effnet", 255), ("swav", 224)):
        model = feature_extractor(nets[name], "avgpool")
        expected = mindeye_correlation_distance(mindeye_features(g, model, size, IMAGENET, "avgpool"),
                                                mindeye_features(r, model, size, IMAGENET, "avgpool"))
        np.testing.assert_allclose(per_sample(gess_result, name), expected, rtol=0, atol=1e-6, err_msg=name)
        if name == "effnet":  # the input size matters at this tolerance: the test would see a wrong one
            other = mindeye_correlation_distance(mindeye_features(g, model, 224, IMAGENET, "avgpool"),
                                                 mindeye_features(r, model, 224, IMAGENET, "avgpool"))
            assert np.abs(other - expected).max() > 1e-4


@torch.no_grad()
def mindeye_clip_features(images, clip):
    """``clip_model.encode_image(preprocess(x))`` with preprocess = Resize(224, bilinear) + CLIP normalisation:
    the projected image embedding, which is ``image_embeds`` of transformers' CLIPVisionModelWithProjection."""
    pre = transforms.Compose([resize_to(224), transforms.Normalize(**CLIP)])
    return clip(pixel_values=torch.stack([pre(im) for im in images])).image_embeds.float().numpy()


def encoder_style_clip_features(images, clip):
    """What gess's CLIP *encoder* computes (and what the suite's "clip" metric used to be fed before it followed
    MindEye): the images rounded to uint8, resized to 224 bicubic with anti-aliasing, CLIP-normalised, ``image_embeds``."""
    x = torch.from_numpy(np.rint(images.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)).permute(0, 3, 1, 2)
    x = torch.nn.functional.interpolate(x.float() / 255, size=(224, 224), mode="bicubic", antialias=True)
    with torch.no_grad():
        return clip(pixel_values=transforms.Normalize(**CLIP)(x)).image_embeds.float().numpy()


def test_clip_two_way_is_mindeyes(case, gess_result):
    """The 256-px float images, resized bilinearly to 224 without anti-aliasing, CLIP-normalised, the projected
    embedding, the all-pairs count: MindEye's path exactly."""
    gt, rec, _, clip = case
    g, r = as_mindeye_tensors(gt), as_mindeye_tensors(rec)
    expected = mindeye_two_way(mindeye_clip_features(g, clip), mindeye_clip_features(r, clip))
    np.testing.assert_array_equal(per_sample(gess_result, "clip"), expected)
    assert gess_result["metrics"]["clip"] == pytest.approx(expected.mean(), abs=1e-12)
    # the case tells the two preprocessings apart: the encoder's own (uint8, bicubic, anti-aliased) moves a score
    encoder_style = mindeye_two_way(encoder_style_clip_features(g, clip), encoder_style_clip_features(r, clip))
    assert not np.array_equal(encoder_style, expected)
    assert np.abs(encoder_style_clip_features(g, clip) - mindeye_clip_features(g, clip)).max() > 1e-3


def test_clip_metric_preprocessing_is_recorded(gess_result):
    networks = gess_result["protocol_details"]["networks"]
    assert networks["input"]["clip"] == 224
    assert all(w in networks["clip_preprocessing"] for w in ("bilinear", "no antialiasing", "float", "image_embeds"))


def test_the_encoder_keeps_its_own_preprocessing(case):
    """The paper protocol's embedding 2-way and the decoders use the encoder as it is: uint8 in, bicubic
    anti-aliased resize; only the suite's "clip" metric takes MindEye's path."""
    from gess.encoders.clip import CLIPImageEncoder

    gt, _, _, clip = case
    encoder = CLIPImageEncoder(model=clip, device="cpu")
    x = torch.from_numpy(gt).permute(0, 3, 1, 2).float() / 255
    np.testing.assert_allclose(encoder.encode(gt), encoder_style_clip_features(x, clip), rtol=0, atol=1e-5)
    np.testing.assert_allclose(encoder.encode_suite(as_mindeye_tensors(gt)),
                               mindeye_clip_features(as_mindeye_tensors(gt), clip), rtol=0, atol=1e-5)
