"""CS (gess.generation.cs) against an independent implementation of ILVR / the GESS paper's eq. 8-9.

ILVR (Choi et al. 2021, eq. 8-9 there) conditions each DDPM/DDIM step on a reference y:

    x'_{t-1} ~ p(x_{t-1} | x_t)                              (the unconditioned update)
    y_{t-1}  ~ q(y_{t-1} | y) = sqrt(abar_{t-1}) y + sqrt(1 - abar_{t-1}) eps
    x_{t-1}  = x'_{t-1} + phi_N(y_{t-1}) - phi_N(x'_{t-1})

with phi_N a linear low-pass filter: down-sampling by N and up-sampling back. GESS (paper eq. 8-9, spec/method.md)
weights the substitution by the per-sample structural weight pi_s:

    z_{t-1} = z_{t-1,c} - pi_s F_s(z_{t-1,c}) + pi_s F_s(z_{t-1,s})

and the authors' release additionally decays the weight (pi_s / exp(tau i)), substitutes only at the first
int(0.05 * steps) loop indices (all of them when that is 0) and noises the reference to the current t.

Everything below is written from those definitions, not with gess's helpers: the noise schedule from its betas,
the DDIM update from the DDIM paper (eta = 0), classifier-free guidance, and phi_N as explicit separable
resampling matrices of a cubic kernel (Keys), anti-aliased (kernel stretched by the factor) when shrinking. Two
kernels, as gess's ``lowpass`` offers them (``CSOptions.lowpass_kernel``):
* ``"bicubic"`` (the default, the paper preset): torch's conventions, down with the a = -0.5 kernel, edge weights
  renormalised; up with the a = -0.75 kernel, edge pixels repeated;
* ``"resizer"`` (the released preset): the release's ILVR ``Resizer``, the a = -0.5 kernel both ways, mirrored edges.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

BETA_START, BETA_END, T_TRAIN = 0.00085, 0.012, 1000


# --- the reference definitions -----------------------------------------------------------------------

def alphas_cumprod() -> np.ndarray:
    """abar_t of the 'scaled_linear' schedule (Stable Diffusion's): betas linear in sqrt, then squared."""
    betas = np.linspace(BETA_START ** 0.5, BETA_END ** 0.5, T_TRAIN, dtype=np.float64) ** 2
    return np.cumprod(1.0 - betas)


def keys_cubic(x: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel with parameter a."""
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def resample_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix of a 1-D cubic resize, half-pixel centres (output pixel i sits at (i + 0.5) s - 0.5).

    Shrinking (s = n_in / n_out > 1): the a = -0.5 kernel stretched by s (anti-aliasing), taps outside the signal
    dropped and the weights renormalised. Enlarging: the a = -0.75 kernel, taps outside the signal clamped to the edge.
    """
    s = n_in / n_out
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        centre = (i + 0.5) * s - 0.5
        if s > 1:
            taps = np.arange(int(np.floor(centre - 2 * s)), int(np.ceil(centre + 2 * s)) + 1)
            taps = taps[(taps >= 0) & (taps < n_in)]
            w = keys_cubic((taps - centre) / s, -0.5)
            m[i, taps] = w / w.sum()
        else:
            base = int(np.floor(centre))
            for tap in range(base - 1, base + 3):
                m[i, min(max(tap, 0), n_in - 1)] += keys_cubic(np.array(tap - centre), -0.75)
    return m


def phi(x: torch.Tensor, factor: float, kernel: str = "bicubic") -> torch.Tensor:
    """phi_N: down by ``factor`` (to round(side / factor)) and back up, as one linear map per axis; ``kernel``
    "bicubic" (torch's conventions, :func:`resample_matrix`) or "resizer" (:func:`released_resize_matrix`)."""
    matrix = {"bicubic": resample_matrix, "resizer": lambda n_in, n_out: released_resize_matrix(n_in, n_out)}[kernel]
    h, w = x.shape[-2:]
    hs, ws = max(1, round(h / factor)), max(1, round(w / factor))
    rows = matrix(hs, h) @ matrix(h, hs)
    cols = matrix(ws, w) @ matrix(w, ws)
    out = np.einsum("ij,ncjk,lk->ncil", rows, x.double().numpy(), cols)
    return torch.from_numpy(out).to(x.dtype)


def q_sample(y: torch.Tensor, t: int, eps: torch.Tensor, abar: np.ndarray) -> torch.Tensor:
    """y_t ~ q(y_t | y_0); t < 0 is the clean reference."""
    if t < 0:
        return y
    return (np.sqrt(abar[t]) * y.double() + np.sqrt(1 - abar[t]) * eps.double()).to(y.dtype)


def ilvr_substitution(z_prev, y_t, pi_s, factor, kernel="bicubic"):
    """GESS eq. 9 (ILVR's eq. with weight pi_s): z - pi_s phi(z) + pi_s phi(y)."""
    w = torch.as_tensor(np.asarray(pi_s, np.float64)).view(-1, 1, 1, 1)
    return (z_prev.double() - w * phi(z_prev, factor, kernel).double() + w * phi(y_t, factor, kernel).double()).float()


def first_draws(seeds, shape, draws=1):
    """The k-th standard normal draw of each sample's own generator (CS's noise: one generator per sample)."""
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    out = []
    for _ in range(draws):
        out.append(torch.stack([torch.randn(shape, generator=g) for g in gens]))
    return out


# --- gess under test -------------------------------------------------------------------------------

def scheduler():
    from diffusers import DDIMScheduler

    return DDIMScheduler(num_train_timesteps=T_TRAIN, beta_schedule="scaled_linear", beta_start=BETA_START,
                         beta_end=BETA_END, clip_sample=False, set_alpha_to_one=False, prediction_type="epsilon")


@pytest.mark.parametrize("factor,side", [(2.0, 16), (3.0, 12), (2.5, 16), (6.0, 24), (1.5, 16)])
def test_lowpass_is_the_cubic_antialiased_down_up_resize(factor, side):
    from gess.generation.filters import lowpass

    z = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(lowpass(z, factor), phi(z, factor), rtol=0, atol=2e-6)


def released_resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """The resizer the authors' release uses for F_s (``ldm/models/diffusion/ddim.py``: ``Resizer(shape, 1 / 6)`` and
    back, the MATLAB-imresize port by A. Shocher that ILVR vendors): the a = -0.5 cubic in BOTH directions (stretched
    by the factor when shrinking), weights normalised, mirrored edges. Its interior rows equal PIL's BICUBIC."""
    scale = n_out / n_in
    width = 4.0 / min(scale, 1.0)
    mirror = np.concatenate([np.arange(n_in), np.arange(n_in - 1, -1, -1)])
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        u = (i + 1) / scale + 0.5 * (1 - 1 / scale)          # 1-based source coordinate
        taps = np.floor(u - width / 2) + np.arange(int(np.ceil(width)) + 2)
        w = keys_cubic(min(scale, 1.0) * (u - taps), -0.5)
        np.add.at(m[i], mirror[np.mod(taps.astype(int) - 1, 2 * n_in)], w / w.sum())
    return m


def test_lowpass_is_the_released_resizer():
    """``kernel="resizer"`` is the release's F_s (factor 6 on a side it divides, as there); the default is unchanged."""
    import torch.nn.functional as F

    from gess.generation.filters import lowpass

    z = torch.randn(2, 4, 48, 48, generator=torch.Generator().manual_seed(0))
    r = released_resize_matrix(8, 48) @ released_resize_matrix(48, 8)
    released = torch.from_numpy(np.einsum("ij,ncjk,lk->ncil", r, z.double().numpy(), r)).float()
    torch.testing.assert_close(lowpass(z, 6.0, kernel="resizer"), released, rtol=0, atol=1e-5)
    # the default kernel is torch's bicubic, bit for bit as before the option existed ...
    bicubic = F.interpolate(F.interpolate(z, size=(8, 8), mode="bicubic", antialias=True, align_corners=False),
                            size=(48, 48), mode="bicubic", align_corners=False)
    assert torch.equal(lowpass(z, 6.0), bicubic) and torch.equal(lowpass(z, 6.0, kernel="bicubic"), bicubic)
    # ... and the two differ (the a = -0.75 vs -0.5 cubic up, repeated vs mirrored edges)
    assert (lowpass(z, 6.0) - released).abs().max() > 1e-2


@pytest.mark.parametrize("factor,side", [(2.0, 16), (3.0, 12), (2.5, 16), (6.0, 24), (1.5, 16), (4.0, 10)])
def test_resizer_lowpass_at_other_factors(factor, side):
    """Any factor > 1 (the small side round(side / factor), the Resizer given both lengths), any batch shape."""
    from gess.generation.filters import lowpass

    z = torch.randn(3, 2, side, side + 4, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(lowpass(z, factor, kernel="resizer"), phi(z, factor, "resizer"), rtol=0, atol=1e-5)
    assert torch.equal(lowpass(z, 1.0, kernel="resizer"), z)
    assert lowpass(z.double(), factor, kernel="resizer").dtype == torch.float64


def test_the_kernel_is_a_cs_option():
    from gess.errors import GessInputError
    from gess.generation.cs import CSOptions

    assert CSOptions().lowpass_kernel == "bicubic"                       # the default (paper) preset
    assert CSOptions(preset="released").lowpass_kernel == "resizer"      # as released
    assert CSOptions(preset="released", lowpass_kernel="bicubic").lowpass_kernel == "bicubic"
    assert CSOptions(preset="released").substitution()["lowpass_kernel"] == "resizer"
    with pytest.raises(GessInputError):
        CSOptions(lowpass_kernel="lanczos")


@pytest.mark.parametrize("t,t_prev", [(500, 333), (166, -1)])
def test_one_cs_step_is_eq_9(t, t_prev):
    """One substitution (paper preset: reference noised to t-1, no decay, weight pi_s) at 1e-6."""
    from gess.generation.cs import ComponentSubstitution, CSOptions

    gen = torch.Generator().manual_seed(1)
    z_prev = torch.randn(3, 4, 16, 16, generator=gen)           # x'_{t-1}: the semantic-conditioned update
    ref = torch.randn(3, 4, 16, 16, generator=gen)              # s: the structural reference latent
    pi_s = np.array([0.0, 0.35, 1.0], np.float32)
    seeds = [21, 22, 23]
    cs = ComponentSubstitution(ref, pi_s, CSOptions(preset="paper", lowpass_factor=2.0), steps=6, seed=seeds)
    ours = cs(0, t, t_prev, z_prev, scheduler())

    (eps,) = first_draws(seeds, ref.shape[1:])
    expected = ilvr_substitution(z_prev, q_sample(ref, t_prev, eps, alphas_cumprod()), pi_s, 2.0)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours[0], z_prev[0], rtol=0, atol=0)  # pi_s = 0 leaves the sample alone
    # pi_s = 1 is ILVR itself: x'_{t-1} + phi(y_{t-1}) - phi(x'_{t-1})
    y = q_sample(ref, t_prev, eps, alphas_cumprod())
    torch.testing.assert_close(ours[2], (z_prev + phi(y, 2.0) - phi(z_prev, 2.0))[2], rtol=0, atol=1e-6)


class ToyBackend:
    """A deterministic noise predictor behind the backend interface: the loop, not a network, is under test."""

    name = "toy"
    device = torch.device("cpu")

    def __init__(self):
        self.scheduler = scheduler()

    def latent_shape(self):
        return (2, 12, 12)

    def predict_noise(self, z, t, cond):
        tt = t.double().view(-1, 1, 1, 1) / T_TRAIN
        return (0.4 * torch.tanh(z.double()) + cond.double().view(-1, 2, 1, 1) * (1 - tt) + 0.1 * tt).float()


def reference_loop(cond, seeds, steps, guidance, ref, pi_s, factor, fraction, tau, noise_at, cs_seeds, kernel="bicubic"):
    """DDIM (eta = 0) with classifier-free guidance (zero embedding unconditional) and the substitution above."""
    backend = ToyBackend()
    abar = alphas_cumprod()
    ratio = T_TRAIN // steps
    timesteps = [(steps - 1 - i) * ratio for i in range(steps)]  # 'leading' spacing
    active = int(fraction * steps) or steps
    gens = [torch.Generator().manual_seed(int(s)) for s in cs_seeds]
    z = torch.stack([torch.randn(backend.latent_shape(), generator=torch.Generator().manual_seed(s)) for s in seeds])
    for i, t in enumerate(timesteps):
        tt = torch.full((len(z),), t)
        uncond = backend.predict_noise(z, tt, torch.zeros_like(cond)).double()
        eps = uncond + guidance * (backend.predict_noise(z, tt, cond).double() - uncond)
        t_prev = t - ratio
        a_t, a_prev = abar[t], (abar[t_prev] if t_prev >= 0 else abar[0])  # set_alpha_to_one=False
        x0 = (z.double() - np.sqrt(1 - a_t) * eps) / np.sqrt(a_t)
        z = (np.sqrt(a_prev) * x0 + np.sqrt(1 - a_prev) * eps).float()
        if i < active:
            w = np.asarray(pi_s, np.float64) * np.exp(-tau * i)
            noise = torch.stack([torch.randn(ref.shape[1:], generator=g) for g in gens])
            y = q_sample(ref, t_prev if noise_at == "previous" else t, noise, abar)
            z = ilvr_substitution(z, y, w, factor, kernel)
    return z


@pytest.mark.parametrize("preset,steps", [("paper", 6), ("released", 40)])
def test_cs_sampling_loop_is_ddim_plus_eq_9(preset, steps):
    from gess.generation.cs import PRESETS, ComponentSubstitution, CSOptions
    from gess.generation.sampling import sample

    backend = ToyBackend()
    cond = torch.tensor([[0.3, -0.2], [-0.5, 0.1]])
    ref = torch.randn(2, 2, 12, 12, generator=torch.Generator().manual_seed(3))
    pi_s = np.array([0.6, 1.0], np.float32)
    options = CSOptions(preset=preset, lowpass_factor=3.0 if preset == "released" else None)
    cs = ComponentSubstitution(ref, pi_s, options, steps=steps, seed=[31, 32])
    ours = sample(backend, cond, [4, 5], steps=steps, guidance_scale=5.0, substitution=cs)

    p = {**PRESETS[preset], "lowpass_factor": options.lowpass_factor}
    assert p["lowpass_kernel"] == ("resizer" if preset == "released" else "bicubic")
    expected = reference_loop(cond, [4, 5], steps, 5.0, ref, pi_s, p["lowpass_factor"], p["fraction"], p["tau"],
                              p["noise_at"], [31, 32], p["lowpass_kernel"])
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)  # float32 over 40 steps vs float64; |z| ~ 30
    plain = reference_loop(cond, [4, 5], steps, 5.0, ref, np.zeros(2), 3.0, 1.0, 0.0, "previous", [31, 32])
    assert (ours - plain).abs().max() > 1e-2  # the substitution did act
