"""Write novamove's man pages from the click definitions: `python docs/man.py DIR` (`make docs`).

One page per command, `novamove.1`, `novamove-migrate.1`, `novamove-plan-drain.1`, ...,
rendered by click-man's ManPage (the `docs` extra). Compared with the plain `click-man` command:
the NAME line carries the command's whole first sentence (click-man cuts it at 45 characters),
a command's epilog (exit codes, examples) is kept, preformatted, and every page points to the
documentation in docs/.
"""

from __future__ import annotations

import inspect
import sys
from importlib.metadata import version
from pathlib import Path

import click
from click_man.man import ManPage

SEE_ALSO = ("The reference (every verb, exit codes, journal, recovery): docs/reference.md in the "
            "novamove source; draining hosts: docs/drain.md; the Ansible collection: "
            "docs/ansible.md.")


def _roff(text: str) -> str:
    """Plain text made safe for roff: backslashes escaped, no line read as a request."""
    lines = text.replace("\\", "\\e").split("\n")
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line for line in lines)


def _first_sentence(cmd: click.Command) -> str:
    text = cmd.short_help or inspect.cleandoc(cmd.help or "")
    first = text.split("\n\n")[0].replace("\n", " ").strip()
    end = first.find(". ")
    return first[: end + 1] if end != -1 else first


def page(ctx: click.Context, version_: str) -> str:
    cmd = ctx.command
    man = ManPage(ctx.command_path)
    man.version = version_
    man.short_help = _roff(_first_sentence(cmd).rstrip("."))
    description = _roff(inspect.cleandoc(cmd.help or ""))
    if cmd.epilog:
        description += "\n\n.nf\n" + _roff(inspect.cleandoc(cmd.epilog)) + "\n.fi"
    man.description = description
    man.synopsis = " ".join(cmd.collect_usage_pieces(ctx))
    man.options = [(rec[0], _roff(rec[1])) for rec in
                   (p.get_help_record(ctx) for p in cmd.params
                    if isinstance(p, click.Option) and not p.hidden) if rec]
    subcommands = getattr(cmd, "commands", {})
    man.commands = [(name, _roff(_first_sentence(sub))) for name, sub in subcommands.items()
                    if not sub.hidden]
    return str(man) + ".SH SEE ALSO\n" + _roff(SEE_ALSO) + "\n"


def write_pages(cli: click.Command, name: str, target: Path, version_: str,
                parent: click.Context | None = None) -> list[Path]:
    ctx = click.Context(cli, info_name=name, parent=parent)
    path = target / (ctx.command_path.replace(" ", "-") + ".1")
    path.write_text(page(ctx, version_))
    written = [path]
    for sub_name, sub in getattr(cli, "commands", {}).items():
        if not sub.hidden:
            written += write_pages(sub, sub_name, target, version_, parent=ctx)
    return written


def main(argv: list[str]) -> int:
    from novamove.cli import main as cli
    target = Path(argv[0] if argv else "build/man")
    target.mkdir(parents=True, exist_ok=True)
    written = write_pages(cli, "novamove", target, version("novamove"))
    print(f"{len(written)} man pages in {target}/ (read one: man -l {target}/novamove-migrate.1)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
