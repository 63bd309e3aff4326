"""The named protocol variants (paper, mindeye, mindeye2, brain-diffuser): each one's SSIM reading and resizes
against an independent computation written out here, the details a metrics file records, the CLI's choices."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gess.evaluation import evaluate
from gess.evaluation.metrics import protocol_details, ssim
from gess.evaluation.registry import PROTOCOL_IMAGES, PROTOCOLS, MetricContext, to_tensor

from conftest import write_mat
from test_cli_errors import assert_one_line_error, run_cli


# ------------------------------------------------------------------ SSIM written out by hand
def _grey(x: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) -> (N, H, W) float64 grey, with rgb2gray's (ITU-R 709) weights."""
    x = x.double().numpy()
    return 0.2125 * x[:, 0] + 0.7154 * x[:, 1] + 0.0721 * x[:, 2]


def _kernel() -> np.ndarray:
    """The 11-tap Gaussian, sigma 1.5 (radius int(3.5 * 1.5 + 0.5) = 5), normalised."""
    k = np.exp(-0.5 * (np.arange(-5, 6) / 1.5) ** 2)
    return k / k.sum()


def _filter(x: np.ndarray, axis: int) -> np.ndarray:
    """Correlate with the kernel along ``axis``, half-sample symmetric padding (scipy's 'reflect')."""
    k = _kernel()
    pad = [(0, 0)] * x.ndim
    pad[axis] = (5, 5)
    xp = np.pad(x, pad, mode="symmetric")
    n = x.shape[axis]
    return sum(w * np.take(xp, np.arange(j, j + n), axis=axis) for j, w in enumerate(k))


