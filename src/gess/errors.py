"""Errors that the command line reports as bad input (exit status 2)."""
from __future__ import annotations

from pathlib import Path


class GessInputError(ValueError):
    """Bad input: names the file, the field and what was expected.

    The command line prints ``str(error)`` on one line of standard error and
    exits with status 2.
    """

    def __init__(self, file: str | Path | None, field: str | None, expected: str, got: str | None = None):
        self.file = str(file) if file is not None else None
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
        super().__init__(message)


class MissingWeightsError(GessInputError):
    """Pretrained weights are absent: says which, and how to provide them."""

    def __init__(self, what: str, looked_in: str, how: str):
        super().__init__(looked_in, None, f"weights of {what} ({how})", "nothing there")
