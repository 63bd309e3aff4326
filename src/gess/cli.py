"""The ``gess`` command line (contract: docs/cli.md). Exit 0 done, 2 bad input, 1 anything else."""
from __future__ import annotations

import signal
import sys
import traceback
from pathlib import Path
from typing import Optional

try:  # Ctrl-C while the modules load (`gess` imports this first): the documented line, no traceback
    import click
    import typer

    from gess.data.extra import ExtraImages
    from gess.data.nsd_prepare import NSDPrepareOptions
    from gess.decoding import GESSDecoder
    from gess.decoding.gating import DEFAULT_GATE, check_gate
    from gess.decoding.selfsupervised import SelfSupervisedOptions
    from gess.decoding.structural import StructureOptions
    from gess.encoders import DEFAULT_ENCODER
    from gess.errors import GessInputError
    from gess.evaluation.registry import PROTOCOLS
    from gess.generation.cs import CSOptions
    from gess.generation.gg import GGOptions
    from gess.generation.methods import METHODS
    from gess.generation.sampling import SamplingOptions
    from gess.generation.train import TrainOptions
    from gess.options import flags_from
    from gess.plugins import load_plugins
except KeyboardInterrupt:
    print("gess: interrupted; finished outputs are kept and a re-run resumes", file=sys.stderr)
    raise SystemExit(130) from None

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="GESS: reconstruct seen images from fMRI, and say which reconstructions to trust.")

FORMAT_OPTION = typer.Option("auto", "--format", help="auto | mat | god | nsd | folder")
ENCODER_OPTION = typer.Option(DEFAULT_ENCODER, "--encoder", help="a registered encoder (efficientnet-lite0, clip, ...) "
                              "or a source one of them takes (a CLIP model directory or hub id)")


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _read_yaml(path: Path) -> dict:
    import yaml

    if not path.is_file():
        raise GessInputError(path, None, "an existing YAML config file", "no such file")
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise GessInputError(path, None, "valid YAML", f"a parse error ({str(exc).splitlines()[0]})") from None


