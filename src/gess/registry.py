"""The registry every kind of plug-in keeps (encoders, generator backends): entries by name."""
from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(dict, Generic[T]):
    """Entries of one kind of plug-in by name; a name is registered once unless replaced on purpose."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str, entry: T, replace: bool = False) -> T:
        if name in self and not replace:
            raise ValueError(f"a {self.kind} named {name!r} is already registered (pass replace=True to replace it)")
        self[name] = entry
        return entry
