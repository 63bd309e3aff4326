"""Faults injected: a user's files in the way, concurrent writers, interruptions, corrupt files, odd data."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import write_mat
from test_cli_errors import assert_one_line_error, run_cli


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ok(args):
    from gess.cli import main

    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    assert exc.value.code == 0


# ------------------------------------------------------------------ a user's files are never lost
def test_fit_refuses_a_directory_holding_other_files(tmp_path, capsys):
    data = tmp_path / "x.mat"
    write_mat(data)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    code, err = run_cli(["fit", "--data", data, "--out", mine], capsys)
    assert_one_line_error(code, err, str(mine), "never deletes", "notes.txt")
    assert (mine / "notes.txt").read_text() == "my notes"


def test_fit_into_the_data_folder_is_refused(tmp_path, capsys):
    from conftest import write_folder_dataset

    folder = write_folder_dataset(tmp_path / "exp")
    before = sorted(p.name for p in folder.rglob("*"))
    code, err = run_cli(["fit", "--data", folder, "--out", folder], capsys)
    assert_one_line_error(code, err, str(folder), "never deletes")
    assert sorted(p.name for p in folder.rglob("*")) == before


def test_refit_replaces_only_what_gess_wrote(tmp_path):
    data = tmp_path / "x.mat"
    write_mat(data)
    model = tmp_path / "model"
    ok(["fit", "--data", data, "--out", model])
    (model / "README.txt").write_text("fitted for the lab meeting")
    ok(["fit", "--data", data, "--out", model, "--alpha-semantic", "10"])
    assert (model / "README.txt").read_text() == "fitted for the lab meeting"
    assert json.loads((model / "config.json").read_text())["params"]["alpha_semantic"] == 10.0


# ------------------------------------------------------------------ corrupt and odd inputs
@pytest.mark.parametrize("damage", ["truncated config", "empty weights", "truncated weights", "weights of another save"])
def test_damaged_model_directory_exits_2(tmp_path, capsys, damage):
    data = tmp_path / "x.mat"
    write_mat(data)
    model = tmp_path / "model"
    ok(["fit", "--data", data, "--out", model])
    if damage == "truncated config":
        text = (model / "config.json").read_text()
        (model / "config.json").write_text(text[: len(text) // 2])
        needle = "config.json"
    elif damage == "empty weights":
        (model / "model.safetensors").write_bytes(b"")
        needle = "model.safetensors"
    elif damage == "truncated weights":
        raw = (model / "model.safetensors").read_bytes()
        (model / "model.safetensors").write_bytes(raw[: len(raw) // 2])
        needle = "model.safetensors"
    else:
        other = tmp_path / "other"
        ok(["fit", "--data", data, "--out", other, "--alpha-semantic", "3"])
        (model / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
        needle = "another save"
    code, err = run_cli(["decode", "--model", model, "--data", data, "--out", tmp_path / "d"], capsys)
    assert_one_line_error(code, err, needle)


@pytest.mark.parametrize("command", ["fit", "decode", "prior", "evaluate"])
def test_unwritable_output_exits_2(tmp_path, capsys, command):
    data = tmp_path / "x.mat"
    write_mat(data)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    bad = blocker / "sub"
    if command == "fit":
        args = ["fit", "--data", data, "--out", bad]
    elif command == "decode":
        ok(["fit", "--data", data, "--out", tmp_path / "m"])
        args = ["decode", "--model", tmp_path / "m", "--data", data, "--out", bad]
    elif command == "prior":
        args = ["prior", "train", "--images", data, "--out", bad, "--steps", "1", "--image-size", "8",
                "--block-out-channels", "[8, 16]", "--batch-size", "2"]
    else:
        from gess.data import load_mat
        from PIL import Image

        recon = tmp_path / "recon"
        recon.mkdir()
        for sid, img in zip(load_mat(data).test.stimulus_ids, load_mat(data).test.images):
            Image.fromarray(img[..., 0]).save(recon / f"{sid}.png")
        args = ["evaluate", "--recon", recon, "--data", data, "--out", bad / "m.json"]
    code, err = run_cli(args, capsys)
    assert_one_line_error(code, err, str(blocker))


def test_zero_test_trials_exit_2(tmp_path, capsys):
    data = tmp_path / "x.mat"
    write_mat(data, fmriTest=np.zeros((0, 30)), stimTest=np.zeros((0, 64)))
    code, err = run_cli(["fit", "--data", data, "--out", tmp_path / "m"], capsys)
    assert_one_line_error(code, err, str(data))


def test_folder_images_of_mixed_sizes_exit_2(tmp_path, capsys):
    from PIL import Image

    from conftest import write_folder_dataset

    folder = write_folder_dataset(tmp_path / "exp")
    odd = sorted((folder / "images").iterdir())[1]
    Image.new("RGB", (13, 9)).save(odd)
    code, err = run_cli(["fit", "--data", folder, "--out", tmp_path / "m"], capsys)
    assert_one_line_error(code, err, odd.name, "image size", "13x9")


def test_repeated_images_in_a_mat_file_are_one_stimulus(tmp_path):
    """12 test trials of 10 distinct images: one id per image, repeats averaged, perfect reconstructions score 1."""
    from gess.data import load_mat
    from gess.evaluation import evaluate

    rng = np.random.default_rng(0)
    side = 8
    imgs = rng.integers(0, 256, (10, side, side)).astype(np.uint8)
    shown = np.concatenate([np.arange(10), [3, 7]])
    flat = np.stack([imgs[i].reshape(-1, order="F") for i in shown])
    data = tmp_path / "rep.mat"
    write_mat(data, n_test=12, fmriTest=rng.normal(size=(12, 30)), stimTest=flat)
    ds = load_mat(data)
    assert len(ds.test.stimulus_ids) == 10 and len(ds.test.fmri) == 12
    assert ds.test.trial_ids[10] == ds.test.trial_ids[3] and ds.test.trial_ids[11] == ds.test.trial_ids[7]
    averaged = ds.test.averaged()
    np.testing.assert_allclose(averaged.fmri[3], ds.test.fmri[[3, 10]].mean(0), rtol=1e-6)
    perfect = evaluate(averaged.images, averaged.images, "paper")
    assert perfect["metrics"]["twoway_rmse"] == 1.0 and perfect["metrics"]["twoway_sam"] == 1.0


def test_identical_ground_truths_are_never_each_others_candidate():
    from gess.evaluation.identification import distinct_stimuli, two_way_all_pairs, two_way_random

    rng = np.random.default_rng(0)
    gt = rng.random((6, 5, 5, 1))
    gt[4] = gt[1]  # one image under two ids
    distinct = distinct_stimuli(gt)
    d = np.abs(gt.reshape(6, -1)[:, None] - gt.reshape(6, -1)[None]).sum(-1)  # perfect reconstructions
    assert np.nanmean(two_way_random(d, 20, 0, distinct)) == 1.0
    assert np.nanmean(two_way_random(d, 20, 0)) < 1.0  # the tie counted as a failure before
    assert np.nanmean(two_way_all_pairs(gt, gt, distinct)) == 1.0


def test_evaluating_a_partial_directory_is_refused_unless_asked(tmp_path, capsys):
    from PIL import Image

    from gess.data import load_mat

    data = tmp_path / "x.mat"
    write_mat(data, n_test=4)
    test = load_mat(data).test
    recon = tmp_path / "recon"
    recon.mkdir()
    for sid, img in list(zip(test.stimulus_ids, test.images))[:3]:
        Image.fromarray(img[..., 0]).save(recon / f"{sid}.png")
    code, err = run_cli(["evaluate", "--recon", recon, "--data", data, "--out", tmp_path / "m.json"], capsys)
    assert_one_line_error(code, err, "1 missing", "test-0003", "--allow-partial")
    ok(["evaluate", "--recon", recon, "--data", data, "--out", tmp_path / "m.json", "--allow-partial"])
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["partial"] is True and metrics["missing"] == ["test-0003"] and metrics["n"] == 3


# ------------------------------------------------------------------ concurrent writers
def test_a_second_writer_is_refused_naming_the_lock(tmp_path, capsys):
    from gess.io import exclusive_lock

    data = tmp_path / "x.mat"
    write_mat(data)
    ok(["fit", "--data", data, "--out", tmp_path / "m"])
    out = tmp_path / "recon"
    ok(["reconstruct", "--model", tmp_path / "m", "--data", data, "--method", "structure", "--out", out])
    before = (out / "manifest.json").read_bytes()
    with exclusive_lock(out):  # a multi-process job rewriting this folder, its process 1 with nothing recorded yet
        (out / "manifest.part1.json").write_text("[]")
        code, err = run_cli(["reconstruct", "--model", tmp_path / "m", "--data", data, "--method", "structure",
                             "--out", out], capsys)
        assert (out / "manifest.part1.json").is_file() and (out / "manifest.json").read_bytes() == before  # untouched
    assert_one_line_error(code, err, ".gess.lock", "another gess process")
    ok(["reconstruct", "--model", tmp_path / "m", "--data", data, "--method", "structure", "--out", out])
    assert len(json.loads((out / "manifest.json").read_text())) == 4


# ------------------------------------------------------------------ interruption
def _tiny_prior_args(data, out, steps=8):
    return ["prior", "train", "--images", data, "--out", out, "--steps", str(steps), "--image-size", "8",
            "--block-out-channels", "[8, 16]", "--batch-size", "4", "--checkpoint-every", "3"]


def test_prior_resumed_after_an_interruption_ends_bit_identical(tmp_path, monkeypatch):
    """SIGTERM-style stop after step 2 and a crash after the step-6 checkpoint: both resume to the same weights."""
    import gess.generation.train as train

    data = tmp_path / "x.mat"
    write_mat(data, n_train=8, side=8)
    ok(_tiny_prior_args(data, tmp_path / "straight"))
    reference = sha(tmp_path / "straight" / "model.safetensors")

    calls = []
    real = train.deferred_interrupts

    class Stop:
        def __init__(self, after):
            self.after = after

        def __enter__(self):
            return lambda: calls.append(1) or len(calls) >= self.after

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(train, "deferred_interrupts", lambda: Stop(2))
    from gess.cli import main

    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in _tiny_prior_args(data, tmp_path / "stopped")])
    assert exc.value.code == 130
    state = json.loads((tmp_path / "stopped" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 2  # fewer steps than the checkpoint interval, and still saved
    monkeypatch.setattr(train, "deferred_interrupts", real)
    ok(_tiny_prior_args(data, tmp_path / "stopped"))
    assert sha(tmp_path / "stopped" / "model.safetensors") == reference
    assert not (tmp_path / "stopped" / "checkpoint").exists()


def test_prior_refuses_to_resume_with_other_options(tmp_path, capsys, monkeypatch):
    import gess.generation.train as train

    data = tmp_path / "x.mat"
    write_mat(data, n_train=8, side=8)

    class StopAtOnce:
        def __enter__(self):
            return lambda: True

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(train, "deferred_interrupts", lambda: StopAtOnce())
    run_cli(_tiny_prior_args(data, tmp_path / "p"), capsys)
    monkeypatch.undo()
    code, err = run_cli(_tiny_prior_args(data, tmp_path / "p", steps=12), capsys)
    assert_one_line_error(code, err, "checkpoint", "steps", "12")


def test_prior_rerun_with_other_options_trains_what_was_asked(tmp_path):
    data = tmp_path / "x.mat"
    write_mat(data, n_train=8, side=8)
    ok(_tiny_prior_args(data, tmp_path / "p", steps=4))
    first = sha(tmp_path / "p" / "model.safetensors")
    ok(_tiny_prior_args(data, tmp_path / "p", steps=4))  # up to date: kept
    assert sha(tmp_path / "p" / "model.safetensors") == first
    ok(_tiny_prior_args(data, tmp_path / "p", steps=5))
    assert json.loads((tmp_path / "p" / "config.json").read_text())["training"]["steps"] == 5


def _gess(args, env=None):
    return subprocess.Popen([sys.executable, "-m", "gess.cli", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env or {**os.environ, "GESS_THREADS": "1"})


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_reconstruct_resumes_to_identical_images(tmp_path, sig):
    data = tmp_path / "x.mat"
    write_mat(data, n_train=12, n_test=6, side=8)
    ok(["fit", "--data", data, "--out", tmp_path / "m"])
    ok(_tiny_prior_args(data, tmp_path / "p", steps=3))
    args = ["reconstruct", "--model", tmp_path / "m", "--data", data, "--generator", tmp_path / "p", "--steps", "40",
            "--batch-size", "1", "--method", "cs"]
    ok(args + ["--out", tmp_path / "straight"])
    proc = _gess(args + ["--out", tmp_path / "killed"])
    deadline = time.time() + 120
    while time.time() < deadline and len(list((tmp_path / "killed").glob("*.png"))) < 2:
        time.sleep(0.05)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    done_before = len(list((tmp_path / "killed").glob("*.png")))
    assert 0 < done_before < 6, "the kill landed before or after the run; nothing was tested"
    ok(args + ["--out", tmp_path / "killed"])
    for png in sorted((tmp_path / "straight").glob("*.png")):
        assert sha(png) == sha(tmp_path / "killed" / png.name), png.name
    leftovers = [p.name for p in (tmp_path / "killed").iterdir() if p.name.endswith(".tmp")]
    assert not leftovers
    manifest = json.loads((tmp_path / "killed" / "manifest.json").read_text())
    assert [m["stimulus_id"] for m in manifest] == [f"test-{i:04d}" for i in range(6)]


@pytest.mark.slow
def test_killed_prior_training_resumes_to_identical_weights(tmp_path):
    data = tmp_path / "x.mat"
    write_mat(data, n_train=8, side=8)
    args = _tiny_prior_args(data, tmp_path / "straight", steps=60)
    ok(args)
    proc = _gess(_tiny_prior_args(data, tmp_path / "killed", steps=60))
    ckpt = tmp_path / "killed" / "checkpoint" / "state.json"
    deadline = time.time() + 120
    while time.time() < deadline and not ckpt.exists():
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert ckpt.exists() and not (tmp_path / "killed" / "model.safetensors").exists()
    ok(_tiny_prior_args(data, tmp_path / "killed", steps=60))
    assert sha(tmp_path / "killed" / "model.safetensors") == sha(tmp_path / "straight" / "model.safetensors")
    assert not [p for p in (tmp_path / "killed").rglob("*") if p.name.endswith(".tmp")]


# ------------------------------------------------------------------ determinism
def test_same_seeds_same_outputs_run_after_run(tmp_path):
    data = tmp_path / "x.mat"
    write_mat(data, n_train=12, n_test=4, side=8)
    ok(_tiny_prior_args(data, tmp_path / "p", steps=3))
    digests = []
    for run in ("a", "b"):
        ok(["fit", "--data", data, "--out", tmp_path / run / "m"])
        ok(["decode", "--model", tmp_path / run / "m", "--data", data, "--out", tmp_path / run / "d"])
        ok(["reconstruct", "--model", tmp_path / run / "m", "--data", data, "--generator", tmp_path / "p", "--steps", "3",
            "--out", tmp_path / run / "r"])
        ok(["evaluate", "--recon", tmp_path / run / "r", "--data", data, "--out", tmp_path / run / "metrics.json"])
        with np.load(tmp_path / run / "d" / "decoded.npz") as z:
            arrays = {k: z[k].tobytes() for k in z.files}
        pngs = {p.name: sha(p) for p in (tmp_path / run / "r").glob("*.png")}
        metrics = json.loads((tmp_path / run / "metrics.json").read_text())["metrics"]
        digests.append((arrays, pngs, metrics))
    assert digests[0] == digests[1]


# ------------------------------------------------------------------ configs and feedback
def test_run_config_paths_resolve_relative_to_the_config_and_through_variables(tmp_path, monkeypatch):
    from gess.runconfig import load_run_config

    (tmp_path / "configs").mkdir()
    (tmp_path / "data").mkdir()
    write_mat(tmp_path / "data" / "x.mat")
    (tmp_path / "configs" / "a.yaml").write_text("dataset: {path: ../data/x.mat}\n")
    (tmp_path / "configs" / "b.yaml").write_text("dataset: {path: $MY_DATA/x.mat}\n")
    monkeypatch.chdir(tmp_path / "configs" / "..")
    monkeypatch.setenv("MY_DATA", str(tmp_path / "data"))
    assert Path(load_run_config(tmp_path / "configs" / "a.yaml").dataset.path).resolve() == tmp_path / "data" / "x.mat"
    assert Path(load_run_config(tmp_path / "configs" / "b.yaml").dataset.path) == tmp_path / "data" / "x.mat"


def test_progress_is_logged_when_stderr_is_not_a_terminal(capsys, monkeypatch):
    import gess.progress as progress

    monkeypatch.setattr(progress, "LOG_EVERY_SECONDS", 0.0)
    assert list(progress.progress_bar(range(3), "work")) == [0, 1, 2]
    err = capsys.readouterr().err
    assert "work: 1/3" in err and "work: 3/3" in err and "/s" in err


def test_the_progress_bar_draws_on_the_terminal_when_stdout_is_a_file(capsys, monkeypatch):
    import io

    import gess.progress as progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)  # stdout stays captured, as a file would be
    assert list(progress.progress_bar(range(3), "work")) == [0, 1, 2]
    assert "work" in terminal.getvalue() and "3/3" in terminal.getvalue()
    assert capsys.readouterr().out == ""


def test_a_command_on_a_terminal_draws_its_bar_there_and_exits_0(tmp_path):
    """A real pseudo-terminal on stderr, stdout redirected to a file (rich's speed is None at the first refresh:
    the bar once crashed every interactive command)."""
    import pty

    photos = _photos(tmp_path / "photos")
    leader, follower = pty.openpty()
    with open(tmp_path / "stdout.txt", "w") as stdout:
        done = subprocess.run([sys.executable, "-m", "gess.cli", "prior", "train", "--images", str(photos), "--out",
                               str(tmp_path / "p"), "--steps", "3", "--batch-size", "2", "--image-size", "8",
                               "--block-out-channels", "[8]"], stdout=stdout, stderr=follower, timeout=300)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: everything was read
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert done.returncode == 0, shown.decode(errors="replace")[-2000:]
    assert b"training prior" in shown and b"Traceback" not in shown
    assert "training prior" not in (tmp_path / "stdout.txt").read_text()


def test_threads_flag_and_default(monkeypatch):
    import torch

    from gess.progress import default_threads

    monkeypatch.setenv("GESS_THREADS", "1")
    assert default_threads() == 1
    monkeypatch.delenv("GESS_THREADS")
    assert 1 <= default_threads() <= os.cpu_count()
    from gess.cli import main

    with pytest.raises(SystemExit):
        main(["--threads", "1", "split", "--help"])
    assert torch.get_num_threads() == 1


# ------------------------------------------------------------------ more bad input
def test_constant_voxels_are_kept_with_a_warning(tmp_path):
    from gess.decoding import GESSDecoder

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 12))
    X[:, [2, 5]] = 4.0
    with pytest.warns(UserWarning, match="2 of 12 voxels are constant"):
        model = GESSDecoder(n_neighbors=3).fit(X, rng.normal(size=(30, 4)), rng.random((30, 2, 2, 1)))
    out = model.decode(rng.normal(size=(3, 12)))
    assert np.isfinite(out.c).all() and np.isfinite(out.s).all() and model.metadata_["constant_voxels"] == 2


@pytest.mark.parametrize("kind", ["npz", "yaml", "npy", "json"])
def test_truncated_files_of_each_kind_exit_2(tmp_path, capsys, kind):
    from conftest import write_folder_dataset

    if kind == "npz":
        folder = write_folder_dataset(tmp_path / "exp")
        raw = (folder / "fmri.npz").read_bytes()
        (folder / "fmri.npz").write_bytes(raw[: len(raw) // 2])
        args, needle = ["fit", "--data", folder, "--out", tmp_path / "m"], "fmri.npz"
    elif kind == "yaml":
        (tmp_path / "c.yaml").write_text("dataset: {path: [unclosed\n")
        args, needle = ["run", tmp_path / "c.yaml", "--out", tmp_path / "o"], "c.yaml"
    elif kind == "npy":
        nsd = tmp_path / "nsd"
        nsd.mkdir()
        for side in ("train", "test"):
            np.save(nsd / f"nsd_{side}_fmriavg_nsdgeneral_sub1.npy", np.zeros((4, 6), np.float32))
            np.save(nsd / f"nsd_{side}_stim_sub1.npy", np.zeros((4, 8, 8, 3), np.uint8))
        raw = (nsd / "nsd_train_fmriavg_nsdgeneral_sub1.npy").read_bytes()
        (nsd / "nsd_train_fmriavg_nsdgeneral_sub1.npy").write_bytes(raw[:100])
        args, needle = ["fit", "--data", nsd, "--format", "nsd", "--out", tmp_path / "m"], "nsd_train_fmriavg"
    else:
        data = tmp_path / "x.mat"
        write_mat(data)
        ok(["fit", "--data", data, "--out", tmp_path / "m"])
        ok(_tiny_prior_args(data, tmp_path / "p", steps=1))
        (tmp_path / "p" / "config.json").write_text('{"_class_name": "PixelPr')
        args, needle = ["reconstruct", "--model", tmp_path / "m", "--data", data, "--generator", tmp_path / "p",
                        "--out", tmp_path / "r"], "config.json"
    code, err = run_cli(args, capsys)
    assert_one_line_error(code, err, needle)


@pytest.mark.slow
def test_killed_run_resumes_to_identical_outputs(tmp_path, session_cache):
    import yaml

    from test_run import tiny_config

    cfg = tiny_config(methods=["structure", "semantic", "cs"])
    cfg["sampling"]["steps"] = 30
    cfg["sampling"]["batch_size"] = 1
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    env = {"GESS_CACHE": str(session_cache)}
    ok_run = lambda out: subprocess.run([sys.executable, "-m", "gess.cli", "run", str(tmp_path / "c.yaml"), "--out", str(out)],
                                        env={**os.environ, **env, "GESS_THREADS": "1"}, capture_output=True, check=True)
    ok_run(tmp_path / "straight")
    proc = _gess(["run", tmp_path / "c.yaml", "--out", tmp_path / "killed"], env={**os.environ, **env, "GESS_THREADS": "1"})
    deadline = time.time() + 300
    while time.time() < deadline and len(list((tmp_path / "killed" / "recon").glob("*/*.png"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    ok_run(tmp_path / "killed")
    straight = sorted((tmp_path / "straight" / "recon").glob("*/*.png"))
    assert straight
    for png in straight:
        assert sha(png) == sha(tmp_path / "killed" / png.relative_to(tmp_path / "straight")), png
    assert not [p for p in (tmp_path / "killed").rglob("*") if p.name.endswith(".tmp")]


# ------------------------------------------------------------------ ownership: a marker, never a file name
def _structure_args(tmp_path, data, out):
    return ["reconstruct", "--model", tmp_path / "m", "--data", data, "--method", "structure", "--out", out]


def test_a_web_apps_manifest_does_not_make_a_folder_gess_s(tmp_path, capsys):
    data = tmp_path / "x.mat"
    write_mat(data)
    ok(["fit", "--data", data, "--out", tmp_path / "m"])
    web = tmp_path / "web"
    web.mkdir()
    (web / "manifest.json").write_text('{"name": "my app", "icons": []}')
    (web / "test-0000.png").write_bytes(b"my logo")
    before = {p.name: sha(p) for p in web.iterdir()}
    code, err = run_cli(_structure_args(tmp_path, data, web), capsys)
    assert_one_line_error(code, err, str(web), "never deletes", "2 other entries")
    assert {p.name: sha(p) for p in web.iterdir()} == before


def test_run_refuses_a_folder_holding_the_users_report(tmp_path, capsys):
    import yaml

    from test_run import tiny_config

    (tmp_path / "c.yaml").write_text(yaml.safe_dump(tiny_config()))
    mine = tmp_path / "results"
    mine.mkdir()
    (mine / "report.html").write_text("<p>my report</p>")
    (mine / "metrics.json").write_text('{"accuracy": 0.9}')
    code, err = run_cli(["run", tmp_path / "c.yaml", "--out", mine], capsys)
    assert_one_line_error(code, err, str(mine), "never deletes")
    assert (mine / "report.html").read_text() == "<p>my report</p>" and sorted(p.name for p in mine.iterdir()) == \
        ["metrics.json", "report.html"]


def test_the_marker_names_the_kind_and_older_outputs_are_adopted(tmp_path, capsys):
    from gess.io import MARKER

    data = tmp_path / "x.mat"
    write_mat(data)
    ok(["fit", "--data", data, "--out", tmp_path / "m"])
    marker = json.loads((tmp_path / "m" / MARKER).read_text())
    assert marker["kind"] == "model" and len(marker["id"]) == 16
    code, err = run_cli(_structure_args(tmp_path, data, tmp_path / "m"), capsys)  # a model is not reconstructions
    assert_one_line_error(code, err, "a gess model directory")
    ok(_structure_args(tmp_path, data, tmp_path / "r"))
    (tmp_path / "r" / MARKER).unlink()  # as an older gess left it: adopted by its manifest's entries
    ok(_structure_args(tmp_path, data, tmp_path / "r"))
    assert json.loads((tmp_path / "r" / MARKER).read_text())["kind"] == "reconstruction"


def _photos(folder: Path, count: int = 6) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir()
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    return folder


def _without_kind(path: Path) -> None:
    """Make ``path`` look as an older gess wrote it: the same JSON, without the kind it now carries."""
    from gess.io import FILE_KIND

    content = json.loads(path.read_text())
    del content[FILE_KIND]
    path.write_text(json.dumps(content))


def test_split_never_overwrites_a_file_gess_did_not_write(tmp_path, capsys):
    import matplotlib.pyplot as plt

    photos = _photos(tmp_path / "photos")
    split = ["split", "--images", photos, "--clusters", "2", "--out"]
    mine = tmp_path / "notes.json"
    mine.write_text('{"my": "notes"}')
    code, err = run_cli(split + [mine], capsys)
    assert_one_line_error(code, err, str(mine), "a file gess did not write", "never overwrites")
    assert mine.read_text() == '{"my": "notes"}' and not (tmp_path / "notes.png").exists()

    out = tmp_path / "split.json"
    figure = tmp_path / "split.png"
    figure.write_bytes(b"my picture")  # the figure's name beside a new split.json: the user's
    code, err = run_cli(split + [out], capsys)
    assert_one_line_error(code, err, str(figure), "a file gess did not write")
    assert figure.read_bytes() == b"my picture" and not out.exists()
    figure.unlink()

    ok(split + [out])
    ok(split + [out])  # its own files are replaced
    _without_kind(out)
    plt.imsave(figure, np.zeros((4, 4)))  # as an older gess's matplotlib figure, without the kind
    ok(split + [out])  # an older gess's split and figure are adopted
    code, err = run_cli(split + [tmp_path / "s.png"], capsys)
    assert_one_line_error(code, err, "--out", "a JSON path")
    code, err = run_cli(split + [photos], capsys)
    assert_one_line_error(code, err, str(photos), "a directory")


def test_evaluate_never_overwrites_a_file_gess_did_not_write(tmp_path, capsys):
    data = tmp_path / "x.mat"
    write_mat(data)
    ok(["fit", "--data", data, "--out", tmp_path / "m"])
    ok(_structure_args(tmp_path, data, tmp_path / "r"))
    evaluate = ["evaluate", "--recon", tmp_path / "r", "--data", data, "--out"]
    mine = tmp_path / "results.json"
    mine.write_text('{"accuracy": 0.9}')
    code, err = run_cli(evaluate + [mine], capsys)
    assert_one_line_error(code, err, str(mine), "a file gess did not write")
    assert mine.read_text() == '{"accuracy": 0.9}'
    code, err = run_cli(["evaluate", "--recon", tmp_path / "r", "--data", tmp_path / "absent.mat", "--out", mine], capsys)
    assert_one_line_error(code, err, str(mine))  # refused before the dataset is read

    out = tmp_path / "metrics.json"
    ok(evaluate + [out])
    ok(evaluate + [out])
    _without_kind(out)
    ok(evaluate + [out])  # an older gess's metrics file is replaced
    assert json.loads(out.read_text())["protocol"] == "paper"


def test_baseline_entries_record_their_settings_and_versions(tmp_path):
    import gess
    from gess.decoding import GESSDecoder

    data = tmp_path / "x.mat"
    write_mat(data)
    ok(["fit", "--data", data, "--out", tmp_path / "m"])
    fingerprint = GESSDecoder.load(tmp_path / "m").metadata_["fingerprint"]
    for method in ("structure", "knn"):
        args = _structure_args(tmp_path, data, tmp_path / method)
        args[args.index("structure")] = method
        ok(args)
        entries = json.loads((tmp_path / method / "manifest.json").read_text())
        assert entries and all(e["settings"] == {"method": method, "generator": None, "decoder": fingerprint}
                               and e["versions"]["gess"] == gess.__version__ for e in entries)


def test_only_gess_s_own_temporaries_are_removed(tmp_path):
    from gess.io import _temp_prefix, atomic_path
    from gess.manifest import Manifest

    data = tmp_path / "x.mat"
    write_mat(data)
    model = tmp_path / "m"
    ok(["fit", "--data", data, "--out", model])
    (model / ".scratch.tmp").mkdir()
    (model / ".scratch.tmp" / "work.txt").write_text("mine")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = model / (_temp_prefix().replace(f"-{os.getpid()}.", f"-{int(dead.stdout)}.") + "config.json.x.tmp")
    leftover.mkdir()  # a temporary of a gess process that died
    live = model / (_temp_prefix() + "config.json.y.tmp")
    live.mkdir()  # one of a process still writing (this one)
    ok(["fit", "--data", data, "--out", model, "--alpha-semantic", "10"])
    assert (model / ".scratch.tmp" / "work.txt").read_text() == "mine"
    assert not leftover.exists() and live.exists()
    (tmp_path / "d" / "x").mkdir(parents=True)
    (tmp_path / "d" / ".x.old").mkdir()  # a user's name that a directory replace once used as its backup
    with atomic_path(tmp_path / "d" / "x") as tmp:
        tmp.mkdir()
    assert (tmp_path / "d" / ".x.old").is_dir()
    (tmp_path / "d" / "manifest.partial.json").write_text("[]")  # not a per-process part gess writes
    assert not Manifest(tmp_path / "d").has_parts()


def test_a_refused_reconstruct_leaves_nothing_behind(tmp_path, capsys):
    data = tmp_path / "x.mat"
    write_mat(data)
    ok(["fit", "--data", data, "--out", tmp_path / "m"])
    (tmp_path / "not-a-generator").mkdir()
    out = tmp_path / "r"
    code, err = run_cli(["reconstruct", "--model", tmp_path / "m", "--data", data, "--generator",
                         tmp_path / "not-a-generator", "--steps", "2", "--out", out], capsys)
    assert code == 2, err
    assert not out.exists()
    out.mkdir()  # the user's empty folder: kept, and empty again
    code, err = run_cli(["reconstruct", "--model", tmp_path / "m", "--data", data, "--generator",
                         tmp_path / "not-a-generator", "--steps", "2", "--out", out], capsys)
    assert code == 2 and list(out.iterdir()) == []


# ------------------------------------------------------------------ strict JSON
def _strict_json(path: Path):
    def refuse(name):
        raise AssertionError(f"{path}: {name} is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_every_json_gess_writes_is_strict(tmp_path):
    """NaN and infinities (a diverged loss, an undefined metric) are written as null: strict JSON that any reader takes."""
    from gess.io import write_json

    write_json(tmp_path / "a.json", {"nan": float("nan"), "inf": [float("inf"), 1.5], "np": np.float32("-inf"),
                                     "array": np.array([np.nan, 2.0]), "ok": np.int64(3), "tuple": (1, float("nan"))})
    assert _strict_json(tmp_path / "a.json") == {"nan": None, "inf": [None, 1.5], "np": None, "array": [None, 2.0],
                                                 "ok": 3, "tuple": [1, None]}


# ------------------------------------------------------------------ foreign manifests
_FOREIGN = {"a mapping": ({"test-0000": "test-0000.png"}, "a list of reconstruction entries"),
            "no file": ([{"stimulus_id": "test-0000"}], "[0].file"),
            "not an entry": (["test-0000.png"], "[0]"),
            "outside": ([{"stimulus_id": "test-0000", "file": "../x.mat"}], "inside")}


@pytest.mark.parametrize("kind", list(_FOREIGN))
def test_evaluate_refuses_a_foreign_manifest(tmp_path, capsys, kind):
    from PIL import Image

    from gess.data import load_mat

    data = tmp_path / "x.mat"
    write_mat(data)
    recon = tmp_path / "recon"
    recon.mkdir()
    for sid, img in zip(load_mat(data).test.stimulus_ids, load_mat(data).test.images):
        Image.fromarray(img[..., 0]).save(recon / f"{sid}.png")
    content, needle = _FOREIGN[kind]
    (recon / "manifest.json").write_text(json.dumps(content))
    code, err = run_cli(["evaluate", "--recon", recon, "--data", data, "--out", tmp_path / "m.json"], capsys)
    assert_one_line_error(code, err, "manifest.json", needle)


def test_resume_refuses_a_hand_edited_manifest(tmp_path, capsys):
    data = tmp_path / "x.mat"
    write_mat(data, n_train=8)
    ok(["fit", "--data", data, "--out", tmp_path / "m"])
    ok(_tiny_prior_args(data, tmp_path / "p", steps=1))
    args = ["reconstruct", "--model", tmp_path / "m", "--data", data, "--generator", tmp_path / "p", "--steps", "2",
            "--out", tmp_path / "r"]
    ok(args)
    for kind in ("a mapping", "outside"):
        content, needle = _FOREIGN[kind]
        (tmp_path / "r" / "manifest.json").write_text(json.dumps(content))
        code, err = run_cli(args, capsys)
        assert_one_line_error(code, err, "manifest.json", needle)


# ------------------------------------------------------------------ degenerate metrics
@pytest.mark.parametrize("problem", ["one stimulus", "tiny images", "no trials"])
def test_metrics_on_degenerate_input_are_refused(tmp_path, capsys, problem):
    from PIL import Image

    from gess.data import load_mat

    data = tmp_path / "x.mat"
    write_mat(data, n_test=1 if problem == "one stimulus" else 4, side=3 if problem == "tiny images" else 8)
    recon = tmp_path / "recon"
    recon.mkdir()
    for sid, img in zip(load_mat(data).test.stimulus_ids, load_mat(data).test.images):
        Image.fromarray(img[..., 0]).save(recon / f"{sid}.png")
    extra, needle = {"one stimulus": ([], "at least 2"), "tiny images": ([], "at least 7 pixels"),
                     "no trials": (["--trials", "0"], "trials")}[problem]
    code, err = run_cli(["evaluate", "--recon", recon, "--data", data, "--out", tmp_path / "m.json", *extra], capsys)
    assert_one_line_error(code, err, needle)
    assert not (tmp_path / "m.json").exists()


# ------------------------------------------------------------------ issue 18: what the generated contract tests found
def test_decode_claims_its_output_directory_and_refuses_a_foreign_one(tmp_path, capsys):
    data = tmp_path / "x.mat"
    write_mat(data, n_train=8)
    ok(["fit", "--data", data, "--out", tmp_path / "m"])
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    code, err = run_cli(["decode", "--model", tmp_path / "m", "--data", data, "--out", mine], capsys)
    assert_one_line_error(code, err, str(mine), "notes.txt")
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    ok(["decode", "--model", tmp_path / "m", "--data", data, "--out", tmp_path / "d"])
    assert json.loads((tmp_path / "d" / ".gess-output.json").read_text())["kind"] == "decoded"
    ok(["decode", "--model", tmp_path / "m", "--data", data, "--out", tmp_path / "d"])  # its own: replaced
    code, err = run_cli(["decode", "--model", tmp_path / "m", "--data", data, "--out", tmp_path / "m"], capsys)
    assert_one_line_error(code, err, "a gess model directory")


def test_ctrl_c_while_gess_starts_is_the_interrupted_line(tmp_path):
    """A KeyboardInterrupt while gess.cli's modules load (before any command runs): one line, exit 130."""
    script = ("import sys\n"
              "class Stop:\n"
              "    def find_spec(self, name, path=None, target=None):\n"
              "        if name == 'gess.generation.train':\n"
              "            raise KeyboardInterrupt\n"
              "sys.meta_path.insert(0, Stop())\n"
              "from gess.cli import main\n"
              "main(['--help'])\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip() == "gess: interrupted; finished outputs are kept and a re-run resumes", done.stderr


def test_ctrl_c_while_plugins_load_is_the_interrupted_line(monkeypatch, capsys):
    import gess.cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(gess.cli, "load_plugins", interrupted)
    code, err = run_cli(["split", "--help"], capsys)
    assert code == 130 and err.strip().splitlines() == ["gess: interrupted; finished outputs are kept and a re-run resumes"]


def test_ctrl_c_inside_a_command_is_the_interrupted_line(tmp_path, monkeypatch, capsys):
    """typer turns a KeyboardInterrupt inside a command into a bare status 130; gess still says what happened."""
    import gess.stages

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    data = tmp_path / "x.mat"
    write_mat(data)
    monkeypatch.setattr(gess.stages, "fit_decoders", interrupted)
    code, err = run_cli(["fit", "--data", data, "--out", tmp_path / "m"], capsys)
    assert code == 130 and err.strip().splitlines()[-1] == "gess: interrupted; finished outputs are kept and a re-run resumes"


def test_an_error_naming_a_path_with_a_newline_stays_one_line(tmp_path, capsys):
    odd = tmp_path / "two\nlines.mat"
    code, err = run_cli(["fit", "--data", odd, "--out", tmp_path / "m"], capsys)
    assert_one_line_error(code, err, repr(str(odd)))


def test_an_error_names_the_users_path_not_a_temporary():
    from gess.errors import GessInputError

    exc = GessInputError("/data/run/.gess-tmp.ab12cd34-999.config.json.x1y2.tmp/config.json", None, "x")
    assert str(exc).startswith("/data/run/config.json:"), str(exc)


def _rewrite_directory(path: Path, text: str) -> None:
    from gess.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.mkdir()
        (tmp / "state.json").write_text(text)


def test_a_directory_is_replaced_in_one_step(tmp_path, monkeypatch):
    """A checkpoint directory replaced by an exchange, not two renames: a kill between two renames lost the old one."""
    import gess.io as gio

    checkpoint = tmp_path / "checkpoint"
    _rewrite_directory(checkpoint, "old")

    def killed(*args):
        raise KeyboardInterrupt  # as if the process died at a rename

    monkeypatch.setattr(gio.os, "replace", killed)
    _rewrite_directory(checkpoint, "new")  # the exchange never calls os.replace
    assert (checkpoint / "state.json").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]
    monkeypatch.undo()
    monkeypatch.setattr(gio, "exchange_paths", lambda a, b: False)  # a filesystem without the exchange: two renames
    _rewrite_directory(checkpoint, "newer")
    assert (checkpoint / "state.json").read_text() == "newer" and sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


