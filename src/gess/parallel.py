"""Several processes, one result: the share of work of this process under `accelerate launch`.

gess runs unchanged under ``accelerate launch`` (any number of processes, one or several
machines) or with ``gess --processes N`` on one machine. Work is cut into *global*
batches over every stimulus, in order; process ``i`` of ``n`` takes batches ``i, i+n, ...``.
The batches are the same whatever ``n`` is, so the images do not depend on how the work
was split (byte-identical PNGs for 1 or 2 processes on the same device type), and a
resumed run re-forms the same batches.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Shard:
    """This process's place among the launched ones."""

    index: int = 0
    count: int = 1

    @property
    def is_main(self) -> bool:
        return self.index == 0

    def mine(self, items: list) -> list:
        """Every ``count``-th item, starting at ``index``."""
        return items[self.index::self.count]

    def wait(self) -> None:
        """All processes meet here (a no-op for one process)."""
        if self.count > 1:
            _state().wait_for_everyone()


@lru_cache(maxsize=1)
def _state():
    from accelerate import PartialState

    return PartialState(cpu=os.environ.get("GESS_DEVICE", "cpu") == "cpu")


_SOLO = [0]  # > 0 inside main_first: work there is one process's, never sharded again


def current_shard() -> Shard:
    """The launcher's rank and world size (accelerate, torchrun); one process when not launched."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or _SOLO[0]:
        return Shard()
    state = _state()
    return Shard(state.process_index, state.num_processes)


def launch_processes(n: int, argv: list[str]) -> int:
    """``gess --processes N ...``: start N workers of the same command on this machine (gloo), wait for all.

    Returns the worst exit status (a worker killed by signal N counts as 128 + N). A SIGTERM to this
    parent is passed on to every worker, which stop as on Ctrl-C. Each worker is an ordinary process of the launched
    group (RANK, WORLD_SIZE, MASTER_ADDR/PORT), as ``accelerate launch`` would start it.
    """
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []

    def forward(signum, frame):  # a SIGTERM for the group's parent (a pre-empted job) stops every worker cleanly
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    main_thread = threading.current_thread() is threading.main_thread()  # signal handlers can only be set there
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, forward)} if main_thread else {}
    try:
        for rank in range(n):
            env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(n),
                   "LOCAL_WORLD_SIZE": str(n), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
            procs.append(subprocess.Popen([sys.executable, "-m", "gess.cli", *argv], env=env))
        if main_thread:  # only now: an ignored SIGINT would be inherited, and workers could not be stopped by Ctrl-C
            # Ctrl-C reaches the workers from the terminal themselves; the parent waits for them to stop
            previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
        codes = [p.wait() for p in procs]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return max(exit_status(code) for code in codes)


def exit_status(returncode: int) -> int:
    """A worker's status as a shell reports it: a death by signal N is 128 + N (Popen gives -N)."""
    return 128 - returncode if returncode < 0 else returncode


def main_first(shard: Shard, work):
    """The main process does ``work`` first (writing caches and outputs); the others then do it too, finding
    everything up to date, so all hold the same result and no two processes write the same file."""
    def solo():
        _SOLO[0] += 1
        try:
            return work()
        finally:
            _SOLO[0] -= 1

    if shard.is_main:
        result = solo()
        shard.wait()
        return result
    shard.wait()
    return solo()
