from __future__ import annotations

import numpy as np
import pytest
import torch

from gess.decoding import StructuralSpace
from gess.encoders import CLIPImageEncoder, EfficientNetLite0Encoder, get_encoder
from gess.errors import MissingWeightsError

from conftest import IMAGENET_SAMPLE, needs


def tiny_clip(tmp_path):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                           image_size=32, patch_size=8, projection_dim=16)
    model = CLIPVisionModelWithProjection(cfg)
    model.save_pretrained(tmp_path / "tiny-clip")
    return tmp_path / "tiny-clip"


def test_clip_from_local_directory(tmp_path):
    enc = get_encoder(str(tiny_clip(tmp_path)))
    assert isinstance(enc, CLIPImageEncoder) and enc.dim == 16
    imgs = np.random.default_rng(0).integers(0, 255, (5, 40, 40, 3), dtype=np.uint8)
    a = enc.encode(imgs)
    b = get_encoder(str(tmp_path / "tiny-clip"), batch_size=2).encode(imgs)
    assert a.shape == (5, 16) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)  # batching does not change results


def test_clip_gradients_flow(tmp_path):
    enc = get_encoder(str(tiny_clip(tmp_path)))
    x = torch.rand(2, 3, 48, 48, requires_grad=True)
    enc.encode_tensor(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_missing_clip_directory_names_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(MissingWeightsError, match="huggingface-cli download openai/clip-vit-large-patch14"):
        get_encoder("clip")


def test_efficientnet_real_weights_are_deterministic():
    enc = EfficientNetLite0Encoder()
    imgs = np.random.default_rng(0).integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)
    a, b = enc.encode(imgs), enc.encode(imgs)
    assert a.shape == (3, 1280) and np.array_equal(a, b)
    grey = enc.encode(imgs[..., :1])
    assert grey.shape == (3, 1280)


def test_efficientnet_missing_weights(tmp_path):
    with pytest.raises(MissingWeightsError, match="EfficientNet-Lite0"):
        EfficientNetLite0Encoder(weights_path=tmp_path / "nope.pth")


@needs(IMAGENET_SAMPLE)
def test_efficientnet_classifies_imagenet():
    """The shipped weights are the real ImageNet ones: most sample images are classified right."""
    from gess.data.images import load_image, list_images

    files = list_images(IMAGENET_SAMPLE)[::50]  # sorted by wnid = ImageNet class order
    classes = np.arange(0, 1000, 50)
    x = torch.from_numpy(np.stack([load_image(f) for f in files])).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        pred = EfficientNetLite0Encoder().classify(x).argmax(1).numpy()
    assert (pred == classes).mean() >= 0.7


def test_structural_space_blurs_and_scales():
    imgs = np.zeros((2, 28, 28, 1), np.uint8)
    imgs[:, 10:18, 10:18] = 255
    space = StructuralSpace(28, grey=True)
    assert np.isclose(space.radius, 15 * 28 / 768)
    t = space.targets(imgs)
    assert t.shape == (2, 28, 28, 1) and 0 <= t.min() and t.max() <= 1
    sharp = StructuralSpace(28, radius=0.0, grey=True).targets(imgs)
    assert np.abs(np.diff(t[0, :, :, 0], axis=1)).max() < np.abs(np.diff(sharp[0, :, :, 0], axis=1)).max()
