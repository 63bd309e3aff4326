"""Plug-ins from outside the package: modules that register encoders, gates, backends or metrics on import.

The command line imports, before it parses anything, every module named in
``$GESS_PLUGINS`` (comma-separated) and every entry point of the ``gess.plugins`` group
(a package declares ``[project.entry-points."gess.plugins"] name = "package.module"``).
"""
from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points

from gess.errors import GessInputError

ENTRY_POINT_GROUP = "gess.plugins"


def load_plugins() -> list[str]:
    """Import every plug-in module; returns their names. A module that cannot be imported is bad input naming it."""
    names = [n.strip() for n in os.environ.get("GESS_PLUGINS", "").split(",") if n.strip()]
    names += [ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)]
    for name in names:
        try:
            importlib.import_module(name.partition(":")[0])
        except ImportError as exc:
            raise GessInputError("GESS_PLUGINS", None, "importable plug-in modules", f"{name!r} ({exc})") from None
    return names