def test_checkpoint_state_is_strict_json(tmp_path):
    import torch

    from gess.checkpoint import load_checkpoint, save_checkpoint

    module = torch.nn.Linear(2, 1)
    save_checkpoint(tmp_path / "ckpt", {"m": module}, {}, torch.Generator(), 3,
                    {"losses": [1.0, float("nan")]}, {"lr": 0.1})
    text = (tmp_path / "ckpt" / "state.json").read_text()
    assert "NaN" not in text and _strict_json(tmp_path / "ckpt" / "state.json")["losses"] == [1.0, None]
    step, record = load_checkpoint(tmp_path / "ckpt", {"m": module}, {}, torch.Generator(), {"lr": 0.1})
    assert step == 3 and record["losses"][0] == 1.0 and np.isnan(record["losses"][1])


@pytest.mark.parametrize("kind", ["a mapping", "outside"])
def test_the_run_summary_refuses_a_foreign_manifest(tmp_path, kind):
    from PIL import Image

    from gess.data import load_mat
    from gess.errors import GessInputError
    from gess.evaluation.summary import per_sample_scores

    data = tmp_path / "x.mat"
    write_mat(data)
    dataset = load_mat(data)
    recon = tmp_path / "recon"
    recon.mkdir()
    for sid, img in zip(dataset.test.stimulus_ids, dataset.test.images):
        Image.fromarray(img[..., 0]).save(recon / f"{sid}.png")
    content, needle = _FOREIGN[kind]
    (recon / "manifest.json").write_text(json.dumps(content))
    with pytest.raises(GessInputError, match="manifest.json") as exc:
        per_sample_scores(dataset, list(dataset.test.stimulus_ids), {"cs": recon}, lambda x: x.reshape(len(x), -1) / 255.0)
    assert needle in str(exc.value)


