"""A generated contract, like scikit-learn's check_estimator: every declared numeric option, fed bad values.

The cases are generated from the declarations (the subclasses of ``gess.options.Options``,
``GESSDecoder``'s signature, every option of every command of the typer app), so a new option is
covered the day it is declared. Each gets NaN, infinity, 0, a negative, a huge number (1e308) and
a wrongly typed value ("abc"):

* an option dataclass built in Python either accepts the value or raises ``GessInputError``;
* a flag makes the command exit 0 or exit 2 with one line on stderr (no traceback), touch no file
  outside its output directory, and (for a flag with a declared ``Range``) be refused exactly when
  the value is not a number of the option's kind within the range. Commands get inputs that are
  missing, so a value the flag accepts costs nothing: the command then stops on the missing input.
  The plain options without a declared range (``--clusters``, ``--trials``, ``--seed``, ...) run
  on tiny real inputs instead.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from conftest import write_mat

BAD_VALUES = ("nan", "inf", "0", "-1", "1e308", "abc")
MISSING = "missing-input"  # relative to the test's working directory: never there


# ------------------------------------------------------------------ the declarations
def _option_classes() -> list[type]:
    import gess.cli  # noqa: F401  (imports every option dataclass a command takes)
    import gess.run  # noqa: F401
    from gess.options import Options

    found, todo = [], list(Options.__subclasses__())
    while todo:
        cls = todo.pop()
        if cls not in found:
            found.append(cls)
            todo.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: c.__name__)


def _numeric_fields(cls):
    from gess.options import _number_kind, option_specs

    return [(s, _number_kind(s.annotation)) for s in option_specs(cls) if _number_kind(s.annotation) is not None]


def _python_value(text: str):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


CONSTRUCTION_CASES = [(cls, spec.name, text) for cls in _option_classes() for spec, _ in _numeric_fields(cls)
                      for text in BAD_VALUES]


def _case_id(case) -> str:
    return "-".join(str(getattr(part, "__name__", part)) for part in case)


def test_the_declarations_are_found():
    names = {cls.__name__ for cls in _option_classes()}
    assert {"CSOptions", "GGOptions", "SamplingOptions", "TrainOptions", "StructureOptions", "SelfSupervisedOptions",
            "NSDPrepareOptions"} <= names, names


def test_every_generated_flag_says_what_it_is():
    """A flag's help comes from its declaration: a dataclass field's ``help``, or the Parameters section of the
    estimator's docstring, so an option declared without a description fails here rather than showing its name."""
    from gess.cli import app
    from typer.main import get_command

    todo, checked = list(get_command(app).commands.items()), 0
    while todo:
        name, command = todo.pop()
        todo += [(f"{name} {sub}", c) for sub, c in getattr(command, "commands", {}).items()]
        for flag, spec in getattr(command.callback, "gess_flags", {}).items():
            assert spec.help, f"gess {name} {flag} ({spec.name}) has no help text"
            checked += 1
    assert checked > 50, checked
    fit = get_command(app).commands["fit"]
    assert fit.callback.gess_flags["--gate"].help.startswith("M_g, the name of a registered gate")


@pytest.mark.parametrize("cls,name,text", CONSTRUCTION_CASES, ids=map(_case_id, CONSTRUCTION_CASES))
def test_an_option_dataclass_built_in_python_accepts_or_refuses_as_bad_input(cls, name, text):
    from gess.errors import GessInputError

    spec, (kind, _, many) = next((s, k) for s, k in _numeric_fields(cls) if s.name == name)
    value = _python_value(text)
    expected_ok = _acceptable(value, kind, spec.range)
    try:
        cls(**{name: (value,) if many else value})
    except GessInputError as exc:
        assert not expected_ok, f"{cls.__name__}({name}={value!r}) refused: {exc}"
        assert "\n" not in str(exc)
        return
    assert expected_ok, f"{cls.__name__}({name}={value!r}) accepted"


@pytest.mark.parametrize("cls", [c for c in _option_classes() if any(k[0] is float for _, k in _numeric_fields(c))],
                         ids=lambda c: c.__name__)
