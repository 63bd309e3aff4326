"""Train the pixel prior: epsilon- or v-prediction with condition dropout (augmentation optional, off by default).

Checkpoints (safetensors + JSON, no pickle) are written to ``OUT/checkpoint`` every
``checkpoint_every`` steps, with the random state, so a re-run resumes from the
last one and ends where an uninterrupted run would. Resuming with other options
is refused. The final EMA weights go to ``OUT/model.safetensors`` with
``OUT/config.json``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from gess.encoders.base import EncoderSpec
from gess.errors import GessInputError
from gess.generation.backends import SCHEDULER_NAME, default_scheduler
from gess.generation.backends.pixel import PixelAutoencoder, PixelPrior, embedding_statistics, whitening_projection
from gess.checkpoint import deferred_interrupts, load_checkpoint, save_checkpoint
from gess.io import write_json
from gess.options import AT_LEAST_1, NON_NEGATIVE, POSITIVE, Options, Range, described
from gess.progress import progress_bar



PREDICTION_TYPES = ("epsilon", "v_prediction")


@dataclass
class TrainOptions(Options):
    """Training of the pixel prior.

    The defaults (16 px, 7,000 steps, v-prediction, no augmentation) are the prior chosen on held-out MNIST digits
    (docs/generation.md, "Does the digit prior follow its condition?"); configs/digit69.yaml trains exactly it.
    """

    steps: int = field(default=7000, metadata=described("optimisation steps", AT_LEAST_1))
    batch_size: int = field(default=32, metadata=described("images per step", AT_LEAST_1))
    learning_rate: float = field(default=1e-3, metadata=described("AdamW learning rate (cosine decay)", POSITIVE))
    image_size: int = field(default=16, metadata=described("side of the prior's pixel space", AT_LEAST_1))
    block_out_channels: tuple[int, ...] = field(default=(32, 64, 64), metadata=described("UNet widths, one per level", AT_LEAST_1))
    layers_per_block: int = field(default=1, metadata=described("ResNet layers per UNet level", AT_LEAST_1))
    conditioning_components: int = field(default=0, metadata=described(
        "0: the embedding scaled by one global RMS; k: whitened onto its k leading principal components", NON_NEGATIVE))
    prediction_type: Literal[PREDICTION_TYPES] = field(default="v_prediction", metadata=described(
        "what the network predicts: epsilon (the noise) or v_prediction (sqrt(abar) eps - sqrt(1 - abar) x0, Salimans "
        "& Ho 2022), whose image estimate stays bounded at the noisiest steps; saved in the scheduler config"))
    min_snr_gamma: float = field(default=0.0, metadata=described(
        "0: every timestep's error weighs the same; g > 0: min-SNR-g weighting (Hang et al. 2023; min(SNR, g) / SNR for "
        "epsilon, / (SNR + 1) for v), which moves weight to the noisy steps where the drawn image's identity is decided",
        NON_NEGATIVE))
    cond_dropout: float = field(default=0.1, metadata=described("share of unconditional samples (classifier-free guidance)",
                                                                Range(0, 1, open_high=True)))
    ema_decay: float = field(default=0.995, metadata=described("EMA of the weights that is saved", Range(0, 1, open_high=True)))
    augment: bool = field(default=False, metadata=described(
        "shifts, rotations and elastic jitter of the training images (each keeps its original's embedding, so the "
        "pairs disagree; off by default, docs/generation.md)"))
    max_shift: float = field(default=0.06, metadata=described("augmentation shift, share of the side", NON_NEGATIVE))
    max_rotation: float = field(default=10.0, metadata=described("augmentation rotation, degrees", NON_NEGATIVE))
    elastic: float = field(default=0.03, metadata=described("elastic displacement, share of the side", NON_NEGATIVE))
    checkpoint_every: int = field(default=200, metadata=described("steps between resumable checkpoints", AT_LEAST_1))
    seed: int = field(default=0, metadata=described("random seed of initialisation and batches", NON_NEGATIVE))
    max_extra_images: int | None = field(default=10000, metadata=described(
        "at most this many extra images (a seeded random subset; encoding one costs ~30 ms on a CPU core pair)", NON_NEGATIVE))
    threads: int | None = field(default=None, metadata=described("torch CPU threads (null: torch's default)", AT_LEAST_1))

    def __post_init__(self) -> None:
        from gess.options import check_ranges

        check_ranges(self)  # before the rule below (and again after it): a side of -3 is refused as below 1
        if self.image_size % 2 ** (len(self.block_out_channels) - 1):
            raise GessInputError(None, "image_size", f"a multiple of {2 ** (len(self.block_out_channels) - 1)} "
                                 f"({len(self.block_out_channels)} UNet levels)", repr(self.image_size))


def augment_batch(x: torch.Tensor, opts: TrainOptions, generator: torch.Generator) -> torch.Tensor:
    """Per-sample small shifts, rotations and a smooth elastic jitter (one grid_sample)."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(opts.max_rotation)
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * opts.max_shift * 2
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    if opts.elastic > 0:
        coarse = torch.randn(n, 2, 4, 4, generator=generator) * opts.elastic * 2
        grid = grid + F.interpolate(coarse, size=x.shape[-2:], mode="bicubic", align_corners=False).permute(0, 2, 3, 1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _to_model_space(images: np.ndarray, size: int, channels: int) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    if x.shape[1] == 1 and channels == 3:
        x = x.expand(-1, 3, -1, -1)
    return PixelAutoencoder(size, channels).encode_images(x)


def training_scheduler(prediction_type: str = "epsilon"):
    """The default noise schedule with the prior's prediction type (what sampling reads back from its saved config)."""
    scheduler = default_scheduler()
    if prediction_type == scheduler.config.prediction_type:
        return scheduler
    return type(scheduler).from_config({**scheduler.config, "prediction_type": prediction_type})


def resume_options(opts: TrainOptions, n_images: int) -> dict:
    """What a checkpoint must have been made with to be resumed (threads may change)."""
    return {**opts.to_dict(), "threads": None, "n_images": int(n_images)}


def _weighted_loss(predicted: torch.Tensor, target: torch.Tensor, alpha_bar: torch.Tensor, gamma: float,
                   prediction_type: str = "epsilon") -> torch.Tensor:
    """Mean squared error of the prediction; with gamma > 0 each sample weighted by min-SNR-gamma
    (Hang et al. 2023): min(SNR, gamma) / SNR for epsilon, min(SNR, gamma) / (SNR + 1) for v."""
    if not gamma:
        return F.mse_loss(predicted, target)
    snr = alpha_bar / (1 - alpha_bar).clamp_min(1e-12)
    weight = snr.clamp(max=gamma) / (snr.clamp_min(1e-12) if prediction_type == "epsilon" else snr + 1)
    return (weight * (predicted - target).pow(2).flatten(1).mean(1)).mean()


def _train_steps(model, ema, optimizer, data, cond, scheduler, gen, opts: TrainOptions, start: int, losses: list[float],
                 ckpt: Path, resume_key: dict, progress: bool, interrupted=lambda: False) -> None:
    """Steps ``start`` .. ``opts.steps``: one batch each, EMA update, a checkpoint every ``checkpoint_every``.

    When ``interrupted()`` turns true (Ctrl-C, SIGTERM of a pre-empted job), the step in
    hand is finished, checkpointed, and KeyboardInterrupt raised: a re-run continues there.
    """
    for step in progress_bar(range(start, opts.steps), "training prior", enabled=progress, total=opts.steps - start):
        idx = torch.randint(0, len(data), (opts.batch_size,), generator=gen)
        x0 = data[idx]
        if opts.augment:
            x0 = augment_batch(x0, opts, gen)
        c = cond[idx].clone()
        c[torch.rand(opts.batch_size, generator=gen) < opts.cond_dropout] = 0.0
        t = torch.randint(0, len(scheduler.alphas_cumprod), (opts.batch_size,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        xt = scheduler.add_noise(x0, noise, t)
        # cosine LR decay over the whole run
        for group in optimizer.param_groups:
            group["lr"] = opts.learning_rate * 0.5 * (1 + math.cos(math.pi * step / opts.steps))
        target = noise if opts.prediction_type == "epsilon" else scheduler.get_velocity(x0, noise, t)
        loss = _weighted_loss(model(xt, t, c), target, scheduler.alphas_cumprod[t], opts.min_snr_gamma,
                              opts.prediction_type)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        with torch.no_grad():
            decay = min(opts.ema_decay, (1 + step) / (10 + step))
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(decay).add_(pm.detach(), alpha=1 - decay)
        losses.append(float(loss.detach()))
        stop = interrupted() and step + 1 < opts.steps
        if stop or ((step + 1) % opts.checkpoint_every == 0 and step + 1 < opts.steps):
            save_checkpoint(ckpt, {"model": model, "ema": ema}, {"opt": optimizer}, gen, step + 1,
                            {"losses": losses}, resume_key)
        if stop:
            raise KeyboardInterrupt


def train_pixel_prior(images: np.ndarray, embeddings: np.ndarray, out: str | Path, encoder: EncoderSpec,
                options: TrainOptions | None = None, progress: bool = True, extra_config: dict | None = None) -> Path:
    """Train (or resume training) a :class:`PixelPrior` on uint8 images and their embeddings.

    ``extra_config`` is recorded in the prior's ``config.json`` (the stage layer's fingerprint).
    """
    opts = options or TrainOptions()
    out = Path(out)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    torch.manual_seed(opts.seed)
    channels = 1 if images.shape[-1] == 1 else 3
    data = _to_model_space(images, opts.image_size, channels)
    cond = torch.as_tensor(embeddings, dtype=torch.float32)
    mean, std = embedding_statistics(embeddings)
    model = PixelPrior(opts.image_size, channels, cond.shape[1], opts.block_out_channels, opts.layers_per_block, encoder.to_dict(),
                       conditioning_components=opts.conditioning_components)
    model.embedding_mean.copy_(mean)
    model.embedding_std.copy_(std)
    if opts.conditioning_components:
        model.embedding_projection.copy_(whitening_projection(embeddings, opts.conditioning_components))
    cond = model.normalize(cond)
    ema = PixelPrior(**model.config)
    ema.load_state_dict(model.state_dict())
    optimizer = torch.optim.AdamW(model.parameters(), lr=opts.learning_rate, weight_decay=0.0)
    scheduler = training_scheduler(opts.prediction_type)
    start, losses = 0, []
    ckpt = out / "checkpoint"
    gen = torch.Generator().manual_seed(opts.seed)
    resume_key = resume_options(opts, len(images))
    if (ckpt / "state.json").is_file():
        start, record = load_checkpoint(ckpt, {"model": model, "ema": ema}, {"opt": optimizer}, gen, resume_key)
        losses = list(record["losses"])
    model.train()
    t0 = time.time()
    with deferred_interrupts() as interrupted:
        _train_steps(model, ema, optimizer, data, cond, scheduler, gen, opts, start, losses, ckpt, resume_key, progress,
                     interrupted)
    out.mkdir(parents=True, exist_ok=True)
    record = {**opts.to_dict(), "n_images": int(len(images)), "encoder": encoder.to_dict(), "final_loss_100": float(np.mean(losses[-100:])) if losses else None,
              "seconds_this_run": time.time() - t0, "losses_every_10": losses[::10]}
    ema.save_pretrained_files(out, extra={"training": {k: v for k, v in record.items() if k != "losses_every_10"},
                                          **(extra_config or {})})
    write_json(out / SCHEDULER_NAME, dict(scheduler.config))
    write_json(out / "training.json", record)
    if ckpt.exists():
        import shutil

        shutil.rmtree(ckpt)
    return out
