"""Write docs/cli.md from the command line itself, so the page cannot drift from the flags."""
from __future__ import annotations

CONTRACT = """# The command line

Every stage is a subcommand of `gess`, usable alone, and `gess run` chains them. Exit status: 0
done; 2 bad input (one line on standard error naming the file or flag, the field and what was
expected; no traceback); 1 anything else. A re-run of an interrupted command resumes; nothing
finished is written twice or lost.

Flags of option groups are generated from their one declaration (docs/architecture.md):
`GESSDecoder`'s signature, `StructureOptions`, `SamplingOptions`, `CSOptions`, `GGOptions` and
`TrainOptions`. This page is written by `python -m gess.clidoc > docs/cli.md`; a test checks it is
current.
"""


def render() -> str:
    import click
    import typer.main

    from gess.cli import app

    group = typer.main.get_command(app)
    ctx = click.Context(group, info_name="gess")
    lines = [CONTRACT]

    def table(cmd):
        lines.append("| flag | meaning |\n|---|---|")
        for p in cmd.params:
            if p.name == "help":
                continue
            flag = " / ".join(f"`{o}`" for o in p.opts + list(getattr(p, "secondary_opts", [])))
            text = (getattr(p, "help", None) or "").replace("\\[", "[").replace("|", "\\|").replace("\n", " ")  # rich's escape
            lines.append(f"| {flag} | {text} |")

    def walk(cmd, path):
        if not path:
            lines.append("\n## `gess` (before any command)\n")
            table(cmd)
        if hasattr(cmd, "list_commands"):
            for name in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, name), path + [name])
            return
        lines.append(f"\n## `gess {' '.join(path)}`\n\n{(cmd.help or '').strip()}\n")
        table(cmd)

    walk(group, [])
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
