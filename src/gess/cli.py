"""The ``gess`` command line (contract: spec/cli.md). Exit 0 done, 2 bad input, 1 anything else."""
from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Optional

import click
import typer

from gess.errors import GessInputError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="GESS: reconstruct seen images from fMRI, and say which reconstructions to trust.")

FORMAT_HELP = "auto | mat | god | nsd | folder"


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _read_config(path: Optional[Path], allowed: tuple[str, ...]) -> dict:
    if path is None:
        return {}
    import yaml

    if not path.is_file():
        raise GessInputError(path, None, "an existing YAML config file", "no such file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise GessInputError(path, None, "valid YAML", f"a parse error ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise GessInputError(path, None, "a mapping of option: value", type(data).__name__)
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise GessInputError(path, unknown[0], f"known keys ({', '.join(allowed)})", "an unknown key")
    return data


def _data_fingerprint(path: Path) -> list:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return [(str(f.relative_to(path.parent)), f.stat().st_size, int(f.stat().st_mtime)) for f in files[:10000]]


@app.command()
def fit(
    data: Path = typer.Option(..., "--data", help="dataset file or directory"),
    out: Path = typer.Option(..., "--out", help="model directory to write"),
    format: str = typer.Option("auto", "--format", help=FORMAT_HELP),
    encoder: str = typer.Option("efficientnet-lite0", "--encoder", help="efficientnet-lite0 | clip | a CLIP model directory"),
    augment: Optional[Path] = typer.Option(None, "--augment", help="folder of extra images sampling the semantic manifold"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of decoder options"),
    structure_size: Optional[int] = typer.Option(None, "--structure-size", help="side of the structural target (px)"),
):
    """Fit the semantic, structural and gating decoders; write safetensors + config.json."""
    from gess import api
    from gess.cache import fingerprint
    from gess.data import load_dataset
    from gess.encoders import get_encoder
    from gess.io import read_json

    options = _read_config(config, api.DECODER_OPTIONS)
    key = fingerprint(_data_fingerprint(data), format, encoder, options, structure_size,
                      _data_fingerprint(augment) if augment else None)
    if (out / "config.json").is_file() and read_json(out / "config.json").get("metadata", {}).get("fingerprint") == key:
        _console().print(f"[green]{out} is up to date[/green] (same data, encoder and options); nothing to do")
        return
    console = _console()
    enc = get_encoder(encoder)  # fail on a bad encoder before reading any data
    dataset = load_dataset(data, format)
    console.print(dataset.summary())
    space = api.default_structural_space(dataset, structure_size)
    model = api.fit(dataset, enc, augment_images=augment, structural_space=space, **options)
    model.metadata_["fingerprint"] = key
    model.save(out)
    console.print(f"[green]model written to {out}[/green] (gate: {model.gate_.name}, "
                  f"alpha_c {model.semantic_.ridge_.alpha_:g}, alpha_s {model.structural_.ridge_.alpha_:g})")


@app.command()
def decode(
    model: Path = typer.Option(..., "--model", help="directory written by `gess fit`"),
    data: Path = typer.Option(..., "--data", help="dataset file or directory"),
    out: Path = typer.Option(..., "--out", help="output directory"),
    format: str = typer.Option("auto", "--format", help=FORMAT_HELP),
):
    """Decode the test fMRI: DIR/decoded.npz with c_prime, c, s, pi_c, stimulus_ids."""
    import numpy as np

    from gess import api
    from gess.data import load_dataset
    from gess.io import save_npz
    from gess.model import GESSDecoder

    decoder = GESSDecoder.load(model)
    dataset = load_dataset(data, format)
    result, ids = api.decode(decoder, dataset)
    save_npz(out / "decoded.npz", c_prime=result.c_prime, c=result.c, s=result.s, pi_c=result.pi_c,
             c_raw=result.c_raw, stimulus_ids=np.asarray(ids).astype(str))
    _console().print(f"[green]decoded {len(ids)} test stimuli[/green] -> {out / 'decoded.npz'} "
                     f"(pi_c from {result.pi_c.min():.2f} to {result.pi_c.max():.2f})")


@app.command()
def split(
    images: Path = typer.Option(..., "--images", help="folder of images or a dataset path"),
    out: Path = typer.Option(..., "--out", help="split.json to write"),
    encoder: str = typer.Option("efficientnet-lite0", "--encoder"),
    clusters: int = typer.Option(20, "--clusters"),
    method: str = typer.Option("kernighan-lin", "--method", help="kernighan-lin | stoer-wagner | random"),
    train_side: str = typer.Option("larger", "--train-side", help="larger | smaller"),
    min_test_fraction: float = typer.Option(0.0, "--min-test-fraction"),
    seed: int = typer.Option(0, "--seed"),
):
    """The generalized split: K-means clusters cut in two by a minimum cut of their cosine graph."""
    from gess import api
    from gess.data.images import load_image_folder
    from gess.encoders import get_encoder
    from gess.io import write_json
    from gess.report.figures import save_split_figure
    from gess.split import generalized_split, nearest_train_similarity

    pics, ids = load_image_folder(images)
    emb = api.encode_images(get_encoder(encoder), pics)
    result = generalized_split(emb, ids, clusters, method, train_side, min_test_fraction, seed)
    control = generalized_split(emb, ids, clusters, "random", train_side, min_test_fraction, seed)
    payload = result.to_json()
    payload["encoder"] = encoder
    payload["nearest_train_similarity"] = {"this_split": nearest_train_similarity(emb, ids, result),
                                           "random_split_same_sizes": nearest_train_similarity(emb, ids, control)}
    write_json(out, payload)
    figure = out.with_suffix(".png")
    save_split_figure(emb, ids, result, figure)
    sim = payload["nearest_train_similarity"]
    _console().print(f"[green]{len(result.train)} train / {len(result.test)} test[/green], cut weight {result.cut_weight:.2f}; "
                     f"test-to-train nearest cosine {sim['this_split']:.3f} (random split: {sim['random_split_same_sizes']:.3f}) "
                     f"-> {out}, {figure}")


@app.command()
def evaluate(
    recon: Path = typer.Option(..., "--recon", help="directory of <stimulus_id>.png (from `gess reconstruct`)"),
    data: Path = typer.Option(..., "--data", help="the dataset whose test stimuli are the ground truth"),
    out: Path = typer.Option(..., "--out", help="metrics JSON to write"),
    protocol: str = typer.Option("paper", "--protocol", help="paper | mindeye | brain-diffuser"),
    format: str = typer.Option("auto", "--format", help=FORMAT_HELP),
    encoder: str = typer.Option("efficientnet-lite0", "--encoder", help="encoder of twoway_embedding when CLIP is absent"),
    clip: Optional[str] = typer.Option(None, "--clip", help="CLIP ViT-L/14 directory or hub id (cache only)"),
    weights_dir: Optional[Path] = typer.Option(None, "--weights-dir", help="folder of the metric networks' weight files"),
    trials: int = typer.Option(10, "--trials"),
    seed: int = typer.Option(0, "--seed"),
):
    """Score reconstructions against the test stimuli with a named protocol."""
    from gess.data import load_dataset
    from gess.encoders import get_encoder
    from gess.evaluation.report import evaluate_directory, print_summary

    dataset = load_dataset(data, format)
    clip_encoder = _optional_clip(clip)
    result = evaluate_directory(recon, dataset, protocol, encoder=get_encoder(encoder), clip_encoder=clip_encoder,
                                weights_dir=weights_dir, trials=trials, seed=seed, out=out)
    print_summary(result, _console())


def _optional_clip(clip: Optional[str]):
    """CLIP when given or cached; None (reported as unavailable) otherwise."""
    from gess.encoders.clip import DEFAULT_CLIP_ID, CLIPImageEncoder
    from gess.errors import MissingWeightsError

    try:
        return CLIPImageEncoder(clip or DEFAULT_CLIP_ID)
    except MissingWeightsError:
        if clip:
            raise
        return None


prior_app = typer.Typer(no_args_is_help=True, help="The embedding-conditioned pixel diffusion prior.")
app.add_typer(prior_app, name="prior")


def _training_images(path: Path, format: str):
    """Images of a folder, or the TRAINING stimuli of a dataset (never its test stimuli)."""
    from gess.data import load_dataset
    from gess.data.images import IMAGE_SUFFIXES, load_image_folder

    if path.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
        return load_image_folder(path)[0]
    return load_dataset(path, format).train.images


@prior_app.command("train")
def prior_train(
    images: Path = typer.Option(..., "--images", help="folder of images, or a dataset (its training stimuli)"),
    out: Path = typer.Option(..., "--out", help="prior directory to write"),
    format: str = typer.Option("auto", "--format", help=FORMAT_HELP),
    encoder: str = typer.Option("efficientnet-lite0", "--encoder"),
    steps: int = typer.Option(1200, "--steps"),
    batch_size: int = typer.Option(32, "--batch-size"),
    image_size: int = typer.Option(32, "--image-size"),
    extra_images: Optional[Path] = typer.Option(None, "--extra-images", help="more training images (a folder)"),
    seed: int = typer.Option(0, "--seed"),
):
    """Train the pixel prior (resumes from OUT/checkpoint after an interruption)."""
    import numpy as np

    from gess import api
    from gess.data.images import load_image_folder, resize_images, to_rgb
    from gess.encoders import get_encoder
    from gess.generation.train import TrainOptions, train_prior

    if (out / "model.safetensors").is_file() and not (out / "checkpoint").exists():
        _console().print(f"[green]{out} already holds a trained prior[/green]; delete it to train again")
        return
    enc = get_encoder(encoder)
    pics = _training_images(images, format)
    if extra_images is not None:
        extra = resize_images(load_image_folder(extra_images)[0], pics.shape[1])
        if pics.shape[-1] == 1:
            extra = extra.mean(-1, keepdims=True).astype(np.uint8)
        else:
            pics = to_rgb(pics)
        pics = np.concatenate([pics, extra])
    emb = api.encode_images(enc, pics)
    opts = TrainOptions(steps=steps, batch_size=batch_size, image_size=image_size, seed=seed)
    _console().print(f"training a {image_size}px prior on {len(pics)} images for {steps} steps")
    train_prior(pics, emb, out, enc.config()["name"], opts)
    _console().print(f"[green]prior written to {out}[/green]")


@app.command()
def reconstruct(
    model: Path = typer.Option(..., "--model", help="directory written by `gess fit`"),
    generator: Path = typer.Option(..., "--generator", help="a trained pixel prior or a Stable unCLIP directory"),
    data: Path = typer.Option(..., "--data"),
    out: Path = typer.Option(..., "--out"),
    method: str = typer.Option("cs", "--method", help="semantic | cs-equal | cs | gg"),
    steps: int = typer.Option(50, "--steps"),
    seed: int = typer.Option(0, "--seed"),
    format: str = typer.Option("auto", "--format", help=FORMAT_HELP),
    guidance_scale: float = typer.Option(5.0, "--guidance-scale"),
    batch_size: int = typer.Option(16, "--batch-size"),
    cs_preset: str = typer.Option("paper", "--cs-preset", help="paper | released"),
    cs_lowpass: Optional[float] = typer.Option(None, "--cs-lowpass", help="low-pass resize factor of F_s"),
    cs_fraction: Optional[float] = typer.Option(None, "--cs-fraction", help="share of steps that substitute"),
    cs_tau: Optional[float] = typer.Option(None, "--cs-tau", help="temporal decay of the CS weight"),
    cs_min_structure: Optional[float] = typer.Option(None, "--cs-min-structure",
                                                     help="floor on the gated structural weight pi_s of `cs`"),
    gg_scale: Optional[float] = typer.Option(None, "--gg-scale", help="gradient guidance scale"),
    device: str = typer.Option("cpu", "--device"),
):
    """Generate DIR/<stimulus_id>.png per test stimulus and DIR/manifest.json; a re-run skips finished images."""
    from gess.data import load_dataset
    from gess.model import GESSDecoder
    from gess.pipeline import reconstruct_to_directory

    decoder = GESSDecoder.load(model)
    dataset = load_dataset(data, format)
    done = reconstruct_to_directory(decoder, dataset, generator, out, method=method, steps=steps, seed=seed,
                                    guidance_scale=guidance_scale, batch_size=batch_size, cs_preset=cs_preset,
                                    cs_overrides=dict(lowpass_factor=cs_lowpass, fraction=cs_fraction, tau=cs_tau,
                                                     min_structure_weight=cs_min_structure),
                                    gg_scale=gg_scale, device=device)
    _console().print(f"[green]{done['generated']} generated, {done['skipped']} already there[/green] -> {out}")


@app.command()
def run(
    config: Path = typer.Argument(..., help="YAML config (see configs/)"),
    out: Path = typer.Option(..., "--out", help="output directory"),
):
    """Every stage the config names, then DIR/report.html; re-runs recompute only what changed."""
    from gess.run import run as run_pipeline

    run_pipeline(config, out, console=_console())


@app.command()
def demo(out: Path = typer.Option(Path("gess-demo"), "--out", help="output directory")):
    """The whole pipeline offline on the built-in default: simulated fMRI of scikit-learn's digits."""
    from gess.run import DEMO_CONFIG, run as run_pipeline

    console = _console()
    summary = run_pipeline(DEMO_CONFIG, out, console=console)
    console.print(f"[bold green]report: {(out / 'report.html').resolve()}[/bold green]")
    if "pi_c_auroc_inside_vs_outside" in summary:
        m = summary["mean_pi_c"]
        console.print(f"pi_c inside the training semantics {m['inside']:.2f} vs outside {m['outside']:.2f} "
                      f"(AUROC {summary['pi_c_auroc_inside_vs_outside']:.2f})")


def main(argv: list[str] | None = None) -> None:
    """Entry point: bad input exits 2 with one line on stderr, other failures exit 1."""
    try:
        result = app(args=argv, standalone_mode=False, prog_name="gess")
        sys.exit(result if isinstance(result, int) else 0)
    except GessInputError as exc:
        print(f"gess: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except (click.exceptions.Abort, KeyboardInterrupt):
        print("gess: interrupted; finished outputs are kept and a re-run resumes", file=sys.stderr)
        sys.exit(130)
    except Exception:
        traceback.print_exc()
        sys.exit(1)


if __name__ == "__main__":
    main()
