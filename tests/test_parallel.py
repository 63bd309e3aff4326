"""Several processes, one result: sharded reconstruction (gloo on the CPU), byte-identical to one process, resumable."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import write_mat

pytestmark = pytest.mark.slow


def gess(*args, check=True, **kw):
    env = {**os.environ, "GESS_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "gess.cli", *map(str, args)], capture_output=True, text=True, env=env, **kw)
    if check:
        assert out.returncode == 0, out.stderr[-2000:]
    return out


def digests(directory):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.glob("*.png"))}


def pixel_setup(tmp_path, n_test: int):
    """A tiny .mat, its decoders in tmp/m and a 3-step pixel prior in tmp/g."""
    data = tmp_path / "x.mat"
    write_mat(data, n_train=12, n_test=n_test, side=8)
    gess("fit", "--data", data, "--out", tmp_path / "m")
    gess("prior", "train", "--images", data, "--out", tmp_path / "g", "--steps", "3", "--image-size", "8",
         "--block-out-channels", "[8, 16]", "--batch-size", "4")
    return data


@pytest.fixture(params=["pixel", "unclip"])
def setup(request, tmp_path):
    data = tmp_path / "x.mat"
    if request.param == "pixel":
        pixel_setup(tmp_path, n_test=7)
    else:
        from test_encoders import tiny_clip
        from test_unclip import save_tiny_unclip

        write_mat(data, n_train=12, n_test=7, side=16, channels=3)
        gess("fit", "--data", data, "--out", tmp_path / "m", "--encoder", tiny_clip(tmp_path), "--n-neighbors", "3")
        save_tiny_unclip(tmp_path / "g")
    return tmp_path, data


def reconstruct_args(tmp_path, data, out, steps=3):
    return ["reconstruct", "--model", tmp_path / "m", "--data", data, "--generator", tmp_path / "g", "--steps", str(steps),
            "--batch-size", "2", "--method", "cs", "--out", out]


def test_two_processes_write_the_same_bytes_as_one(setup):
    tmp_path, data = setup
    gess(*reconstruct_args(tmp_path, data, tmp_path / "one"))
    gess("--processes", "2", *reconstruct_args(tmp_path, data, tmp_path / "two"))
    assert digests(tmp_path / "one") == digests(tmp_path / "two") and len(digests(tmp_path / "one")) == 7
    manifest = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert [m["stimulus_id"] for m in manifest] == [f"test-{i:04d}" for i in range(7)]
    assert not list((tmp_path / "two").glob("manifest.part*"))


@pytest.mark.skipif(shutil.which("torchrun") is None and not os.path.exists(os.path.join(os.path.dirname(sys.executable), "torchrun")),
                    reason="torchrun (the launcher `accelerate launch --multi_gpu` uses) is not installed")
def test_under_a_torchrun_launch(tmp_path):
    data = pixel_setup(tmp_path, n_test=5)
    gess(*reconstruct_args(tmp_path, data, tmp_path / "one"))
    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    out = subprocess.run([torchrun, "--nproc_per_node", "2", "-m", "gess.cli",
                          *map(str, reconstruct_args(tmp_path, data, tmp_path / "launched"))],
                         capture_output=True, text=True, env={**os.environ, "GESS_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert digests(tmp_path / "one") == digests(tmp_path / "launched")


def test_killed_group_resumes_with_another_process_count(tmp_path):
    data = pixel_setup(tmp_path, n_test=12)
    args = reconstruct_args(tmp_path, data, tmp_path / "killed", steps=60)
    gess(*reconstruct_args(tmp_path, data, tmp_path / "straight", steps=60))
    group = subprocess.Popen([sys.executable, "-m", "gess.cli", "--processes", "2", *map(str, args)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                             env={**os.environ, "GESS_THREADS": "1"})
    deadline = time.time() + 180
    while time.time() < deadline and len(list((tmp_path / "killed").glob("*.png"))) < 3:
        time.sleep(0.05)
    os.killpg(group.pid, signal.SIGKILL)
    group.wait()
    # images the killed run had recorded (a PNG written just before the kill, without its record, is made again)
    recorded = {m["file"] for part in (tmp_path / "killed").glob("manifest*.json") for m in json.loads(part.read_text())}
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "killed").glob("*.png") if p.name in recorded}
    assert 0 < len(before) < 12, "the kill landed before or after the work; nothing was tested"
    gess("--processes", "3", *args)
    assert digests(tmp_path / "killed") == digests(tmp_path / "straight")
    assert all((tmp_path / "killed" / name).stat().st_mtime_ns == stamp for name, stamp in before.items())
    assert len(json.loads((tmp_path / "killed" / "manifest.json").read_text())) == 12
    assert not [p for p in (tmp_path / "killed").iterdir() if p.name.endswith(".tmp") or p.name.startswith("manifest.part")]


def _processes_writing(out) -> list[int]:
    """The pids of processes whose command line names ``out``."""
    pids = []
    for proc in os.listdir("/proc"):
        try:
            if proc.isdigit() and str(out).encode() in open(f"/proc/{proc}/cmdline", "rb").read():
                pids.append(int(proc))
        except OSError:
            pass
    return pids


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads the process table from /proc")
def test_a_sigterm_to_the_group_parent_stops_every_worker_cleanly(tmp_path):
    """Also the first sharded run on a cold cache: the CS tuning's main-process-first order (it once met the other
    process's wait with a barrier of its own, and read a feature file not yet written)."""
    data = pixel_setup(tmp_path, n_test=8)
    out = tmp_path / "stopped"
    log = open(tmp_path / "stderr.txt", "w")  # a file, not a pipe: nobody reads the workers' output while they run
    parent = subprocess.Popen([sys.executable, "-m", "gess.cli", "--processes", "2",
                               *map(str, reconstruct_args(tmp_path, data, out, steps=60))],
                              stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, "GESS_THREADS": "1"})
    deadline = time.time() + 180
    while time.time() < deadline and not list(out.glob("*.png")):
        time.sleep(0.05)
    parent.send_signal(signal.SIGTERM)  # the parent alone, as a scheduler pre-empting the job would
    parent.wait(timeout=120)
    log.close()
    err = (tmp_path / "stderr.txt").read_text()
    assert parent.returncode == 130, err[-2000:]
    assert "interrupted" in err and "Traceback" not in err, err[-2000:]
    assert not _processes_writing(out), "a worker outlived its group's parent"
    assert 0 < len(list(out.glob("*.png"))) < 8, "the stop landed before or after the work; nothing was tested"


def test_gess_run_under_two_processes_matches_one(tmp_path, session_cache):
    import yaml

    from test_run import tiny_config

    cfg = tiny_config(methods=["structure", "cs"])
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "GESS_CACHE": str(session_cache), "GESS_THREADS": "1"}
    for name, extra in (("one", []), ("two", ["--processes", "2"])):
        out = subprocess.run([sys.executable, "-m", "gess.cli", *extra, "run", str(tmp_path / "c.yaml"), "--out",
                              str(tmp_path / name)], capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr[-2000:]
    for method in ("structure", "cs"):
        assert digests(tmp_path / "one" / "recon" / method) == digests(tmp_path / "two" / "recon" / method)
    assert (tmp_path / "two" / "report.html").is_file()