def test_a_nan_in_any_float_field_is_refused_whoever_defines_post_init(cls):
    """A subclass with its own ``__post_init__`` (Sampling, CS, Train, SelfSupervised, NSDPrepare) is range-checked too."""
    from gess.errors import GessInputError

    for spec, (kind, _, many) in _numeric_fields(cls):
        if kind is float:
            with pytest.raises(GessInputError, match=spec.name):
                cls(**{spec.name: (math.nan,) if many else math.nan})


def test_gessdecoder_parameters_from_a_config_accept_or_refuse_as_bad_input():
    from gess.decoding import GESSDecoder
    from gess.errors import GessInputError
    from gess.options import _number_kind, option_specs, validated_kwargs

    outcomes = {"accepted": 0, "refused": 0}
    for spec in option_specs(GESSDecoder):
        kind = _number_kind(spec.annotation)
        if kind is None:
            continue
        for text in BAD_VALUES:
            value = _python_value(text)
            try:
                validated_kwargs(GESSDecoder, {spec.name: [value] if kind[2] else value})
                outcomes["accepted"] += 1
                assert _acceptable(value, kind[0], spec.range), (spec.name, value)
            except GessInputError:
                outcomes["refused"] += 1
                assert not _acceptable(value, kind[0], spec.range), (spec.name, value)
    assert outcomes["refused"] > 0


def _acceptable(value, kind, allowed) -> bool:
    """The rule written out independently: a number of the option's kind, finite, within its range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if kind is int and not isinstance(value, int):
        return False
    return math.isfinite(value) and (allowed is None or allowed.accepts(value))


# ------------------------------------------------------------------ the command line
def _commands():
    """(path, click command, {flag: OptionSpec of a generated flag}) of every command of the app."""
    import typer.main

    from gess.cli import app

    def callbacks(typer_app, path=()):
        for info in typer_app.registered_commands:
            yield path + ((info.name or info.callback.__name__.replace("_", "-")),), info.callback
        for group in typer_app.registered_groups:
            yield from callbacks(group.typer_instance, path + (group.name,))

    flags = {p: getattr(cb, "gess_flags", {}) for p, cb in callbacks(app)}
    root = typer.main.get_command(app)
    out = []
    for path in sorted(flags):
        cmd = root
        for name in path:
            cmd = cmd.commands[name]
        out.append((path, cmd, flags[path]))
    return root, out


def _annotation_kind(param):
    from gess.options import _number_kind

    descriptor = getattr(param, "type_descriptor", None)
    return _number_kind(descriptor.annotation) if descriptor is not None else None


def _flag_cases():
    root, commands = _commands()
    cases = []
    for param in root.params:  # the global options, read before any command
        if _annotation_kind(param) is not None:
            cases += [(("split", "--help"), param.opts[0], None, text, True) for text in BAD_VALUES]
    for path, cmd, specs in commands:
        for param in cmd.params:
            flag = param.opts[0] if param.opts else None
            spec = specs.get(flag)
            if spec is not None:
                from gess.options import _number_kind

                if _number_kind(spec.annotation) is not None:
                    cases += [(path, flag, spec, text, True) for text in BAD_VALUES]
            elif flag and _annotation_kind(param) is not None:
                cases += [(path, flag, None, text, False) for text in BAD_VALUES]
    return cases


FLAG_CASES = _flag_cases()
OUTCOMES: dict[str, int] = {}


def _snapshot(root: Path, skip: Path) -> dict:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
            if p.is_file() and skip not in p.parents}


def _base_args(path, tiny: dict | None) -> list[str]:
    """The command with inputs: missing ones (MISSING), or tiny real ones for the options without a range."""
    out = "out"
    if tiny is None:
        return {("fit",): ["fit", "--data", MISSING, "--out", out],
                ("prior", "train"): ["prior", "train", "--images", MISSING, "--out", out],
                ("reconstruct",): ["reconstruct", "--model", MISSING, "--data", MISSING, "--out", out],
                ("prepare", "nsd"): ["prepare", "nsd", "--nsd-root", MISSING, "--out", out],
                ("split",): ["split", "--images", MISSING, "--out", f"{out}/split.json"],
                ("evaluate",): ["evaluate", "--recon", MISSING, "--data", MISSING, "--out", f"{out}/m.json"],
                ("split", "--help"): ["split", "--help"]}[tuple(path)]
    return {("split",): ["split", "--images", tiny["images"], "--out", f"{out}/split.json", "--clusters", "2"],
            ("evaluate",): ["evaluate", "--recon", tiny["recon"], "--data", tiny["data"], "--out", f"{out}/m.json",
                            "--trials", "2"],
            ("reconstruct",): ["reconstruct", "--model", tiny["model"], "--data", tiny["data"], "--generator",
                               tiny["prior"], "--steps", "1", "--out", out]}[tuple(path)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Tiny real inputs: a .mat dataset, a model, a 1-step prior, reconstructions, an image folder."""
    from PIL import Image

    from gess.cli import main
    from gess.data import load_mat

    root = tmp_path_factory.mktemp("tiny")
    data = root / "x.mat"
    write_mat(data, n_train=8, n_test=3)

    def ok(args):
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in args])
        assert exc.value.code == 0

    ok(["fit", "--data", data, "--out", root / "model"])
    ok(["prior", "train", "--images", data, "--out", root / "prior", "--steps", "1", "--batch-size", "4",
        "--image-size", "8", "--block-out-channels", "[8]", "--no-augment"])
    recon, images = root / "recon", root / "images"
    recon.mkdir()
    images.mkdir()
    for sid, img in zip(load_mat(data).test.stimulus_ids, load_mat(data).test.images):
        Image.fromarray(img[..., 0]).save(recon / f"{sid}.png")
    rng = np.random.default_rng(0)
    for i in range(6):  # 4:3, as photos are
        Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(images / f"p{i}.png")
    return {k: str(v) for k, v in {"data": data, "model": root / "model", "prior": root / "prior", "recon": recon,
                                   "images": images}.items()}


