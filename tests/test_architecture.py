"""Data flows one way (docs/architecture.md): every import of every module of src/gess, lazy ones included,
points at its own layer or one above it. A new module must be placed here; an import against the flow fails."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"

# shared tools any module may use: they import only each other
BASE = {"errors", "registry", "parallel", "weights", "io", "persistence", "options", "device", "plugins", "progress",
        "cache", "checkpoint", "manifest", "split", "correlation", "baselines"}
STAGES = ["data", "encoders", "decoding", "generation", "evaluation", "report"]  # in the order data flows
FLOOR = {"api", "featurecache", "folds"}  # in-memory work across the stages, between them and the top
TOP = {"stages", "runconfig", "run", "cli", "clidoc", ""}  # "" is the package itself, gess/__init__.py


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    package = SOURCE / "gess"
    return (package / f"{name}.py").is_file() or (package / name / "__init__.py").is_file()


def _imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "gess":  # from gess import stages: the module
            names.update(f"gess.{alias.name}" if _is_module(alias.name) else "gess" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level:  # gess imports absolutely, so this test sees them all
            raise AssertionError(f"{path}:{node.lineno}: a relative import; write it as `from gess... import`")
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n == "gess" or n.startswith("gess.")}


def _unit(module: str) -> str:
    """The first name under gess: a stage package, a base or floor module, or a top module."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _rank(unit: str) -> float:
    if unit in BASE:
        return 0
    if unit in STAGES:
        return 1 + STAGES.index(unit)
    if unit in FLOOR:
        return len(STAGES) + 1
    if unit in TOP:
        return len(STAGES) + 2
    raise AssertionError(f"gess.{unit} has no place in the layers of docs/architecture.md (tests/test_architecture.py)")


MODULES = sorted(SOURCE.joinpath("gess").rglob("*.py"))


def test_every_module_has_a_place():
    assert len(MODULES) > 50, f"found {len(MODULES)} modules under {SOURCE}"
    for path in MODULES:
        _rank(_unit(_module_name(path)))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_no_import_against_the_flow(path):
    unit = _unit(_module_name(path))
    against = [name for name in sorted(_imported(path)) if _unit(name) != unit and _rank(_unit(name)) >= _rank(unit)
               and not (unit in TOP and _unit(name) in TOP)]
    if unit in BASE:  # base modules may use each other, nothing else
        against = [name for name in against if _unit(name) not in BASE]
    if unit in FLOOR:
        against = [name for name in against if _unit(name) not in FLOOR]
    assert not against, f"{_module_name(path)} imports {against}, which sit at or below it in docs/architecture.md"
