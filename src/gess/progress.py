"""Progress that a person can follow: rich bars on a terminal, timed log lines in a batch job's log.

Also the thread count of torch: a default that does not oversubscribe a shared machine.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
LOG_EVERY_SECONDS = 30.0


def log(console, message: str) -> None:
    """One line on ``console`` (a rich Console); nothing when there is none (library use, other processes)."""
    if console is not None:
        console.print(message)


def progress_bar(items: Iterable[T], description: str, enabled: bool = True, total: int | None = None) -> Iterator[T]:
    """Yield ``items`` showing progress: a bar with rate and time left on a terminal, else a line every 30 s."""
    if not enabled:
        yield from items
        return
    total = total if total is not None else _len(items)
    if not sys.stderr.isatty():
        yield from _logged(items, description, total)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), _rate_column(),
        TimeElapsedColumn(), TimeRemainingColumn(), transient=False,
        console=Console(stderr=True),  # the terminal it was judged by: stdout may be a file (`gess run ... > log`)
    ) as progress:
        task = progress.add_task(description, total=total)
        for item in items:
            yield item
            progress.advance(task)


def _rate_column():
    """Items per second; '?/s' before the first item (rich's speed is None then, which a format string cannot take)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task) -> Text:
            return Text("?/s" if task.speed is None else f"{task.speed:.2f}/s")

    return RateColumn()


def _logged(items: Iterable[T], description: str, total: int | None) -> Iterator[T]:
    start = last = time.time()
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.time()
        if now - last >= LOG_EVERY_SECONDS or (total is not None and done == total):
            last = now
            rate = done / max(now - start, 1e-9)
            left = f", {(total - done) / rate:.0f} s left" if total else ""
            print(f"{description}: {done}/{total if total is not None else '?'} ({rate:.2f}/s{left})", file=sys.stderr,
                  flush=True)


def _len(items) -> int | None:
    try:
        return len(items)  # type: ignore[arg-type]
    except TypeError:
        return None


def default_threads() -> int:
    """$GESS_THREADS (a whole number, at least 1: anything else is bad input), else the CPUs this process may use
    less the 1-minute load, at least 1.

    torch's own default (all cores) made prior training 10-20x slower on a busy machine.
    """
    text = os.environ.get("GESS_THREADS", "").strip()
    if text:
        if not (text.isascii() and text.isdigit()) or int(text) < 1:  # "²" is a digit to str.isdigit
            from gess.errors import GessInputError

            raise GessInputError("GESS_THREADS", None, "a whole number of threads, at least 1", repr(text))
        return int(text)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cpus, cpus - int(round(load))))


def set_threads(threads: int | None = None) -> int:
    """Set torch's CPU threads (``None``: :func:`default_threads`); returns the number used."""
    import torch

    n = threads if threads is not None else default_threads()
    if n < 1:
        from gess.errors import GessInputError

        raise GessInputError("--threads", None, "at least 1 thread", repr(n))
    torch.set_num_threads(n)
    return n
