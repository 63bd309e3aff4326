"""One declaration per option: dataclasses and signatures are read here, nowhere else.

Every tunable of gess is declared once, as a dataclass field (``CSOptions``,
``GGOptions``, ``SamplingOptions``, ``TrainOptions``, ...) or as a parameter of
an estimator's ``__init__`` (``GESSDecoder``). This module turns such a
declaration into

* a validated instance from a mapping (a run config section, a ``--config``
  file): unknown keys and wrong types raise :class:`GessInputError`, naming the
  file and the key (exit status 2 on the command line);
* command-line flags, one per field (``--cs-lowpass-factor``, ``--gg-scale``, ...),
  added to a typer command by :func:`flags_from`.

Types come from the annotations: ``bool``, ``int``, ``float``, ``str``,
``Literal[...]`` (a closed set of choices), ``tuple[...]``/``list[...]``,
``dict`` and ``X | None``. Every float must be finite. A numeric field declares its
allowed values once, as a :class:`Range` in its metadata (``described(text, AT_LEAST_1)``);
an estimator's parameters declare theirs in :data:`PARAMETER_RANGES`. Flags and
configs are checked against the same rule.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Callable, Literal, Union, get_args, get_origin

from gess.errors import GessInputError

_NO_DEFAULT = object()


@dataclasses.dataclass(frozen=True)
class Range:
    """The numbers a numeric option accepts: from ``low`` to ``high`` (None: unbounded), each bound
    included unless ``open_low``/``open_high``. On a list or tuple it applies to every item, and
    the list must not be empty (a grid of nothing tunes nothing)."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def accepts(self, value) -> bool:
        below = self.low is not None and (value <= self.low if self.open_low else value < self.low)
        above = self.high is not None and (value >= self.high if self.open_high else value > self.high)
        return not (below or above)

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}{')' if self.open_high else ']'}"
        if self.low is not None:
            return f"{'above' if self.open_low else 'at least'} {self.low:g}"
        return f"{'below' if self.open_high else 'at most'} {self.high:g}" if self.high is not None else "any number"


AT_LEAST_1 = Range(1)
POSITIVE = Range(0, open_low=True)
NON_NEGATIVE = Range(0)
SHARE = Range(0, 1)  # a fraction or a weight
FOLDS = Range(2)

# the ranges of estimators' __init__ parameters (a signature cannot carry metadata), by class name
PARAMETER_RANGES: dict[str, dict[str, Range]] = {
    "GESSDecoder": {"alpha_semantic": POSITIVE, "alpha_structural": POSITIVE, "alphas": POSITIVE,
                    "n_neighbors": AT_LEAST_1, "regularization": NON_NEGATIVE, "w_c": SHARE, "cv_folds": FOLDS,
                    "structural_voxels": AT_LEAST_1, "structural_rbf_gamma": POSITIVE, "structural_rbf_alpha": POSITIVE},
}


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    """One declared option: its name, type, default, help text and, for a number, its :class:`Range`."""

    name: str
    annotation: Any
    default: Any
    help: str = ""
    range: Range | None = None

    def check(self, value, where: str, source=None):
        """``value`` (already of the right type) within :attr:`range`; returns it."""
        if self.range is None or value is None:
            return value
        many = isinstance(value, (list, tuple))
        number = f"{'finite' if _mentions_float(self.annotation) else 'whole'} number {self.range}"
        expected = f"a non-empty list, each a {number}" if many else f"a {number}"
        if many and not value:
            raise GessInputError(source, where, expected, "an empty list")
        for item in value if many else [value]:
            if isinstance(item, (int, float)) and not isinstance(item, bool) and \
                    not (math.isfinite(item) and self.range.accepts(item)):
                raise GessInputError(source, where, expected, repr(value))
        return value


def _mentions_float(annotation) -> bool:
    return annotation is float or any(_mentions_float(a) for a in get_args(annotation))


_MODULE_ROLE = re.compile(r":(?:py:)?mod:`([^`]+)`")  # a module keeps its whole dotted name
_ROLE = re.compile(r":(?:\w+:)*\w+:`~?(?:[^`<]*<)?(?:[\w.]+\.)?([^`>]+)>?`")  # :class:`~a.B` -> B, :func:`t <a.f>` -> f