def _ssim_map(a: np.ndarray, b: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    def blur(x):
        for ax in axes:
            x = _filter(x, ax)
        return x

    ua, ub = blur(a), blur(b)
    va, vb, vab = blur(a * a) - ua**2, blur(b * b) - ub**2, blur(a * b) - ua * ub
    c1, c2 = 0.01**2, 0.03**2
    return (2 * ua * ub + c1) * (2 * vab + c2) / ((ua**2 + ub**2 + c1) * (va + vb + c2))


def ssim_2d_by_hand(gt: torch.Tensor, rec: torch.Tensor) -> np.ndarray:
    """The suite's SSIM: a 2-D Gaussian window, the map without its 5-pixel border averaged."""
    return np.array([_ssim_map(a, b, (0, 1))[5:-5, 5:-5].mean() for a, b in zip(_grey(gt), _grey(rec))])


def ssim_columns_by_hand(gt: torch.Tensor, rec: torch.Tensor, loop: bool = True) -> np.ndarray:
    """scikit-image 0.17.2's multichannel=True on grey (H, W): each column alone, a 1-D window down it,
    its 5-pixel ends dropped; the columns' SSIMs averaged (``loop`` False: all columns at once, the same sum)."""
    out = []
    for a, b in zip(_grey(gt), _grey(rec)):
        if loop:
            cols = [_ssim_map(a[:, j], b[:, j], (0,))[5:-5].mean() for j in range(a.shape[1])]
        else:
            cols = _ssim_map(a, b, (0,))[5:-5].mean(0)
        out.append(np.mean(cols))
    return np.array(out)


def ssim_rows_by_hand(gt, rec):
    return ssim_columns_by_hand(gt.transpose(2, 3), rec.transpose(2, 3))


def pair(n=3, h=40, w=30, seed=0):
    """Smooth-ish random images and noisy copies, (N, 3, H, W) float in [0, 1], not square (axes tell apart)."""
    g = torch.Generator().manual_seed(seed)
    base = F.interpolate(torch.rand(n, 3, h // 4, w // 4, generator=g), size=(h, w), mode="bilinear", align_corners=False)
    rec = (base + 0.15 * torch.randn(n, 3, h, w, generator=g)).clamp(0, 1)
    return base, rec


def chain(x: torch.Tensor, *sizes: int) -> torch.Tensor:
    for s in sizes:
        x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)
    return x


def test_the_suites_ssim_is_the_2d_window():
    gt, rec = pair()
    assert np.allclose(ssim(gt, rec), ssim_2d_by_hand(gt, rec), atol=1e-5)


def test_brain_diffusers_ssim_is_column_by_column():
    gt, rec = pair()
    got = ssim(gt, rec, "columns")
    assert np.allclose(got, ssim_columns_by_hand(gt, rec), atol=1e-9)
    # the reading matters: neither the 2-D window nor rows instead of columns give it
    assert np.abs(got - ssim_2d_by_hand(gt, rec)).min() > 1e-3
    assert np.abs(got - ssim_rows_by_hand(gt, rec)).min() > 1e-3


def test_an_unknown_ssim_reading_is_refused():
    gt, rec = pair(n=1)
    with pytest.raises(ValueError, match="columns"):
        ssim(gt, rec, "rows")


# ------------------------------------------------------------------ each protocol through evaluate
@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(3)
    gt = F.interpolate(torch.rand(2, 3, 12, 12, generator=g), size=(96, 96), mode="bilinear", align_corners=False)
    gt = gt + 0.2 * torch.rand(2, 3, 96, 96, generator=g)
    gt = (gt.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    rec = np.clip(gt.astype(int) + np.random.default_rng(0).integers(-50, 50, gt.shape), 0, 255).astype(np.uint8)
    results = {p: evaluate(gt, rec, p, weights_dir="/nonexistent") for p in PROTOCOLS}
    return to_tensor(gt), to_tensor(rec), results


@pytest.mark.parametrize("protocol,gt_sizes,rec_sizes,reading", [
    ("paper", (256, 425), (256, 425), "2d"),
    ("mindeye", (256, 425), (256, 425), "2d"),
    ("mindeye2", (224, 256, 425), (256, 425), "2d"),        # ground truths stored at 224 px first
    ("brain-diffuser", (425,), (425,), "columns"),          # 425 from the original, skimage 0.17.2's reading
])
def test_each_protocols_pixcorr_and_ssim(images, protocol, gt_sizes, rec_sizes, reading):
    gt, rec, results = images
    g, r = chain(gt, *gt_sizes), chain(rec, *rec_sizes)
    expected_ssim = ssim_columns_by_hand(g, r, loop=False) if reading == "columns" else ssim_2d_by_hand(g, r)
    expected_pixcorr = [np.corrcoef(a.double().flatten(), b.double().flatten())[0, 1] for a, b in zip(g, r)]
    per = results[protocol]["per_sample"]
    assert np.allclose([s["ssim"] for s in per], expected_ssim, atol=1e-5)
    assert np.allclose([s["pixcorr"] for s in per], expected_pixcorr, atol=1e-5)


def test_the_variants_read_the_same_images_differently(images):
    _, _, results = images
    ssims = {p: results[p]["metrics"]["ssim"] for p in PROTOCOLS}
    assert ssims["paper"] == ssims["mindeye"]
    assert len({ssims["mindeye"], ssims["mindeye2"], ssims["brain-diffuser"]}) == 3


def test_mindeye2_stores_its_ground_truths_at_224(images):
    gt, rec, _ = images
    ctx = MetricContext("mindeye2", gt, rec)
    g, r = ctx.pixel_pair()
    assert g.shape[-1] == r.shape[-1] == 425
    assert torch.allclose(g, chain(gt, 224, 256, 425)) and torch.allclose(r, chain(rec, 256, 425))
    assert not torch.allclose(g, chain(gt, 256, 425), atol=1e-3)
    ng, nr = ctx.network_pair()
    assert torch.allclose(ng, chain(gt, 224, 256)) and torch.allclose(nr, chain(rec, 256))
    assert PROTOCOL_IMAGES["mindeye2"].ground_truth_size == 224
    assert PROTOCOL_IMAGES["mindeye"].ground_truth_size is None


# ------------------------------------------------------------------ what the metrics file says
def test_the_metrics_dict_says_what_was_computed(images):
    _, _, results = images
    for p in PROTOCOLS:
        details = results[p]["protocol_details"]
        assert details == protocol_details(p) and json.loads(json.dumps(details)) == details
        assert details["reproduces"] and "bilinear" in details["resize"]
    me2 = results["mindeye2"]["protocol_details"]
    assert me2["ground_truth_size"] == 224 and me2["reproduces"] == "MindEye2"
    assert me2["pixel_metrics"]["ground_truth_resizes"] == [224, 256, 425]
    assert me2["pixel_metrics"]["reconstruction_resizes"] == [256, 425]
    assert me2["networks"]["input"]["inception"] == 342 and me2["networks"]["input"]["alexnet2"] == 256
    bd = results["brain-diffuser"]["protocol_details"]
    assert bd["ground_truth_size"] is None and bd["pixel_metrics"]["ssim_reading"] == "columns"
    assert "0.17.2" in bd["pixel_metrics"]["ssim"] and bd["pixel_metrics"]["ground_truth_resizes"] == [425]
    assert set(v for k, v in bd["networks"]["input"].items() if k != "clip") == {224}
    assert "networks" not in results["paper"]["protocol_details"]
    assert results["mindeye"]["protocol_details"]["pixel_metrics"]["ssim_reading"] == "2d"
    # the suite's networks are reported (here unavailable, with the reason) by mindeye2 as by mindeye
    assert set(results["mindeye2"]["unavailable"]) == set(results["mindeye"]["unavailable"]) >= {"alexnet2", "clip"}


# ------------------------------------------------------------------ the command line and run configs
def test_the_cli_offers_every_protocol_and_refuses_others(tmp_path, capsys, monkeypatch):
    from PIL import Image

    from gess.data import load_mat

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no metric network weights: reported unavailable
    data = tmp_path / "x.mat"
    write_mat(data, n_test=3, side=8)
    recon = tmp_path / "recon"
    recon.mkdir()
    for sid, img in zip(load_mat(data).test.stimulus_ids, load_mat(data).test.images):
        Image.fromarray(img[..., 0]).save(recon / f"{sid}.png")
    code, err = run_cli(["evaluate", "--recon", recon, "--data", data, "--out", tmp_path / "m.json", "--protocol",
                         "mindeye3"], capsys)
    assert_one_line_error(code, err, "protocol", "mindeye2", "brain-diffuser", "'mindeye3'")
    assert not (tmp_path / "m.json").exists()
    code, err = run_cli(["evaluate", "--recon", recon, "--data", data, "--out", tmp_path / "m.json", "--protocol",
                         "mindeye2"], capsys)
    assert code == 0, err
    written = json.loads((tmp_path / "m.json").read_text())
    assert written["protocol"] == "mindeye2" and written["protocol_details"]["ground_truth_size"] == 224


def test_the_cli_help_lists_the_registry():
    import typer

    from gess.cli import app

    command = typer.main.get_command(app).commands["evaluate"]
    option = next(p for p in command.params if "--protocol" in getattr(p, "opts", ()))
    assert option.help.startswith(" | ".join(PROTOCOLS)) and "mindeye2" in option.help


def test_a_run_config_takes_every_protocol_and_names_a_bad_one():
    from gess.errors import GessInputError
    from gess.runconfig import load_run_config

    for p in PROTOCOLS:
        assert load_run_config({"dataset": {"path": "x.mat"}, "protocol": p}).protocol == p
    with pytest.raises(GessInputError, match="protocol.*mindeye2"):
        load_run_config({"dataset": {"path": "x.mat"}, "protocol": "mindeye3"})
