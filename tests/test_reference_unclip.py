"""gess's own unCLIP sampling loop against diffusers' ``StableUnCLIPImg2ImgPipeline`` on the same tiny random components.

Both are given the same UNet, VAE, DDIM scheduler settings, image normaliser, noise-level scheduler, tokenizer and
text encoder (the empty prompt), the same initial latents and the same image embeddings. The one known difference:
diffusers noises the image embedding even at noise level 0 (``add_noise`` at t = 0 mixes in sqrt(1 - alphas_cumprod[0])
= 0.64% of a Gaussian draw), gess uses the embedding as decoded. So:

* fed the pipeline's own (noised) conditioning, gess's loop reproduces the pipeline bit for bit;
* with gess's conditioning, the images agree to within one grey level of 255;
* at a noise level above 0 gess's conditioning is diffusers' ``noise_image_embeddings`` given gess's noise draw.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from test_unclip import save_tiny_unclip

STEPS = 3
GUIDANCE = 5.0
SEEDS = [11, 12, 13]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """(gess backend, diffusers pipeline) built from one tiny Stable unCLIP directory, sharing the UNet and VAE."""
    from diffusers import DDIMScheduler, StableUnCLIPImg2ImgPipeline
    from transformers import CLIPTextModel, CLIPTokenizer, CLIPVisionConfig, CLIPVisionModelWithProjection

    from gess.generation.backends.unclip import UnCLIPBackend

    directory = save_tiny_unclip(tmp_path_factory.mktemp("tiny-unclip"))
    backend = UnCLIPBackend.from_pretrained(str(directory), device="cpu")
    pipe = StableUnCLIPImg2ImgPipeline(
        # embeddings are passed in, so the image encoder never runs (the pipeline reads only its dtype)
        feature_extractor=None, image_encoder=CLIPVisionModelWithProjection(CLIPVisionConfig(
            hidden_size=8, intermediate_size=8, num_hidden_layers=1, num_attention_heads=2, image_size=16, patch_size=8,
            projection_dim=16)),
        image_normalizer=backend.image_normalizer, image_noising_scheduler=backend.image_noising_scheduler,
        tokenizer=CLIPTokenizer.from_pretrained(directory / "tokenizer"),
        text_encoder=CLIPTextModel.from_pretrained(directory / "text_encoder"),
        unet=backend.unet, vae=backend.vae,
        scheduler=DDIMScheduler.from_config(backend.scheduler.config))  # its own scheduler object, same settings
    pipe.set_progress_bar_config(disable=True)
    return backend, pipe


def embeddings(n=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 16)).astype(np.float32)


def run_pipeline(pipe, backend, c, generator_seed=123):
    """The pipeline from gess's initial latents: (images as float (N, H, W, 3) in [0, 1], its final latents)."""
    from gess.generation.sampling import initial_noise

    latents = initial_noise(SEEDS[:len(c)], backend.latent_shape(), device="cpu")
    final = {}
    with torch.no_grad():
        out = pipe(prompt=[""] * len(c), image_embeds=torch.from_numpy(c), latents=latents, num_inference_steps=STEPS,
                   guidance_scale=GUIDANCE, noise_level=0, eta=0.0, output_type="np",
                   generator=torch.Generator().manual_seed(generator_seed),
                   callback=lambda step, t, z: final.update(z=z.clone()), callback_steps=1)
    return out.images, final["z"]


def pipeline_conditioning(pipe, c, generator_seed=123):
    """What the pipeline conditions on at noise level 0: the embedding after its (noise level 0) noising."""
    with torch.no_grad():
        return pipe.noise_image_embeddings(torch.from_numpy(c), noise_level=0,
                                           generator=torch.Generator().manual_seed(generator_seed))


def test_empty_prompt_embeddings_match_the_pipelines(model):
    backend, pipe = model
    with torch.no_grad():
        ours_cond, _ = pipe.encode_prompt("", "cpu", 1, False)
    torch.testing.assert_close(backend.prompt_embeds, ours_cond, rtol=0, atol=0)


def test_loop_reproduces_the_pipeline_exactly_on_its_own_conditioning(model):
    from gess.generation.sampling import sample

    backend, pipe = model
    c = embeddings()
    cond = pipeline_conditioning(pipe, c)
    with torch.no_grad():
        ours = sample(backend, cond, SEEDS, steps=STEPS, guidance_scale=GUIDANCE)
    theirs_img, theirs = run_pipeline(pipe, backend, c)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    # and the decoded images, as gess writes them (uint8) and as the pipeline returns them (float in [0, 1])
    with torch.no_grad():
        ours_img = np.rint(backend.to_images(ours).clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    theirs_img = np.rint(theirs_img * 255).astype(np.uint8)
    assert ours_img.shape == theirs_img.shape == (3, 16, 16, 3)
    assert np.abs(ours_img.astype(int) - theirs_img.astype(int)).max() == 0


def test_generated_images_agree_with_the_pipeline_within_one_grey_level(model):
    from gess.generation import SamplingOptions, generate_images

    backend, pipe = model
    c = embeddings(seed=1)
    structure = np.zeros((3, 16, 16, 3), np.float32)
    ours = generate_images(backend, c, c, structure, np.ones(3, np.float32), "semantic",
                           SamplingOptions(steps=STEPS, guidance_scale=GUIDANCE), seeds=SEEDS)
    theirs = np.rint(run_pipeline(pipe, backend, c)[0] * 255).astype(int)
    assert ours.dtype == np.uint8 and ours.shape == theirs.shape
    assert np.abs(ours.astype(int) - theirs).max() <= 1
    # the difference is the pipeline's noise-level-0 noising of the embedding, and only that (about 0.6 %)
    ours_cond = backend.condition(c, c, seeds=SEEDS)
    theirs_cond = pipeline_conditioning(pipe, c)
    torch.testing.assert_close(ours_cond[:, 16:], theirs_cond[:, 16:], rtol=0, atol=0)  # the noise-level embedding
    shift = (ours_cond[:, :16] - theirs_cond[:, :16]).norm(dim=1) / ours_cond[:, :16].norm(dim=1)
    assert float(shift.max()) < 0.01 and float(shift.min()) > 0


@pytest.mark.parametrize("level", [100, 500])
def test_noised_conditioning_is_the_pipelines_given_the_same_noise(model, level):
    from gess.generation.backends.unclip import embedding_noise

    backend, pipe = model
    c = embeddings(seed=2)
    backend.noise_level = level
    try:
        ours = backend.condition(c, c, seeds=SEEDS)
    finally:
        backend.noise_level = 0
    with torch.no_grad():
        theirs = pipe.noise_image_embeddings(torch.from_numpy(c), noise_level=level, noise=embedding_noise(c, SEEDS))
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