def parameter_help(cls) -> dict[str, str]:
    """Each constructor parameter's text in ``cls``'s numpydoc "Parameters" section (``a, b : text`` and its
    indented continuation lines), as plain text: what a flag generated from the signature says about itself."""
    lines = [line.rstrip() for line in (inspect.getdoc(cls) or "").splitlines()]

    def heading(i: int) -> bool:  # a numpydoc section title: a line underlined with dashes
        return i + 1 < len(lines) and bool(lines[i].strip()) and set(lines[i + 1].strip()) == {"-"}

    if "Parameters" not in lines or not heading(lines.index("Parameters")):
        return {}
    helps: dict[str, str] = {}
    names: list[str] = []
    i = lines.index("Parameters") + 2
    while i < len(lines) and not heading(i):
        line = lines[i]
        if line and line == line.lstrip():  # an entry: "a, b : text", or a name alone
            head, _, text = line.partition(" : ")
            names = [n.strip() for n in head.split(",")]
            helps.update({name: text.strip() for name in names})
        elif line:
            for name in names:
                helps[name] = f"{helps[name]} {line.strip()}".strip()
        i += 1
    return {name: _ROLE.sub(r"\1", _MODULE_ROLE.sub(r"\1", text)).replace("``", "") for name, text in helps.items()}


def option_specs(target) -> list[OptionSpec]:
    """The options a dataclass (its fields) or a class (its ``__init__`` parameters) declares."""
    if dataclasses.is_dataclass(target):
        hints = typing.get_type_hints(target, include_extras=True)
        specs = []
        for f in dataclasses.fields(target):
            if not f.init:
                continue
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                default = f.default_factory()  # type: ignore[misc]
            else:
                default = _NO_DEFAULT
            specs.append(OptionSpec(f.name, hints[f.name], default, f.metadata.get("help", ""), f.metadata.get("range")))
        return specs
    init = target.__init__
    hints = typing.get_type_hints(init)
    ranges = PARAMETER_RANGES.get(target.__name__, {})
    helps = parameter_help(target)
    return [OptionSpec(p.name, hints.get(p.name, Any), p.default if p.default is not inspect.Parameter.empty else _NO_DEFAULT,
                       helps.get(p.name, ""), ranges.get(p.name))
            for p in inspect.signature(init).parameters.values() if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]


_SCALARS = {  # annotation: (what the error says is expected, the check, the conversion)
    bool: ("true or false", lambda v: isinstance(v, bool), bool),
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool), int),
    float: ("a finite number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v), float),
    str: ("a string", lambda v: isinstance(v, str), str),
    Path: ("a path", lambda v: isinstance(v, (str, Path)), Path),
}


