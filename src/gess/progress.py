"""Progress bars (rich) that stay quiet when not wanted."""
from __future__ import annotations

from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def progress_bar(items: Iterable[T], description: str, enabled: bool = True, total: int | None = None) -> Iterator[T]:
    if not enabled:
        yield from items
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), transient=False,
    ) as progress:
        task = progress.add_task(description, total=total if total is not None else _len(items))
        for item in items:
            yield item
            progress.advance(task)


def _len(items) -> int | None:
    try:
        return len(items)  # type: ignore[arg-type]
    except TypeError:
        return None