@pytest.mark.parametrize("path,flag,spec,text,cheap", FLAG_CASES,
                         ids=[f"{' '.join(p)}{f}={t}" for p, f, _, t, _ in FLAG_CASES])
def test_a_bad_numeric_flag_exits_0_or_2_in_one_line_touching_nothing_outside_out(tmp_path, capsys, monkeypatch,
                                                                                  request, path, flag, spec, text, cheap):
    from gess.cli import main
    from gess.options import _number_kind

    inputs = None if cheap else request.getfixturevalue("tiny")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    before = _snapshot(tmp_path, out)
    args = _base_args(path, inputs)
    argv = [f"{flag}={text}", *args] if path == ("split", "--help") else [*args, f"{flag}={text}"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(argv)
    code, err = exc.value.code, capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code in (0, 2), err
    assert "Traceback" not in err, err
    assert _snapshot(tmp_path, out) == before, "a file outside --out was written"
    if code == 2:
        assert len(lines) == 1, err
    refused = code == 2 and (flag in lines[0] or (spec is not None and spec.name in lines[0]))
    if spec is not None:  # a declared range: refused exactly when the rule says so, before any work (nothing written)
        kind = _number_kind(spec.annotation)
        should = _acceptable(_python_value(text), kind[0], spec.range)
        assert refused != should, (flag, text, err)
        if refused:
            assert not out.exists(), "a refused command left its output directory behind"
    outcome = "refused (exit 2)" if refused else \
        "accepted (ran, exit 0)" if code == 0 else "accepted (then stopped on a missing input, exit 2)"
    OUTCOMES[outcome] = OUTCOMES.get(outcome, 0) + 1


def test_every_numeric_flag_is_tried():
    """The generated cases reach every command that has a numeric option (a new one is covered automatically)."""
    tried = {(p, f) for p, f, *_ in FLAG_CASES}
    for needed in [(("fit",), "--alphas"), (("fit",), "--ss-learning-rate"), (("fit",), "--structure-radius"),
                   (("reconstruct",), "--guidance-scale"), (("reconstruct",), "--cs-tau"), (("reconstruct",), "--seed"),
                   (("prior", "train"), "--learning-rate"), (("prepare", "nsd"), "--image-size"),
                   (("split",), "--clusters"), (("evaluate",), "--trials"), (("split", "--help"), "--threads")]:
        assert needed in tried, needed
    assert len(FLAG_CASES) == len(set((p, f, t) for p, f, _, t, _ in FLAG_CASES))


def teardown_module(module):
    if OUTCOMES:
        print(f"\noption contract: {len(CONSTRUCTION_CASES)} dataclass cases; flag cases {OUTCOMES}")