@app.command()
@flags_from(GESSDecoder, "decoder_flags", skip=("self_supervised",))
@flags_from(StructureOptions, "structure_flags", prefix="structure-")
@flags_from(SelfSupervisedOptions, "ss_flags", prefix="ss-")
def fit(
    data: Path = typer.Option(..., "--data", help="dataset file or directory"),
    out: Path = typer.Option(..., "--out", help="model directory to write"),
    format: str = FORMAT_OPTION,
    encoder: str = ENCODER_OPTION,
    augment: Optional[Path] = typer.Option(None, "--augment", help="folder of extra images sampling the semantic manifold"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of GESSDecoder options (flags override it)"),
    extra_images: Optional[Path] = typer.Option(
        None, "--extra-images", help="images without fMRI for the self-supervised M_s's image cycle: a folder, or an "
        ".npz with an 'images' array (refused if it holds a test stimulus)"),
    decoder_flags: dict = None,
    structure_flags: dict = None,
    ss_flags: dict = None,
):
    """Fit the semantic, structural and gating decoders; write safetensors + config.json."""
    from gess import stages
    from gess.data import load_dataset
    from gess.data.images import load_image_folder
    from gess.encoders import get_encoder
    from gess.options import build, validated_kwargs

    options = validated_kwargs(GESSDecoder, _read_yaml(config), config) if config else {}
    options.update(decoder_flags)
    if ss_flags:
        options["self_supervised"] = {**(options.get("self_supervised") or {}), **ss_flags}
    if extra_images is not None and options.get("structural_decoder") != "self-supervised":
        raise GessInputError(extra_images, "--extra-images", "--structural-decoder self-supervised (only it learns "
                             "from images without fMRI)", f"--structural-decoder {options.get('structural_decoder', 'ridge')}")
    gate_source = "--gate-options" if "gate_options" in decoder_flags else "--gate" if "gate" in decoder_flags else config
    check_gate(options.get("gate", DEFAULT_GATE), options.get("gate_options"), gate_source)
    structure = build(StructureOptions, structure_flags, "--structure-*")
    from gess.io import claim_output_dir

    console = _console()
    enc = get_encoder(encoder)  # fail on a bad encoder or output before reading any data
    claim_output_dir(out, "model")
    dataset = load_dataset(data, format)
    console.print(dataset.summary())
    augment_images = load_image_folder(augment, size=dataset.train.images.shape[1])[0] if augment else None
    extra = ExtraImages.read(extra_images).refuse_test_stimuli(dataset) if extra_images is not None else None
    stages.fit_decoders(dataset, out, enc, options, structure, augment_images, console, extra)


@app.command()
def decode(
    model: Path = typer.Option(..., "--model", help="directory written by `gess fit`"),
    data: Path = typer.Option(..., "--data", help="dataset file or directory"),
    out: Path = typer.Option(..., "--out", help="output directory"),
    format: str = FORMAT_OPTION,
):
    """Decode the test fMRI: DIR/decoded.npz with c_prime, c, s, pi_c, stimulus_ids."""
    import numpy as np

    from gess import stages
    from gess.data import load_dataset
    from gess.io import claim_output_dir, save_npz

    claim_output_dir(out, "decoded")  # a directory of the user's or of another kind is refused before any work
    decoder = GESSDecoder.load(model)
    dataset = load_dataset(data, format)
    result, ids = stages.decode(decoder, dataset)
    save_npz(out / "decoded.npz", c_prime=result.c_prime, c=result.c, s=result.s, pi_c=result.pi_c,
             c_raw=result.c_raw, stimulus_ids=np.asarray(ids).astype(str))
    _console().print(f"[green]decoded {len(ids)} test stimuli[/green] -> {out / 'decoded.npz'} "
                     f"(pi_c from {result.pi_c.min():.2f} to {result.pi_c.max():.2f})")


@app.command()
def split(
    images: Path = typer.Option(..., "--images", help="folder of images or a dataset path"),
    out: Path = typer.Option(..., "--out", help="split.json to write (its figure goes beside it as .png)"),
    encoder: str = ENCODER_OPTION,
    clusters: int = typer.Option(20, "--clusters", min=2),
    method: str = typer.Option("kernighan-lin", "--method", help="kernighan-lin | stoer-wagner | random"),
    train_side: str = typer.Option("larger", "--train-side", help="larger | smaller"),
    min_test_fraction: float = typer.Option(0.0, "--min-test-fraction", help="a share in [0, 1)"),
    seed: int = typer.Option(0, "--seed", min=0),
):
    """The generalized split: K-means clusters cut in two by a minimum cut of their cosine graph."""
    from gess import stages
    from gess.data.images import load_image_folder
    from gess.encoders import get_encoder
    from gess.io import write_owned_json
    from gess.report.figures import save_split_figure
    from gess.split import SPLIT_KIND, check_split_options, claim_split_files, generalized_split, nearest_train_similarity

    check_split_options(clusters, method, train_side, min_test_fraction, seed)  # before any image is encoded
    out, figure = claim_split_files(out)
    pics, ids = load_image_folder(images)
    emb = stages.encode_images(get_encoder(encoder), pics)
    result = generalized_split(emb, ids, clusters, method, train_side, min_test_fraction, seed)
    control = generalized_split(emb, ids, clusters, "random", train_side, min_test_fraction, seed)
    payload = result.to_json()
    payload["encoder"] = encoder
    payload["nearest_train_similarity"] = {"this_split": nearest_train_similarity(emb, ids, result),
                                           "random_split_same_sizes": nearest_train_similarity(emb, ids, control)}
    write_owned_json(out, payload, SPLIT_KIND)
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
    protocol: str = typer.Option("paper", "--protocol", help=" | ".join(PROTOCOLS) + " (docs/evaluation.md)"),
    format: str = FORMAT_OPTION,
    encoder: str = typer.Option(DEFAULT_ENCODER, "--encoder", help="encoder of twoway_embedding when CLIP is absent"),
    clip: Optional[str] = typer.Option(None, "--clip", help="CLIP ViT-L/14 directory or hub id (cache only)"),
    weights_dir: Optional[Path] = typer.Option(None, "--weights-dir", help="folder of the metric networks' weight files"),
    trials: int = typer.Option(10, "--trials", min=1),
    seed: int = typer.Option(0, "--seed", min=0),
    allow_partial: bool = typer.Option(False, "--allow-partial", help="score the reconstructions present when some "
                                       "are missing (marked partial in the metrics file and the table)"),
    decoded: Optional[Path] = typer.Option(None, "--decoded", help="decoded.npz of `gess decode`: adds MindEye's top-1 "
                                           "retrieval of its c_prime (needs the decoders' --encoder)"),
):
    """Score reconstructions against the test stimuli with a named protocol."""
    from gess import stages
    from gess.data import load_dataset
    from gess.encoders import get_encoder
    from gess.evaluation.scoring import claim_metrics_file, print_summary

    claim_metrics_file(out)  # a file of the user's is refused before the dataset is read
    dataset = load_dataset(data, format)
    clip_encoder = _optional_clip(clip)
    result = stages.evaluate(recon, dataset, protocol, out=out, encoder=get_encoder(encoder), clip_encoder=clip_encoder,
                             weights_dir=weights_dir, trials=trials, seed=seed, allow_partial=allow_partial,
                             decoded=decoded)
    print_summary(result, _console())
    if "retrieval" in result:
        r = result["retrieval"]
        _console().print(f"retrieval (top-1 among {r['candidates']}, {r['repeats']} draws): image {r['image']:.1%}, "
                         f"brain {r['brain']:.1%} (chance {r['chance']:.1%})")


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


