"""M_s trained with self-supervision (Beliy et al., NeurIPS 2019, "From voxels to pixels and back").

The paper's experiments took their structural cue from this encoder-decoder. Two small
networks work in M_s's target space (blurred images, :class:`~gess.decoding.structural.StructuralSpace`):

* ``E`` (:class:`ImageToVoxels`), image -> voxels: convolutions, then one readout per
  voxel factorised into a spatial map and feature weights (Beliy's "space-feature" layer).
  Fitted on the training pairs first, then frozen.
* ``D`` (:class:`VoxelsToImage`), voxels -> image: a linear voxel-to-pixel layer, then a
  small convolutional U-Net that refines it.

``D`` learns from three losses:

1. pairs: D(fMRI) against the trial's target image;
2. the image cycle, image -> voxels -> image, on extra images without fMRI: D(E(x) + r) against x,
   where r is a real residual (a training trial's fMRI minus E's cross-fitted prediction
   of it), so that the simulated fMRI is as noisy as recorded fMRI;
3. the fMRI cycle, voxels -> image -> voxels, on fMRI without images (the test fMRI, as in
   Beliy et al.; ``unpaired_fmri="none"`` leaves it out): E(D(fMRI)) against that fMRI.

Departure from Beliy et al. (why: docs/decoding.md): D's linear layer starts at M_s's
ridge solution and stays fixed (``train_readout=False``); a freely learned voxel-to-pixel
layer overfits a hundred training pairs, and the cycles then teach the refinement what
the ridge's outputs of real images look like.

Early stopping: a seeded share of the training stimuli (``validation_fraction``, all
repeats of a stimulus on one side) is held out of every loss; every
``validation_every`` decoder steps the pairs loss on them is measured (refining the
ridge's cross-fitted outputs, which never saw them), and D keeps the weights of the
best score. Step 0, the ridge start (the refinement's last layer starts at zero), is a
candidate, so on the held-out pairs the result is never worse than the ridge. Training
is seeded, checkpointed (resumable, see :mod:`gess.checkpoint`) and shows progress.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gess.device import get_device
from gess.errors import GessInputError
from gess.options import AT_LEAST_1, NON_NEGATIVE, POSITIVE, Options, Range, described
from gess.persistence import load_module_state, module_state, nest, unnest



@dataclass
class SelfSupervisedOptions(Options):
    """Training of the self-supervised M_s (``gess fit --ss-*``, ``decoder: {self_supervised: ...}`` in a run config)."""

    steps: int = field(default=800, metadata=described("optimisation steps of the decoder D", AT_LEAST_1))
    encoder_steps: int = field(default=300, metadata=described("optimisation steps of the encoder E (image -> voxels)", AT_LEAST_1))
    batch_size: int = field(default=32, metadata=described("samples per step, per loss", AT_LEAST_1))
    learning_rate: float = field(default=1e-3, metadata=described("Adam learning rate (cosine decay)", POSITIVE))
    width: int = field(default=16, metadata=described("channels of the first convolution (doubled once)", AT_LEAST_1))
    weight_decay: float = field(default=1e-4, metadata=described("L2 penalty of both networks", NON_NEGATIVE))
    image_cycle: float = field(default=1.0, metadata=described("weight of image -> voxels -> image on extra images", NON_NEGATIVE))
    fmri_cycle: float = field(default=0.1, metadata=described("weight of voxels -> image -> voxels on fMRI without images", NON_NEGATIVE))
    unpaired_fmri: Literal["test", "none"] = field(default="test", metadata=described(
        "fMRI without images for the fMRI cycle: the test fMRI (as Beliy et al.), or none"))
    train_readout: bool = field(default=False, metadata=described("also train D's voxel-to-pixel layer (starts at the ridge)"))
    max_extra_images: int | None = field(default=20000, metadata=described("at most this many extra images (a seeded subset)", NON_NEGATIVE))
    validation_fraction: float = field(default=0.2, metadata=described(
        "share of the training stimuli held out for early stopping (D keeps its best weights on them, the ridge "
        "start included); 0: none, D keeps its last weights", Range(0, 1, open_high=True)))
    validation_every: int = field(default=20, metadata=described("decoder steps between early-stopping evaluations", AT_LEAST_1))
    checkpoint_every: int = field(default=500, metadata=described("steps between resumable checkpoints", AT_LEAST_1))
    seed: int = field(default=0, metadata=described("random seed of initialisation, batches and the held-out split", NON_NEGATIVE))


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(min(8, cout), cout), nn.SiLU())


class ImageToVoxels(nn.Module):
    """E: (N, C, S, S) images in [0, 1] -> (N, V) z-scored voxels, with a space-feature factorised readout."""

    def __init__(self, channels: int, side: int, n_voxels: int, width: int = 32):
        super().__init__()
        self.features = nn.Sequential(_block(channels, width), _block(width, 2 * width, 2), _block(2 * width, 2 * width, 2))
        cells = (-(-(-(-side // 2)) // 2)) ** 2
        self.space = nn.Parameter(torch.randn(n_voxels, cells) / cells)
        self.weights = nn.Parameter(torch.randn(n_voxels, 2 * width) / (2 * width) ** 0.5)
        self.bias = nn.Parameter(torch.zeros(n_voxels))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        f = self.features(images).flatten(2)                        # (N, K, P)
        return torch.einsum("nkp,vp,vk->nv", f, self.space, self.weights) + self.bias


class VoxelsToImage(nn.Module):
    """D: (N, V) z-scored voxels -> (N, C, S, S) images: a linear layer, refined by a two-level U-Net."""

    def __init__(self, n_voxels: int, channels: int, side: int, width: int = 32):
        super().__init__()
        self.channels, self.side = channels, side
        self.readout = nn.Linear(n_voxels, side * side * channels)
        self.down1 = _block(channels, width)
        self.down2 = _block(width, 2 * width, 2)
        self.middle = nn.Sequential(_block(2 * width, 2 * width), _block(2 * width, 2 * width))
        self.up = _block(3 * width, width)
        self.out = nn.Conv2d(width + channels, channels, 3, 1, 1)
        nn.init.zeros_(self.out.weight)   # starts as the readout alone
        nn.init.zeros_(self.out.bias)

    def linear(self, voxels: torch.Tensor) -> torch.Tensor:
        """The readout as images, (N, C, S, S) (its outputs are in (S, S, C) order, as M_s's ridge targets)."""
        return self.readout(voxels).view(-1, self.side, self.side, self.channels).permute(0, 3, 1, 2)

    def forward(self, voxels: torch.Tensor) -> torch.Tensor:
        return self.refine(self.linear(voxels))

    def refine(self, base: torch.Tensor) -> torch.Tensor:
        """The U-Net's correction of a readout image (N, C, S, S)."""
        h1 = self.down1(base)
        h2 = self.middle(self.down2(h1))
        up = F.interpolate(h2, size=h1.shape[-2:], mode="nearest")
        h = self.up(torch.cat([up, h1], 1))
        return base + self.out(torch.cat([h, base], 1))


class SelfSupervisedStructuralDecoder:
    """M_s as Beliy et al.'s self-supervised encoder-decoder, in M_s's target space.

    Parameters
    ----------
    options : :class:`SelfSupervisedOptions`. It trains on the process device (:func:`gess.device.get_device`).

    Attributes
    ----------
    encoder_ : E (:class:`ImageToVoxels`); decoder_ : D (:class:`VoxelsToImage`)
    target_shape_ : (S, S, C); losses_ : the last 100 steps' mean of each loss
    """

    def __init__(self, options: SelfSupervisedOptions | None = None):
        self.options = options or SelfSupervisedOptions()

    # ------------------------------------------------------------------ fit
    def fit(self, fmri: np.ndarray, targets: np.ndarray, ridge_coef: np.ndarray, ridge_intercept: np.ndarray,
            extra_targets: np.ndarray | None = None, unpaired_fmri: np.ndarray | None = None,
            cross_fitted: np.ndarray | None = None, checkpoint: str | Path | None = None, resume_key: dict | None = None,
            progress: bool = False, groups: np.ndarray | None = None) -> "SelfSupervisedStructuralDecoder":
        """Fit E then D on z-scored ``fmri`` and ``targets`` (n, S, S, C).

        ``ridge_coef`` (V, S*S*C) and ``ridge_intercept`` start D's linear layer;
        ``extra_targets`` (m, S, S, C) are extra images in the target space (the image
        cycle); ``unpaired_fmri`` z-scored fMRI without images (the fMRI cycle).
        ``cross_fitted`` (n, S, S, C), the ridge's cross-fitted predictions of the training
        targets, is what the pairs loss refines while the readout is fixed: the ridge's
        in-sample outputs are nearly perfect, and a refinement learnt on them learns nothing.
        ``checkpoint`` is a directory to save to and resume from; ``resume_key`` what
        a checkpoint must have been made with (data fingerprint and options).
        ``groups`` (n,) names each pair's stimulus, so that the early-stopping split keeps
        a stimulus's repeats together (default: pairs with the same target are one stimulus).
        """
        opts = self.options
        torch.manual_seed(opts.seed)
        self.target_shape_ = tuple(int(s) for s in targets.shape[1:])
        dev = torch.device(get_device())
        rows, held = validation_split(targets, opts.validation_fraction, opts.seed, groups)
        data = _Data.of(fmri, targets, cross_fitted, extra_targets, unpaired_fmri, rows, held, opts, dev)
        side, _, channels = self.target_shape_
        self.encoder_ = ImageToVoxels(channels, side, fmri.shape[1], opts.width).to(dev)
        self.decoder_ = VoxelsToImage(fmri.shape[1], channels, side, opts.width).to(dev)
        with torch.no_grad():
            self.decoder_.readout.weight.copy_(torch.as_tensor(np.asarray(ridge_coef, np.float32).T))
            self.decoder_.readout.bias.copy_(torch.as_tensor(np.asarray(ridge_intercept, np.float32).reshape(-1)))
        self.decoder_.readout.requires_grad_(opts.train_readout)
        early = _EarlyStopping(self.decoder_, data, opts.validation_every) if len(held) else None
        self._train(data, early, checkpoint, resume_key, progress)
        self.validation_ = {"held_out_pairs": 0, "curve": [], "chosen_step": opts.steps}
        if early is not None:  # the best checkpoint, not a refit on all pairs: that one's held-out score is known
            early.restore()
            chosen = early.chosen()
            self.validation_ = {"held_out_pairs": int(len(held)), "every": opts.validation_every, "curve": early.curve,
                                "chosen_step": int(chosen[0]), "chosen_loss": chosen[1], "start_loss": early.curve[0][1]}
        self.encoder_.eval()
        self.decoder_.eval()
        return self

    def _train(self, data: "_Data", early: "_EarlyStopping | None", checkpoint, resume_key, progress: bool) -> None:
        """E's then D's optimisation steps, checkpointed; the held-out pairs scored along D's."""
        from gess.checkpoint import deferred_interrupts, load_checkpoint, save_checkpoint
        from gess.progress import progress_bar

        opts = self.options
        gen = torch.Generator().manual_seed(opts.seed)
        enc_opt = torch.optim.Adam(self.encoder_.parameters(), opts.learning_rate, weight_decay=opts.weight_decay)
        dec_opt = torch.optim.Adam([p for p in self.decoder_.parameters() if p.requires_grad], opts.learning_rate,
                                   weight_decay=opts.weight_decay)
        residuals = torch.zeros(0, data.z.shape[1], device=data.z.device)
        modules = {"encoder": self.encoder_, "decoder": self.decoder_, **({"best": early.best} if early else {})}
        optimizers = {"encoder_opt": enc_opt, "decoder_opt": dec_opt}
        key = {**opts.to_dict(), **(resume_key or {})}
        step, record = 0, {"losses": {}}
        ckpt = Path(checkpoint) if checkpoint is not None else None
        if ckpt is not None and (ckpt / "state.json").is_file():
            residuals = _load_residuals(ckpt, data.z.shape[1], data.z.device)
            step, record = load_checkpoint(ckpt, modules, optimizers, gen, key)
            if early is not None:
                early.curve = [list(c) for c in record.get("validation", [])]
        total = opts.encoder_steps + opts.steps
        losses = {k: list(v) for k, v in record.get("losses", {}).items()}

        def save(at: int) -> None:
            if ckpt is not None:
                save_checkpoint(ckpt, {**modules, "residuals": _Holder(residuals)}, optimizers, gen, at,
                                {"losses": {k: v[-100:] for k, v in losses.items()},
                                 "validation": early.curve if early else []}, key)

        with deferred_interrupts() as interrupted:
            for step in progress_bar(range(step, total), "self-supervised M_s", enabled=progress, total=total - step):
                if step == opts.encoder_steps or (step > opts.encoder_steps and len(residuals) == 0):
                    residuals = self._cross_fitted_residuals(data.z, data.x, gen)
                if early is not None and step >= opts.encoder_steps and not early.curve:
                    early.score(0, opts.steps)  # the ridge start is a candidate
                if step < opts.encoder_steps:
                    parts = self._encoder_step(data.z, data.x, enc_opt, gen, step / opts.encoder_steps)
                else:
                    parts = self._decoder_step(data.z, data.x, data.base, data.pool, data.unpaired, residuals, dec_opt,
                                               gen, (step - opts.encoder_steps) / opts.steps)
                for name, value in parts.items():
                    losses.setdefault(name, []).append(value)
                done = step + 1
                if early is not None and done > opts.encoder_steps:
                    early.score(done - opts.encoder_steps, opts.steps)
                stop = interrupted() and done < total
                if stop or (done % opts.checkpoint_every == 0 and done < total):
                    save(done)
                if stop:
                    raise KeyboardInterrupt
        self.losses_ = {k: float(np.mean(v[-100:])) for k, v in losses.items()}
        if ckpt is not None and ckpt.exists():
            import shutil

            shutil.rmtree(ckpt)

    def _encoder_step(self, z, x, optimizer, gen, progress: float, model: ImageToVoxels | None = None,
                      rows: torch.Tensor | None = None) -> dict:
        model = model or self.encoder_
        pick = _batch(len(x) if rows is None else len(rows), self.options.batch_size, gen)
        pick = pick if rows is None else rows[pick]
        loss = _voxel_loss(model(x[pick]), z[pick])
        _step(optimizer, loss, self.options.learning_rate, progress)
        return {"encoder": float(loss.detach())}

    def _cross_fitted_residuals(self, z, x, gen) -> torch.Tensor:
        """fMRI minus E's prediction from an E fitted without that trial (two halves): real noise, not E's overfit."""
        opts = self.options
        order = torch.randperm(len(x), generator=gen).to(z.device)
        halves = (order[: len(x) // 2], order[len(x) // 2:])
        residuals = torch.empty_like(z)
        for fit_rows, held in (halves, halves[::-1]):
            model = ImageToVoxels(x.shape[1], x.shape[2], z.shape[1], opts.width).to(z.device)
            optimizer = torch.optim.Adam(model.parameters(), opts.learning_rate, weight_decay=opts.weight_decay)
            for s in range(opts.encoder_steps):
                self._encoder_step(z, x, optimizer, gen, s / opts.encoder_steps, model, fit_rows)
            with torch.no_grad():
                residuals[held] = z[held] - model.eval()(x[held])
        return residuals

    def _decoder_step(self, z, x, base, pool, unpaired, residuals, optimizer, gen, progress: float) -> dict:
        opts = self.options
        pick = _batch(len(x), opts.batch_size, gen)
        decoded = self.decoder_.refine(base[pick]) if base is not None else self.decoder_(z[pick])
        parts = {"pairs": F.mse_loss(decoded, x[pick])}
        if opts.image_cycle > 0:
            images = pool[_batch(len(pool), opts.batch_size, gen)]
            with torch.no_grad():
                simulated = self.encoder_(images) + residuals[_batch(len(residuals), opts.batch_size, gen)]
            parts["image_cycle"] = opts.image_cycle * F.mse_loss(self.decoder_(simulated), images)
        if unpaired is not None:
            voxels = unpaired[_batch(len(unpaired), opts.batch_size, gen)]
            parts["fmri_cycle"] = opts.fmri_cycle * _voxel_loss(self.encoder_(self.decoder_(voxels)), voxels)
        loss = sum(parts.values())
        _step(optimizer, loss, opts.learning_rate, progress)
        return {k: float(v.detach()) for k, v in parts.items()}

    # -------------------------------------------------------------- predict
    def predict(self, fmri: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Structural targets (n, S, S, C) of z-scored fMRI."""
        out = []
        device = self.decoder_.readout.weight.device
        with torch.no_grad():
            for start in range(0, len(fmri), batch_size):
                z = torch.as_tensor(np.asarray(fmri[start:start + batch_size], np.float32), device=device)
                out.append(self.decoder_(z).permute(0, 2, 3, 1).cpu().numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0,) + self.target_shape_, np.float32)

    # ---------------------------------------------------------- persistence
    def state(self) -> dict[str, np.ndarray]:
        return {**nest("encoder", module_state(self.encoder_)), **nest("decoder", module_state(self.decoder_))}

    def config(self) -> dict:
        """The options and what fitting found (the shape of one target, the final losses, the early-stopping curve)."""
        return {"options": self.options.to_dict(), "target_shape": list(self.target_shape_), "losses": self.losses_,
                "validation": self.validation_}

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> "SelfSupervisedStructuralDecoder":
        """The fitted decoder from :meth:`config` and :meth:`state`, on the process device."""
        self = cls(SelfSupervisedOptions(**config["options"]))
        self.target_shape_ = tuple(config["target_shape"])
        side, _, channels = self.target_shape_
        n_voxels = int(arrays["encoder.bias"].shape[0])
        self.encoder_ = ImageToVoxels(channels, side, n_voxels, self.options.width)
        self.decoder_ = VoxelsToImage(n_voxels, channels, side, self.options.width)
        for name, module in (("encoder", self.encoder_), ("decoder", self.decoder_)):
            load_module_state(module, unnest(name, arrays)).to(get_device()).eval()
        self.losses_ = config.get("losses", {})
        self.validation_ = config.get("validation", {})
        return self


def validation_split(targets: np.ndarray, fraction: float, seed: int,
                     groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows (kept for training, held out) of a seeded split of the pairs by stimulus, about ``fraction`` of the
    stimuli held out (at least one, never all); ``groups`` (n,) names each pair's stimulus (default: pairs with
    the same target are one stimulus). ``fraction`` 0 holds out nothing."""
    n = len(targets)
    if fraction == 0:
        return np.arange(n), np.arange(0)
    if groups is None:
        seen: dict[bytes, int] = {}
        groups = np.array([seen.setdefault(row.tobytes(), len(seen)) for row in np.asarray(targets).reshape(n, -1)])
    if len(groups) != n:
        raise GessInputError(None, "groups", f"{n} stimulus names (one per training pair)", f"{len(groups)}")
    names, inverse = np.unique(np.asarray(groups), return_inverse=True)
    if len(names) < 2:
        raise GessInputError(None, "self_supervised.validation_fraction", "0 when there are fewer than 2 training stimuli",
                             f"{fraction} with {len(names)}")
    n_held = min(max(1, round(fraction * len(names))), len(names) - 1)
    held = np.isin(inverse.reshape(-1), np.random.default_rng(seed).permutation(len(names))[:n_held])
    return np.flatnonzero(~held), np.flatnonzero(held)


@dataclass
class _Data:
    """The training tensors (the held-out pairs taken out), and the held-out pairs' decoder inputs and targets."""

    z: torch.Tensor
    x: torch.Tensor
    base: torch.Tensor | None
    pool: torch.Tensor
    unpaired: torch.Tensor | None
    held_inputs: torch.Tensor
    held_targets: torch.Tensor

    @classmethod
    def of(cls, fmri, targets, cross_fitted, extra_targets, unpaired_fmri, rows, held, opts, dev) -> "_Data":
        z = torch.as_tensor(np.asarray(fmri, np.float32), device=dev)
        x = _to_nchw(targets, dev)
        base = _to_nchw(cross_fitted, dev) if cross_fitted is not None and not opts.train_readout else None
        rows_, held_ = (torch.as_tensor(r, dtype=torch.long, device=dev) for r in (rows, held))
        pool = torch.cat([x[rows_], _to_nchw(extra_targets, dev)]) if extra_targets is not None and len(extra_targets) \
            else x[rows_]
        unpaired = torch.as_tensor(np.asarray(unpaired_fmri, np.float32), device=dev) if (
            unpaired_fmri is not None and len(unpaired_fmri) and opts.fmri_cycle > 0) else None
        # the held-out pairs' readout: the ridge's cross-fitted outputs (unseen), else D's own readout
        held_inputs = base[held_] if base is not None else z[held_]
        return cls(z[rows_], x[rows_], base[rows_] if base is not None else None, pool, unpaired, held_inputs, x[held_])


class _Snapshot:
    """A copy of a module's trained parameters, saved in a checkpoint as a module's state is."""

    def __init__(self, module: nn.Module):
        self.take(module)

    def take(self, module: nn.Module) -> None:
        self.tensors = {k: v.detach().clone() for k, v in module.named_parameters() if v.requires_grad}

    def put(self, module: nn.Module) -> None:
        module.load_state_dict(self.tensors, strict=False)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.tensors

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        self.tensors = dict(tensors)


class _EarlyStopping:
    """The held-out pairs' loss along D's training, and D's weights where it was lowest (the start included)."""

    def __init__(self, decoder: VoxelsToImage, data: _Data, every: int):
        self.decoder, self.data, self.every = decoder, data, every
        self.curve: list[list] = []  # [decoder steps done, held-out pairs loss]
        self.best = _Snapshot(decoder)

    def loss(self, rows: int = 256) -> float:
        """The pairs loss (mean squared error) of D on the held-out pairs."""
        inputs, targets, sse = self.data.held_inputs, self.data.held_targets, 0.0
        with torch.no_grad():
            for start in range(0, len(inputs), rows):
                batch = inputs[start:start + rows]
                decoded = self.decoder.refine(batch) if self.data.base is not None else self.decoder(batch)
                sse += float(((decoded - targets[start:start + rows]) ** 2).sum())
        return sse / targets.numel()

    def score(self, done: int, total: int) -> None:
        """Score D after ``done`` of ``total`` steps when due (the start, every ``every`` steps, the end)."""
        if done == 0 or done % self.every == 0 or done == total:
            value = self.loss()
            if not self.curve or value < self.chosen()[1]:
                self.best.take(self.decoder)
            self.curve.append([done, value])

    def chosen(self) -> list:
        """[step, loss] of the lowest loss; the earliest of equals."""
        return min(self.curve, key=lambda point: point[1])

    def restore(self) -> None:
        self.best.put(self.decoder)


class _Holder(nn.Module):
    """Lets a plain tensor travel in a checkpoint beside the modules."""

    def __init__(self, tensor: torch.Tensor):
        super().__init__()
        self.register_buffer("value", tensor)


def _load_residuals(ckpt: Path, n_voxels: int, device) -> torch.Tensor:
    from safetensors.torch import load_file

    value = load_file(str(ckpt / "state.safetensors")).get("residuals.value")
    return value.to(device) if value is not None else torch.zeros(0, n_voxels, device=device)


def _to_nchw(images: np.ndarray, device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(images, np.float32), device=device).permute(0, 3, 1, 2).contiguous()


def _batch(n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randint(0, n, (size,), generator=gen)


def _voxel_loss(predicted: torch.Tensor, voxels: torch.Tensor) -> torch.Tensor:
    """Beliy et al.'s voxel loss: mean squared error plus cosine distance."""
    return F.mse_loss(predicted, voxels) + (1 - F.cosine_similarity(predicted, voxels, dim=1)).mean()


def _step(optimizer, loss: torch.Tensor, learning_rate: float, progress: float) -> None:
    import math

    for group in optimizer.param_groups:
        group["lr"] = learning_rate * 0.5 * (1 + math.cos(math.pi * progress))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