def coerce(value, annotation, where: str, source=None):
    """``value`` checked against ``annotation`` (ints are accepted for floats, lists for tuples)."""
    origin = get_origin(annotation)
    if annotation is Any:
        return value
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        return value if isinstance(value, annotation) else build(annotation, value, source, where)
    if origin in (Union, types.UnionType):
        args = get_args(annotation)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, where, source)
            except GessInputError as exc:
                errors.append(exc.expected)
        raise GessInputError(source, where, " or ".join(errors + (["nothing (null)"] if type(None) in args else [])), _show(value))
    if origin is Literal:
        choices = get_args(annotation)
        if value not in choices:
            raise GessInputError(source, where, f"one of {', '.join(map(str, choices))}", _show(value))
        return value
    if origin in (tuple, list) or annotation in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise GessInputError(source, where, "a list", _show(value))
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        item = args[0] if args else Any
        items = [coerce(v, item, f"{where}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items) if (origin or annotation) is tuple else items
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise GessInputError(source, where, "a mapping", _show(value))
        return dict(value)
    if annotation in _SCALARS:
        expected, accepts, convert = _SCALARS[annotation]
        if not accepts(value):
            raise GessInputError(source, where, expected, _show(value))
        return convert(value)
    return value


def _show(value) -> str:
    return f"{value!r} ({type(value).__name__})"


def validated_kwargs(target, data, source=None, where: str = "") -> dict:
    """Check a mapping against what ``target`` declares: known keys, right types. Returns the kwargs."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise GessInputError(source, where or None, "a mapping of option: value", _show(data))
    specs = {s.name: s for s in option_specs(target)}
    unknown = sorted(set(data) - set(specs))
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise GessInputError(source, key, f"one of the keys {', '.join(specs)}", "an unknown key")
    missing = [name for name, s in specs.items() if s.default is _NO_DEFAULT and name not in data]
    if missing:
        key = f"{where}.{missing[0]}" if where else missing[0]
        raise GessInputError(source, key, "a value", "nothing")
    kwargs = {}
    for k, v in data.items():
        key = f"{where}.{k}" if where else k
        kwargs[k] = specs[k].check(coerce(v, specs[k].annotation, key, source), key, source)
    return kwargs


def build(target, data, source=None, where: str = ""):
    """An instance of ``target`` from a mapping, validated (see :func:`validated_kwargs`)."""
    kwargs = validated_kwargs(target, data, source, where)
    try:
        return target(**kwargs)
    except GessInputError as exc:
        raise GessInputError(source, f"{where}.{exc.field}" if where and exc.field else (exc.field or where or None),
                             exc.expected, exc.got) from None


def described(text: str, allowed: Range | None = None) -> dict:
    """A dataclass field's metadata: its help text (read by the generated flags and docs) and, for a number, its range."""
    return {"help": text} if allowed is None else {"help": text, "range": allowed}


def check_ranges(options) -> None:
    """Every field of a dataclass instance within its declared :class:`Range`, and a ``Literal`` field one of its
    choices (bad input naming the first that is not)."""
    for spec in option_specs(type(options)):
        value = getattr(options, spec.name)
        spec.check(value, spec.name)
        choices = _choices(spec.annotation)
        if choices is not None and value not in choices:
            raise GessInputError(None, spec.name, f"one of {', '.join(str(c) for c in choices if c is not None)}",
                                 _show(value))


def _choices(annotation) -> tuple | None:
    """The allowed values of a ``Literal`` annotation (with None when it is optional); None for any other."""
    if get_origin(annotation) is Literal:
        return get_args(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        literals = [a for a in get_args(annotation) if get_origin(a) is Literal]
        if len(literals) == 1:
            return get_args(literals[0]) + ((None,) if type(None) in get_args(annotation) else ())
    return None


def to_dict(options) -> dict:
    """A dataclass as a plain JSON-ready mapping (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(options).items()}


def check_numbers(options) -> None:
    """Every numeric field of a dataclass instance a number of its kind (bad input naming the first that is not).

    What :func:`coerce` checks for a mapping, for an instance made in Python: ``"abc"`` or ``None``
    given for a float is refused here, before a subclass's own checks compare it with a number.
    numpy scalars count as the numbers they are.
    """
    import numbers

    for spec in option_specs(type(options)):
        kind = _number_kind(spec.annotation)
        if kind is None:
            continue
        value, optional, many = getattr(options, spec.name), *kind[1:]
        if value is None and optional:
            continue
        items = value if many and isinstance(value, (list, tuple)) else None if many else [value]
        want = numbers.Real if kind[0] is float else numbers.Integral
        if items is None or any(isinstance(v, bool) or not isinstance(v, want) for v in items):
            what = "a finite number" if kind[0] is float else "an integer"
            raise GessInputError(None, spec.name, f"a list, each {what}" if many else what, _show(value))


def _number_kind(annotation) -> tuple[type, bool, bool] | None:
    """(int or float, None allowed, a list of them) for a numeric annotation; None for any other."""
    optional = False
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        optional = len(args) < len(get_args(annotation))
        if len(args) != 1:
            return None
        annotation = args[0]
    many = get_origin(annotation) in (tuple, list)
    if many:
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        if len(set(args)) != 1:
            return None
        annotation = args[0]
    return (annotation, optional, many) if annotation in (int, float) else None


class Options:
    """Base of the option dataclasses: ``to_dict()``, the JSON-ready mapping that runs record and fingerprints hash.

    Types and ranges are checked whenever an instance is made, also directly in Python: a subclass's own
    ``__post_init__`` runs between the type check (:func:`check_numbers`) and the range check
    (:func:`check_ranges`), whether or not it calls ``super().__post_init__()``.
    """

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("__post_init__")
        if own is None or getattr(own, "_gess_checked", False):
            return

        @functools.wraps(own)
        def checked(self) -> None:
            check_numbers(self)
            own(self)
            check_ranges(self)

        checked._gess_checked = True  # type: ignore[attr-defined]
        cls.__post_init__ = checked  # type: ignore[method-assign]

    def __post_init__(self) -> None:
        check_numbers(self)
        check_ranges(self)

    def to_dict(self) -> dict:
        return to_dict(self)


# ------------------------------------------------------------------ command-line flags
def _flag_type(annotation):
    """The type typer parses a flag as; lists, mappings and unions are read as YAML text."""
    base = [a for a in get_args(annotation) if a is not type(None)] if get_origin(annotation) in (Union, types.UnionType) else [annotation]
    if len(base) == 1 and base[0] in (bool, int, float, str):
        return base[0]
    return str


def flags_from(target, param: str, prefix: str = "", skip: tuple[str, ...] = ()) -> Callable:
    """Decorator: give a typer command one flag per option of ``target``; it receives them as ``param``.

    ``param`` arrives as a dict of the options the user set (unset flags are
    absent), already validated, so that the command can merge it with a config
    file. Flags are ``--{prefix}{name-with-dashes}``.
    """
    import typer

    specs = [s for s in option_specs(target) if s.name not in skip]

    def decorate(command: Callable) -> Callable:
        sig = inspect.signature(command)
        params = [p for p in sig.parameters.values() if p.name != param]
        names = {}
        for s in specs:
            flag = f"--{prefix}{s.name.replace('_', '-')}"
            kind = _flag_type(s.annotation)
            arg = f"{param}__{s.name}"
            names[arg] = (s, flag)
            if kind is bool:
                flag = f"{flag}/--no-{flag[2:]}"
            help_text = s.help or f"{target.__name__}.{s.name}"
            default_text = s.default if s.default is not _NO_DEFAULT else None
            params.append(inspect.Parameter(arg, inspect.Parameter.KEYWORD_ONLY, annotation=typing.Optional[kind],
                                            default=typer.Option(None, flag, help=f"{help_text} \\[default: {default_text}]",
                                                                 show_default=False)))

        @functools.wraps(command)
        def wrapper(**kwargs):
            chosen = {}
            for arg, (s, flag) in names.items():
                value = kwargs.pop(arg, None)
                if value is None:
                    continue
                if _flag_type(s.annotation) is str and isinstance(value, str) and s.annotation is not str:
                    value = _parse_text(value, s.annotation, flag)
                chosen[s.name] = s.check(coerce(value, s.annotation, s.name, flag), s.name, flag)
            kwargs[param] = chosen
            return command(**kwargs)

        wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        # every generated flag and its declaration (functools.wraps carried the inner decorators' over)
        wrapper.gess_flags = {**getattr(command, "gess_flags", {}), **{flag: s for s, flag in names.values()}}  # type: ignore[attr-defined]
        return wrapper

    return decorate


def _parse_text(text: str, annotation, flag: str):
    """A flag's text as YAML (``[1.5, 2]``, ``{k: 1}``), or comma-separated for a list."""
    import yaml

    if get_origin(annotation) is Literal:
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise GessInputError(flag, None, "a YAML value", repr(text)) from None
    alternatives = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else (annotation,)
    list_like = any(get_origin(a) in (tuple, list) or a in (tuple, list) for a in alternatives)
    if list_like and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        value = [yaml.safe_load(part) for part in str(text).split(",")]
    if _number_kind(annotation) is not None:  # YAML reads 1e3 and nan as text; a number flag means numbers
        value = [_number(v) for v in value] if isinstance(value, list) else _number(value)
    return value


def _number(value):
    """A text that Python reads as a number (``1e3``, ``nan``, ``inf``) as that number; anything else as it is."""
    if not isinstance(value, str):
        return value
    for kind in (int, float):
        try:
            return kind(value.strip())
        except ValueError:
            pass
    return value