@prior_app.command("train")
@flags_from(TrainOptions, "training")
def prior_train(
    images: Path = typer.Option(..., "--images", help="folder of images, or a dataset (its training stimuli)"),
    out: Path = typer.Option(..., "--out", help="prior directory to write"),
    format: str = FORMAT_OPTION,
    encoder: str = ENCODER_OPTION,
    extra_images: Optional[Path] = typer.Option(
        None, "--extra-images", help="more training images without fMRI: a folder, or an .npz with an 'images' array "
        "(refused if it holds a test stimulus of the dataset given to --images)"),
    training: dict = None,
):
    """Train the pixel prior (resumes from OUT/checkpoint after an interruption; an up-to-date prior is kept)."""
    from gess import stages
    from gess.encoders import get_encoder
    from gess.options import build

    options = build(TrainOptions, training, "--steps/--batch-size/...")
    enc = get_encoder(encoder)
    pics, dataset = stages.training_images(images, format)
    extra = ExtraImages.read(extra_images) if extra_images is not None else None
    pics = stages.with_extra_images(pics, extra, dataset, options.max_extra_images, options.seed, _console())
    stages.train_prior(pics, out, enc, options, _console())
    _console().print(f"[green]prior ready in {out}[/green]")


@app.command()
@flags_from(SamplingOptions, "sampling")
@flags_from(CSOptions, "cs", prefix="cs-")
@flags_from(GGOptions, "gg", prefix="gg-")
def reconstruct(
    model: Path = typer.Option(..., "--model", help="directory written by `gess fit`"),
    data: Path = typer.Option(..., "--data"),
    out: Path = typer.Option(..., "--out"),
    generator: Optional[str] = typer.Option(None, "--generator", help="a trained pixel prior or a Stable unCLIP directory"),
    method: str = typer.Option("cs", "--method", help=" | ".join(METHODS)),
    seed: int = typer.Option(0, "--seed", min=0, help="seed of the first stimulus; the i-th gets seed + i"),
    format: str = FORMAT_OPTION,
    device: Optional[str] = typer.Option(None, "--device", help="torch device (default: $GESS_DEVICE, else cpu)"),
    sampling: dict = None,
    cs: dict = None,
    gg: dict = None,
):
    """Generate DIR/<stimulus_id>.png per test stimulus and DIR/manifest.json; a re-run skips finished images."""
    import os

    from gess import stages
    from gess.data import load_dataset
    from gess.device import validate_device
    from gess.options import build

    if device is not None:  # launched workers read it too (and the process group's backend: gloo on the CPU)
        os.environ["GESS_DEVICE"] = validate_device(device, "--device")
    options = (build(SamplingOptions, sampling, "--steps/--guidance-scale/..."), build(CSOptions, cs, "--cs-*"),
               build(GGOptions, gg, "--gg-*"))
    decoder = GESSDecoder.load(model, device=device)
    dataset = load_dataset(data, format)
    done = stages.reconstruct(decoder, dataset, out, method, generator, seed, *options, device=device, console=_console())
    others = f", {done['other_processes']} left to the other processes" if done.get("other_processes") else ""
    _console().print(f"[green]{done['generated']} generated, {done['skipped']} already there{others}[/green] -> {out}")


prepare_app = typer.Typer(no_args_is_help=True, help="Turn a public data release into gess's layout.")
app.add_typer(prepare_app, name="prepare")