def test_photos_that_are_not_square_are_centre_cropped(tmp_path):
    """A 4:3 photo (gess split, gess prior train, an own-data folder) is read as its centre square."""
    from PIL import Image

    from gess.data.images import load_image, load_image_folder

    x = np.zeros((30, 40, 3), np.uint8)
    x[:, 5:35] = 200  # the centre 30 x 30
    Image.fromarray(x).save(tmp_path / "a.png")
    Image.fromarray(np.full((24, 24, 3), 9, np.uint8)).save(tmp_path / "b.png")
    assert load_image(tmp_path / "a.png").shape == (30, 30, 3) and (load_image(tmp_path / "a.png") == 200).all()
    images, ids = load_image_folder(tmp_path)
    assert images.shape == (2, 30, 30, 3) and list(ids) == ["a", "b"]


def test_split_and_prior_train_take_4_3_photos(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    (tmp_path / "photos").mkdir()
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(tmp_path / "photos" / f"p{i}.png")
    ok(["split", "--images", tmp_path / "photos", "--out", tmp_path / "s" / "split.json", "--clusters", "2"])
    ok(["prior", "train", "--images", tmp_path / "photos", "--out", tmp_path / "p", "--steps", "1", "--batch-size", "2",
        "--image-size", "8", "--block-out-channels", "[8]"])


def test_evaluate_refuses_reconstructions_of_mixed_sizes_in_one_line(tmp_path, capsys):
    from PIL import Image

    from gess.data import load_mat

    data = tmp_path / "x.mat"
    write_mat(data)
    recon = tmp_path / "recon"
    recon.mkdir()
    for i, sid in enumerate(load_mat(data).test.stimulus_ids):
        Image.fromarray(np.zeros((16 + i, 16 + i), np.uint8)).save(recon / f"{sid}.png")
    code, err = run_cli(["evaluate", "--recon", recon, "--data", data, "--out", tmp_path / "m.json"], capsys)
    assert_one_line_error(code, err, "image size", "17x17")
