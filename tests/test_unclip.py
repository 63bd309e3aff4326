"""The unCLIP backend end to end with tiny random components of the real classes."""
from __future__ import annotations

import numpy as np
import pytest
import torch


def tiny_unclip(embed_dim=16, cross_dim=24):
    from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, UNet2DConditionModel
    from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer

    from gess.generation.backends.unclip import UnCLIPBackend

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(16, 32), layers_per_block=1,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                                cross_attention_dim=cross_dim, attention_head_dim=4, norm_num_groups=8,
                                class_embed_type="projection", projection_class_embeddings_input_dim=2 * embed_dim)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), latent_channels=4, norm_num_groups=8)
    sched = DDIMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                          clip_sample=False, set_alpha_to_one=False, prediction_type="epsilon")
    return UnCLIPBackend(unet, vae, sched, StableUnCLIPImageNormalizer(embed_dim), DDPMScheduler(beta_schedule="squaredcos_cap_v2"),
                         torch.zeros(1, 5, cross_dim))


def save_tiny_unclip(directory):
    """The tiny components saved as a Stable unCLIP model directory (with a tiny tokenizer and text encoder)."""
    import json

    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    backend = tiny_unclip()
    for name in ("unet", "vae", "scheduler", "image_normalizer", "image_noising_scheduler"):
        getattr(backend, name).save_pretrained(directory / name)
    (directory / "tokenizer").mkdir()
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1} | {f"{c}</w>": 2 + i for i, c in enumerate("abcdefgh")}
    (directory / "tokenizer" / "vocab.json").write_text(json.dumps(vocab))
    (directory / "tokenizer" / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(str(directory / "tokenizer" / "vocab.json"), str(directory / "tokenizer" / "merges.txt"),
                  model_max_length=77).save_pretrained(directory / "tokenizer")
    torch.manual_seed(0)
    CLIPTextModel(CLIPTextConfig(vocab_size=len(vocab), hidden_size=24, intermediate_size=37, num_hidden_layers=1,
                                 num_attention_heads=2, max_position_embeddings=77, bos_token_id=0, eos_token_id=1,
                                 pad_token_id=1)).save_pretrained(directory / "text_encoder")
    (directory / "model_index.json").write_text(json.dumps({"_class_name": "StableUnCLIPImg2ImgPipeline"}))
    return directory


def test_unclip_backend_cs_and_gg_end_to_end(tmp_path):
    from gess.encoders import get_encoder
    from gess.generation import GGOptions, SamplingOptions, generate_images
    from test_encoders import tiny_clip

    backend = tiny_unclip()
    assert backend.image_size == 16 and backend.latent_shape() == (4, 8, 8)
    rng = np.random.default_rng(0)
    c = rng.normal(size=(2, 16)).astype(np.float32)
    s = rng.random((2, 12, 12, 3)).astype(np.float32)
    pi = np.array([0.3, 0.8], np.float32)
    plain = generate_images(backend, c, c, s, pi, "semantic", SamplingOptions(steps=3))
    cs = generate_images(backend, c, c, s, pi, "cs", SamplingOptions(steps=3))
    assert plain.shape == cs.shape == (2, 16, 16, 3) and not np.array_equal(plain, cs)
    zero = generate_images(backend, c, c, s, np.ones(2, np.float32), "cs", SamplingOptions(steps=3))  # pi_s = 0
    assert np.array_equal(zero, plain)
    enc = get_encoder(str(tiny_clip(tmp_path)))
    gg = generate_images(backend, c, c, s, pi, "gg", SamplingOptions(steps=2), encoder=enc, gg_options=GGOptions(encoder_size=32))
    assert gg.shape == (2, 16, 16, 3)


def test_unclip_rejects_other_embedding_sizes():
    from gess.errors import GessInputError

    with pytest.raises(GessInputError, match="16-d CLIP"):
        tiny_unclip().condition(np.zeros((1, 10), np.float32))


def test_unclip_embedding_noise_depends_on_the_sample_alone():
    """With noise_level > 0 a sample's conditioning is the same alone and in a batch of three (gess 0.1 drew one
    batch-shaped noise tensor from seed 0, so row 1 of a batch got other noise than the same sample alone)."""
    from gess.generation import SamplingOptions, generate_images

    backend = tiny_unclip()
    backend.noise_level = 500
    rng = np.random.default_rng(0)
    c = rng.normal(size=(3, 16)).astype(np.float32)
    for seeds in ([7, 8, 9], None):
        batch = backend.condition(c, c, seeds=seeds)
        alone = backend.condition(c[1:2], c[1:2], seeds=None if seeds is None else seeds[1:2])
        torch.testing.assert_close(alone[0], batch[1], rtol=0, atol=0)
    noised, clean = backend.condition(c, c, seeds=[7, 8, 9]), tiny_unclip().condition(c, c)
    assert not torch.allclose(noised[:, :16], clean[:, :16])          # the noise is there
    assert not torch.allclose(noised, backend.condition(c, c, seeds=[1, 2, 3]))  # and follows the seeds
    s = rng.random((3, 12, 12, 3)).astype(np.float32)
    pi = np.full(3, 0.5, np.float32)
    one = generate_images(backend, c, c, s, pi, "semantic", SamplingOptions(steps=2, batch_size=1), seeds=[7, 8, 9])
    three = generate_images(backend, c, c, s, pi, "semantic", SamplingOptions(steps=2, batch_size=3), seeds=[7, 8, 9])
    assert np.abs(one.astype(int) - three.astype(int)).max() <= 1  # float batching noise only


def test_unclip_missing_weights(tmp_path, monkeypatch):
    from gess.errors import MissingWeightsError
    from gess.generation.backends.unclip import UnCLIPBackend

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(MissingWeightsError, match="stable-diffusion-2-1-unclip-small"):
        UnCLIPBackend.from_pretrained()


def test_gg_with_unclip_encodes_with_the_decoders_encoder(tmp_path, monkeypatch):
    """gess 0.1 rebuilt GG's encoder from the generator's name: the hub CLIP, whatever the decoders were fitted with."""
    from gess import stages
    from gess.data import load_mat
    from gess.encoders import CLIPImageEncoder, get_encoder
    from gess.generation import GGOptions, SamplingOptions
    from test_encoders import tiny_clip

    from conftest import write_mat

    clip_dir = str(tiny_clip(tmp_path))
    data = tmp_path / "x.mat"
    write_mat(data, n_train=12, n_test=2, voxels=20, side=16, channels=3)
    dataset = load_mat(data)
    decoder = stages.fit(dataset, get_encoder(clip_dir), n_neighbors=3)
    assert decoder.encoder_.source == clip_dir
    monkeypatch.setattr(stages, "load_backend", lambda *a, **k: tiny_unclip())  # stages imports it at the top
    used = []
    real = CLIPImageEncoder.encode_tensor

    def spy(self, images):
        used.append(self.model_id)
        return real(self, images)

    monkeypatch.setattr(CLIPImageEncoder, "encode_tensor", spy)
    done = stages.reconstruct(decoder, dataset, tmp_path / "gg", "gg", "tests/tiny-unclip", sampling=SamplingOptions(steps=2),
                              gg=GGOptions(encoder_size=32, semantic_every=1), progress=False)
    assert done["generated"] == 2 and used and set(used) == {clip_dir}