@prepare_app.command("nsd")
@flags_from(NSDPrepareOptions, "preparation")
def prepare_nsd(
    nsd_root: Path = typer.Option(..., "--nsd-root", help="the NSD release (nsddata/, nsddata_betas/, nsddata_stimuli/)"),
    out: Path = typer.Option(..., "--out", help="directory to write the subject's arrays into"),
    preparation: dict = None,
):
    """NSD's single-trial betas -> z-scored nsdgeneral betas averaged over repeats, stimuli, ids (resumes)."""
    from gess.data.nsd_prepare import prepare_nsd as prepare
    from gess.options import build

    prepare(nsd_root, out, build(NSDPrepareOptions, preparation, "--subject/--sessions/..."), _console())


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


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@app.callback()
def _global_options(
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for torch (default: $GESS_THREADS, else "
                                          "the CPUs this process may use less the current load, at least 1)"),
    processes: Optional[int] = typer.Option(None, "--processes", help="start N worker processes on this machine "
                                            "(as `accelerate launch --num_processes N` would); each reconstructs its "
                                            "share of the stimuli"),
):
    """GESS: reconstruct seen images from fMRI, and say which reconstructions to trust."""
    from gess.progress import set_threads

    set_threads(threads)


def _relaunch(argv: list[str]) -> None:
    """``gess --processes N ...`` outside a launcher: start N workers of the same command and wait for them."""
    import os

    from gess.parallel import launch_processes

    flag = next((a for a in argv if a == "--processes" or a.startswith("--processes=")), None)
    if flag is None:
        return
    i = argv.index(flag)
    value, rest = (argv[i + 1:i + 2], argv[:i] + argv[i + 2:]) if flag == "--processes" else \
        ([flag.partition("=")[2]], argv[:i] + argv[i + 1:])
    try:
        n = int(value[0])
    except (IndexError, ValueError):
        n = 0
    if n < 1:
        raise GessInputError("--processes", None, "a whole number of processes, at least 1", repr(value[0] if value else None))
    if n > 1 and int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        sys.exit(launch_processes(n, rest))


INTERRUPTED = "gess: interrupted; finished outputs are kept and a re-run resumes"


def main(argv: list[str] | None = None) -> None:
    """Entry point: bad input exits 2 with one line on stderr, other failures exit 1, Ctrl-C exits 130."""
    try:
        _main(argv)
    except KeyboardInterrupt:  # at any point: start-up, plugin loading, argument parsing, an error's report
        _exit(130)


def _exit(status: int) -> None:
    """Exit with ``status``; 130 (interrupted, however it arrived) says so in its one line."""
    if status == 130:
        print(INTERRUPTED, file=sys.stderr)
    sys.exit(status)


def _error(text: str) -> None:
    """One line on stderr, however many lines ``text`` (a path holding a newline) would make."""
    from gess.errors import one_line

    print(f"gess: error: {one_line(text)}", file=sys.stderr)


def _main(argv: list[str] | None) -> None:
    usage_errors = (click.ClickException, typer.exceptions.TyperException)  # typer >= 0.29 carries its own click
    try:
        signal.signal(signal.SIGTERM, _interrupt)  # a pre-empted job stops like Ctrl-C: checkpoints are written
        argv = list(sys.argv[1:] if argv is None else argv)
        load_plugins()
        _relaunch(argv)
        result = app(args=argv, standalone_mode=False, prog_name="gess")
        _exit(result if isinstance(result, int) else 0)  # typer returns a KeyboardInterrupt in a command as 130
    except GessInputError as exc:
        _error(str(exc))
        sys.exit(2)
    except (click.exceptions.Exit, typer.Exit) as exc:
        _exit(exc.exit_code)
    except (click.exceptions.Abort, typer.Abort, KeyboardInterrupt):
        _exit(130)
    except usage_errors as exc:  # a wrong flag or flag value: one line, like every bad input
        _error(exc.format_message())
        sys.exit(2)
    except OSError as exc:
        if exc.filename is None:
            traceback.print_exc()
            sys.exit(1)
        from gess.errors import user_path

        _error(f"{user_path(exc.filename)}: expected a readable or writable place, got {exc.strerror}")
        sys.exit(2)
    except Exception:
        traceback.print_exc()
        sys.exit(1)


if __name__ == "__main__":
    main()
