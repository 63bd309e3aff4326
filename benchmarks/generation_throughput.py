"""Generation throughput: images per second and peak GPU memory, plain / CS / GG, on Stable unCLIP's architecture.

    python benchmarks/generation_throughput.py                      # GPU: SD 2.1 unCLIP small at 768 px, 50 steps
    python benchmarks/generation_throughput.py --tiny --steps 3     # CPU: tiny components, checks it runs (CI)

The UNet, VAE and CLIP ViT-L/14 are built from the published configurations of
``stabilityai/stable-diffusion-2-1-unclip-small`` and ``openai/clip-vit-large-patch14`` with
random weights (they cost the same as the real ones; nothing is downloaded). Batches of
1, 4, 8, 16 stimuli per denoising call; classifier-free guidance's two branches in one
batch; bf16 on the GPU; PyTorch SDPA attention (diffusers' default processor); the VAE
decodes 4 images at a time. Writes the table to ``--out`` (default results/) as JSON too.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

# stabilityai/stable-diffusion-2-1-unclip-small: unet/config.json and vae/config.json as published
UNET = dict(sample_size=96, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
            down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), use_linear_projection=True,
            class_embed_type="projection", projection_class_embeddings_input_dim=1536, upcast_attention=True)
VAE = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, block_out_channels=(128, 256, 512, 512),
           down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, sample_size=768,
           scaling_factor=0.18215)
CLIP_VISION = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16, image_size=224,
                   patch_size=14, projection_dim=768)
TEXT_CONTEXT = (77, 1024)
EMBED = 768

TINY_UNET = dict(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
                 down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                 cross_attention_dim=24, attention_head_dim=4, norm_num_groups=8, class_embed_type="projection",
                 projection_class_embeddings_input_dim=32)
TINY_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, block_out_channels=(8, 16),
                down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=8)
TINY_CLIP = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=32,
                 patch_size=8, projection_dim=16)


def build(tiny: bool, device: str, dtype: torch.dtype, compile_unet: bool):
    from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, UNet2DConditionModel
    from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from gess.encoders.clip import CLIPImageEncoder
    from gess.generation.backends.unclip import UnCLIPBackend

    torch.manual_seed(0)
    embed = 16 if tiny else EMBED
    context = (5, 24) if tiny else TEXT_CONTEXT
    unet = UNet2DConditionModel(**(TINY_UNET if tiny else UNET))
    vae = AutoencoderKL(**(TINY_VAE if tiny else VAE))
    sched = DDIMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                          clip_sample=False, set_alpha_to_one=False, prediction_type="v_prediction" if not tiny else "epsilon")
    backend = UnCLIPBackend(unet, vae, sched, StableUnCLIPImageNormalizer(embed), DDPMScheduler(beta_schedule="squaredcos_cap_v2"),
                            torch.zeros(1, *context), device=device, dtype=dtype, compile=compile_unet)
    clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**(TINY_CLIP if tiny else CLIP_VISION)))
    encoder = CLIPImageEncoder("random-clip-vit-l-14" if not tiny else "tiny-clip", device=device, model=clip)
    return backend, encoder, embed


def time_method(backend, encoder, embed, method, batch, steps, repeats=1):
    from gess.generation import GGOptions, SamplingOptions, generate_images

    rng = np.random.default_rng(0)
    n = batch * repeats
    c = rng.normal(size=(n, embed)).astype(np.float32)
    side = backend.image_size
    s = rng.random((n, side // 8, side // 8, 3)).astype(np.float32)
    pi = rng.random(n).astype(np.float32)
    kwargs = dict(encoder=encoder, gg_options=GGOptions(encoder_size=None)) if method == "gg" else {}
    sampling = SamplingOptions(steps=steps, batch_size=batch)
    generate_images(backend, c[:batch], c[:batch], s[:batch], pi[:batch], method, SamplingOptions(steps=2, batch_size=batch), **kwargs)
    if backend.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    generate_images(backend, c, c, s, pi, method, sampling, **kwargs)
    if backend.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**30 if backend.device.type == "cuda" else float("nan")
    return n / seconds, peak


def time_encoder(encoder, batch, side, repeats=3):
    x = np.random.default_rng(0).integers(0, 256, (batch * repeats, side, side, 3), dtype=np.uint8)
    encoder.batch_size = batch
    encoder.encode(x[:batch], progress=False)
    if encoder.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    encoder.encode(x, progress=False)
    if encoder.device.type == "cuda":
        torch.cuda.synchronize()
    return len(x) / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true", help="tiny components (CPU check)")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8, 16])
    ap.add_argument("--methods", nargs="+", default=["semantic", "cs", "gg"])
    ap.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], default="bf16")
    ap.add_argument("--compile", action="store_true", help="torch.compile the UNet")
    ap.add_argument("--out", default="results")
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype] if device == "cuda" else torch.float32
    backend, encoder, embed = build(args.tiny, device, dtype, args.compile)
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    print(f"{'tiny components' if args.tiny else 'SD 2.1 unCLIP small architecture (random weights)'}, "
          f"{backend.image_size} px, {args.steps} steps, {name}, {args.dtype if device == 'cuda' else 'fp32'}")
    rows = []
    print(f"{'method':10s} {'batch':>5s} {'images/s':>9s} {'peak GiB':>9s}")
    for method in args.methods:
        for batch in args.batches:
            try:
                rate, peak = time_method(backend, encoder, embed, method, batch, args.steps)
            except torch.cuda.OutOfMemoryError:
                rate, peak = float("nan"), float("inf")
                torch.cuda.empty_cache()
            rows.append({"method": method, "batch": batch, "images_per_second": rate, "peak_gib": peak})
            print(f"{method:10s} {batch:5d} {rate:9.3f} {peak:9.2f}", flush=True)
    for batch in args.batches:
        rate = time_encoder(encoder, batch * 4, 224 if not args.tiny else 32)
        rows.append({"method": "clip-encoder", "batch": batch * 4, "images_per_second": rate})
        print(f"{'clip-vit':10s} {batch * 4:5d} {rate:9.1f}")
    by = {(r["method"], r["batch"]): r["images_per_second"] for r in rows}
    if ("cs", 8) in by and ("gg", 8) in by:
        print(f"GG / CS cost at batch 8: {by[('cs', 8)] / by[('gg', 8)]:.2f}x")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "generation_throughput.json").write_text(json.dumps({"device": name, "steps": args.steps, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
