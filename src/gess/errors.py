"""Errors that the command line reports as bad input (exit status 2)."""
from __future__ import annotations

import re
from pathlib import Path

# a file being written lives at DIR/.gess-tmp.<host>-<pid>.<name>.<random>.tmp/<name> (gess.io.atomic_path) until renamed
_TEMPORARY = re.compile(r"(?:(?<=/)|^)\.gess-tmp\.[^/]*?\.tmp/")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def user_path(path: str | Path) -> str:
    """``path`` as the user knows it: a gess temporary it is being written under named by its final name."""
    return _TEMPORARY.sub("", str(path))


def one_line(text: str) -> str:
    """``text`` on one line: a newline, tab or other control character (in a path, say) escaped as Python writes it."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _shown_path(path: str | Path) -> str:
    """A path in a message: the user's name for it, quoted like Python's repr when it holds a control character."""
    text = user_path(path)
    return repr(text) if _CONTROL.search(text) else text


class GessInputError(ValueError):
    """Bad input: names the file, the field and what was expected.

    The command line prints ``str(error)`` on one line of standard error and
    exits with status 2.
    """

    def __init__(self, file: str | Path | None, field: str | None, expected: str, got: str | None = None):
        self.file = _shown_path(file) if file is not None else None
        self.field = field
        self.expected = expected
        self.got = got
        parts = []
        if self.file:
            parts.append(self.file)
        if field:
            parts.append(f"field '{field}'")
        where = ": ".join(parts) if parts else "input"
        message = f"{where}: expected {expected}"
        if got is not None:
            message += f", got {got}"
        super().__init__(one_line(message))


class MissingWeightsError(GessInputError):
    """Pretrained weights are absent: says which, and how to provide them."""

    def __init__(self, what: str, looked_in: str, how: str):
        super().__init__(looked_in, None, f"weights of {what} ({how})", "nothing there")
