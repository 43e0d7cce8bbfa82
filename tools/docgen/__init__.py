"""Man pages and shell completion scripts, generated from the click application.

A build-time tool, outside the package (not in the wheel):
``python -m tools.docgen`` rewrites ``man/`` and ``completions/`` in the source
tree; ``python -m tools.docgen --check`` only compares and exits 1 listing the
stale files. Names, synopses, options, environment variables, defaults, examples
and exit codes come from the click definitions and from ``ExitCode``'s members
(each carries its meaning), so a new flag or command shows up on the next run.
What click cannot know (the JSON each command prints, the environment and files
forgectl reads) is data: ``prose.toml`` beside this file.
"""

from __future__ import annotations

import inspect
import re
import sys
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from forgectl import __version__
from forgectl.cli.options import CONNECTION, SectionOption
from forgectl.config import CONFIG_FILE
from forgectl.constants import DEFAULT_SERVER, ENV_KEYRING_TIMEOUT, ENV_TRANSPORT
from forgectl.credentials import DEFAULT_KEYRING_TIMEOUT, INDEX_FILE, TOKENS_FILE
from forgectl.dialects import API_CHOICES
from forgectl.errors import ExitCode
from forgectl.settings import TOKEN_SOURCES

PROG = "forgectl"
COMPLETE_VAR = "_FORGECTL_COMPLETE"
#: Shell name → file under completions/ (the names each shell looks up).
COMPLETION_FILES = {"bash": "forgectl.bash", "zsh": "_forgectl", "fish": "forgectl.fish"}
HERE = Path(__file__).resolve().parent
#: The source tree (``man/`` and ``completions/`` live there).
SOURCE_ROOT = HERE.parent.parent
PROSE = HERE / "prose.toml"

# -- the prose, as data ---------------------------------------------------------------
#
# A block is a paragraph (str) or a list of (term, description) pairs. Text is plain:
# it is escaped for roff on output. ``Fields`` render as an indented tagged list.

Fields = list[tuple[str, str]]
Block = str | Fields


def facts() -> dict[str, str]:
    """Values from forgectl itself that the prose names as ``{name}``."""
    return {
        "token_sources": ", ".join(TOKEN_SOURCES),
        "default_server": DEFAULT_SERVER,
        "api_choices": ", ".join(API_CHOICES[:-1]) + f" or {API_CHOICES[-1]}",
        "env_keyring_timeout": ENV_KEYRING_TIMEOUT,
        "default_keyring_timeout": f"{DEFAULT_KEYRING_TIMEOUT:g}",
        "env_transport": ENV_TRANSPORT,
        "config_dir": "$XDG_CONFIG_HOME/forgectl",
        "config_file": CONFIG_FILE,
        "tokens_file": TOKENS_FILE,
        "index_file": INDEX_FILE,
    }


_FACT = re.compile(r"\{(\w+)\}")


@dataclass
class Prose:
    """prose.toml, with ``{name}`` facts filled in and ``@name`` references resolved."""

    data: dict[str, Any]

    @classmethod
    def load(cls, path: Path = PROSE) -> Prose:
        with path.open("rb") as file:
            return cls(tomllib.load(file))

    def text(self, value: str) -> str:
        known = facts()
        return _FACT.sub(lambda m: known.get(m.group(1), m.group(0)), value)

    def fields(self, items: list[list[str]]) -> Fields:
        return [(self.text(term), self.text(description)) for term, description in items]

    def blocks(self, items: list[Any]) -> list[Block]:
        out: list[Block] = []
        for item in items:
            if isinstance(item, str) and item.startswith("@"):
                name, _, count = item[1:].partition(":")
                ref = self.data[name]
                refs = [ref] if isinstance(ref, str) else list(ref)
                out.extend(self.blocks(refs[: int(count)] if count else refs))
            elif isinstance(item, str):
                out.append(self.text(item))
            else:
                out.append(self.fields(item))
        return out

    def output(self, key: str) -> list[Block] | None:
        table = self.data["output"]
        items = table.get(key or "root")
        return None if items is None else self.blocks(items)

    def paragraph(self, name: str) -> str:
        return self.text(self.data[name])

    def environment(self) -> Fields:
        return self.fields(self.data["environment"]["items"])

    def files(self) -> Fields:
        return self.fields(self.data["files"]["items"])

    def examples(self, key: str) -> list[str]:
        return list(self.data["examples"].get(key or "root", []))

    def signals(self) -> str:
        return self.text(self.data["exit_status"]["signals"])


# -- the command tree ----------------------------------------------------------------


@dataclass
class Page:
    """One command and where it sits in the tree."""

    path: tuple[str, ...]  # () for the root
    command: click.Command
    ctx: click.Context

    @property
    def key(self) -> str:
        return " ".join(self.path)

    @property
    def name(self) -> str:
        return "-".join((PROG, *self.path))

    @property
    def invocation(self) -> str:
        return " ".join((PROG, *self.path))


def iter_pages(cli: click.Command) -> Iterator[Page]:
    """The root and every visible subcommand, depth first, in listing order."""

    def walk(
        command: click.Command, path: tuple[str, ...], parent: click.Context | None
    ) -> Iterator[Page]:
        name = path[-1] if path else PROG
        # As command.make_context would, without parsing anything.
        ctx = click.Context(command, info_name=name, parent=parent, **command.context_settings)
        yield Page(path, command, ctx)
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    yield from walk(sub, (*path, name), ctx)

    yield from walk(cli, (), None)


def default_cli() -> click.Command:
    from forgectl.cli.main import cli

    return cli


# -- roff ---------------------------------------------------------------------------

_SPECIAL = {
    "\u2014": r"\(em",
    "\u2013": r"\(en",
    "\u2018": r"\(oq",
    "\u2019": r"\(cq",
    "\u201c": r"\(lq",
    "\u201d": r"\(rq",
    "\u2026": "...",
    "\u2192": r"\(->",
    "\u00a0": r"\ ",
}


def escape(text: str) -> str:
    """Plain text → roff text: backslashes, hyphens (as minus), non-ASCII, control
    lines. Use for every piece of text that is not a roff request."""
    out: list[str] = []
    for char in text:
        if char == "\\":
            out.append(r"\e")
        elif char == "-":
            out.append(r"\-")
        elif char in _SPECIAL:
            out.append(_SPECIAL[char])
        elif ord(char) > 126:
            out.append(rf"\[u{ord(char):04X}]")
        elif ord(char) < 32 and char not in "\n":
            continue
        else:
            out.append(char)
    lines = "".join(out).split("\n")
    return "\n".join(_guard_line(line) for line in lines)


def _guard_line(line: str) -> str:
    """A line must not start with a control character or a space (a break)."""
    line = line.rstrip()
    if line.startswith((".", "'", " ")):
        return r"\&" + line
    return line


def bold(text: str) -> str:
    return rf"\fB{escape(text)}\fR"


def italic(text: str) -> str:
    return rf"\fI{escape(text)}\fR"


def _fill(text: str) -> str:
    """A paragraph of prose: joined into one line (groff fills it), escaped."""
    return escape(" ".join(text.split()))


# -- help text ----------------------------------------------------------------------


@dataclass
class Paragraph:
    text: str
    verbatim: bool  # click's \b marker: keep the line breaks


def paragraphs(text: str | None) -> list[Paragraph]:
    """Click help or epilog text as paragraphs (``\\f`` ends it, ``\\b`` keeps lines)."""
    if not text:
        return []
    text = inspect.cleandoc(text).split("\f")[0]
    out: list[Paragraph] = []
    for chunk in re.split(r"\n\s*\n", text):
        chunk = chunk.strip("\n")
        if not chunk.strip():
            continue
        if chunk.startswith("\b"):
            body = chunk[1:].lstrip("\n").rstrip()
            # click needs \b to keep any line break; a man page only for layout
            # (indented lines: lists, examples). Plain prose is filled.
            layout = any(line.startswith(" ") for line in body.splitlines()[1:])
            out.append(Paragraph(body, layout))
        else:
            out.append(Paragraph(chunk.strip(), False))
    return out


def split_epilog(text: str | None) -> tuple[list[Paragraph], list[str]]:
    """The epilog's prose (for DESCRIPTION) and its ``Examples:`` lines.

    An ``Exit status:`` paragraph is dropped: EXIT STATUS is generated from the
    exit codes themselves.
    """
    prose: list[Paragraph] = []
    examples: list[str] = []
    for para in paragraphs(text):
        head, _, rest = para.text.partition("\n")
        title = head.strip().rstrip(":").lower()
        if head.strip().endswith(":") and title == "examples":
            examples.extend(line.strip() for line in rest.splitlines() if line.strip())
        elif para.text.lower().startswith("exit status"):
            continue
        else:
            prose.append(para)
    return prose, examples


def summary(command: click.Command) -> str:
    """The one-line summary: the first sentence of the help, without its full stop."""
    text = command.get_short_help_str(limit=300)
    return text.rstrip(".")


def render_blocks(blocks: Sequence[Block]) -> list[str]:
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, str):
            lines += [".PP", _fill(block)]
        else:
            lines.append(".RS 4")
            for term, description in block:
                lines += [".TP", bold(term), _fill(description)]
            lines.append(".RE")
    return lines


def render_paragraphs(paras: Sequence[Paragraph]) -> list[str]:
    lines: list[str] = []
    for para in paras:
        if para.verbatim:
            lines += [".PP", ".nf", escape(para.text), ".fi"]
        else:
            lines += [".PP", _fill(para.text)]
    return lines


# -- options ------------------------------------------------------------------------


def option_envvars(option: click.Option) -> list[str]:
    """The variables an option reads (its own ``envvar``)."""
    if not option.envvar:
        return []
    return [option.envvar] if isinstance(option.envvar, str) else list(option.envvar)


def is_connection_option(param: click.Parameter) -> bool:
    """A connection option: described on forgectl(1), named on the other pages."""
    return isinstance(param, SectionOption) and param.section == CONNECTION


def _metavar(param: click.Parameter, ctx: click.Context) -> str:
    try:
        return param.make_metavar(ctx)  # type: ignore[call-arg, unused-ignore]
    except TypeError:  # click < 8.2 takes no context
        return param.make_metavar()  # type: ignore[call-arg, unused-ignore]


def _option_term(option: click.Option, ctx: click.Context) -> str:
    # Short names first, as in click's own help: "-s, --server URL".
    names = sorted((*option.opts, *option.secondary_opts), key=lambda n: n.startswith("--"))
    term = ", ".join(bold(name) for name in names)
    if not option.is_flag and not option.count:
        term += " " + italic(_metavar(option, ctx))
    return term


def _click_unset() -> object:
    """click >= 8.3 marks "no default" with a sentinel rather than None."""
    import importlib

    try:
        return getattr(importlib.import_module("click._utils"), "UNSET", None)
    except ImportError:  # pragma: no cover
        return None


_UNSET = _click_unset()


def _default(option: click.Option, ctx: click.Context) -> str | None:
    if option.is_flag or option.count or "(default " in (option.help or ""):
        return None  # the help says it already, in words
    value = option.get_default(ctx, call=False)
    if value is None or value is _UNSET or callable(value) or value in ((), ""):
        return None
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    return str(value)


def documented_options(page: Page) -> list[click.Option]:
    """The options a page describes: all on forgectl(1); elsewhere all but the
    connection options (forgectl(1) describes those)."""
    return [
        param
        for param in page.command.get_params(page.ctx)
        if isinstance(param, click.Option)
        and not param.hidden
        and not (page.path and is_connection_option(param))
    ]


def render_options(page: Page) -> list[str]:
    lines: list[str] = []
    for param in documented_options(page):
        text = " ".join((param.help or "").split())
        if isinstance(param.type, click.Choice) and param.metavar:
            text += f" One of: {', '.join(map(str, param.type.choices))}."
        extra: list[str] = []
        default = _default(param, page.ctx)
        if default is not None:
            extra.append(f"Default: {default}.")
        envvars = option_envvars(param)
        if envvars:
            label = "Environment variable" if len(envvars) == 1 else "Environment variables"
            extra.append(f"{label}: {', '.join(envvars)}.")
        if param.multiple:
            extra.append("May be given more than once.")
        if param.required:
            extra.append("Required.")
        lines += [".TP", _option_term(param, page.ctx), _fill(text)]
        if extra:
            lines += [".br", _fill(" ".join(extra))]
    return lines


def collect_envvars(pages: Sequence[Page]) -> dict[str, str]:
    """Every variable named on an option in the tree → the first option naming it."""
    found: dict[str, str] = {}
    for page in pages:
        for param in page.command.get_params(page.ctx):
            if isinstance(param, click.Option):
                for name in option_envvars(param):
                    found.setdefault(name, max(param.opts, key=len))
    return found


# -- pages --------------------------------------------------------------------------


def exit_codes() -> Fields:
    """Every ``ExitCode`` as (value, meaning), in numeric order; the codes only
    ``--exit-status`` gives say so."""
    out: Fields = []
    for member in sorted(ExitCode, key=int):
        meaning = member.meaning[0].upper() + member.meaning[1:]
        if member.exit_status_only:
            meaning = f"With --exit-status: {member.meaning}"
        out.append((str(int(member)), meaning + "."))
    return out


def _synopsis(page: Page, root_page: Page) -> list[str]:
    words = [bold(PROG)]
    if page.path:
        words.append("[" + italic("GLOBAL OPTIONS") + "]")
        words.extend(bold(part) for part in page.path)
    pieces = page.command.collect_usage_pieces(page.ctx)
    for piece in pieces:
        if piece == "[OPTIONS]":
            words.append("[" + italic("OPTIONS") + "]")
        else:
            words.append(italic(piece))
    return [".PP", " ".join(words)]


def render_page(page: Page, pages: Sequence[Page], prose: Prose) -> str:
    command = page.command
    root_page = pages[0]
    title = escape(page.name.upper())
    lines = [
        '.\\" Generated by python -m tools.docgen from the click definitions: do not edit.',
        f'.TH "{title}" "1" "" "{PROG} {escape(__version__)}" "{PROG} manual"',
        ".nh",
        ".ad l",
        ".SH NAME",
        f"{escape(page.name)} \\- {escape(summary(command))}",
        ".SH SYNOPSIS",
        *_synopsis(page, root_page),
        ".SH DESCRIPTION",
    ]
    epilog, examples = split_epilog(command.epilog)
    lines += render_paragraphs(paragraphs(command.help))
    if command.deprecated:
        lines += [".PP", _fill("This command is deprecated.")]
    lines += render_paragraphs(epilog)
    children = [p for p in pages if p.path[:-1] == page.path and len(p.path) == len(page.path) + 1]
    if children:
        lines.append(".SH COMMANDS")
        for child in children:
            lines += [
                ".TP",
                bold(child.path[-1]),
                _fill(summary(child.command) + "."),
                f"See \\fB{escape(child.name)}\\fR(1).",
            ]
    lines.append(".SH OPTIONS")
    lines += render_options(page)
    if page.path and any(is_connection_option(p) for p in command.get_params(page.ctx)):
        lines += [".PP", _fill(prose.paragraph("connection"))]
    lines.append(".SH OUTPUT")
    blocks = prose.output(page.key)
    if blocks is None:
        blocks = prose.output(command.name or "")
    lines += render_blocks(blocks if blocks is not None else [prose.paragraph("no_output")])
    lines.append(".SH EXIT STATUS")
    lines += render_blocks([exit_codes(), prose.signals()])
    for param in page.command.get_params(page.ctx):
        if isinstance(param, click.Option) and "--exit-status" in param.opts and param.help:
            lines += render_blocks([f"With --exit-status: {param.help}"])
    lines.append(".SH ENVIRONMENT")
    env = prose.environment()
    listed = {name for names, _ in env for name in names.split(", ")}
    for name, option in sorted(collect_envvars(pages).items()):
        if name not in listed:
            env.append((name, f"As for {option}."))
    lines += render_blocks([env])
    lines.append(".SH FILES")
    lines += render_blocks([prose.files()])
    extra = prose.examples(page.key) or prose.examples(command.name or "")
    all_examples = examples + [e for e in extra if e not in examples]
    if all_examples:
        lines += [".SH EXAMPLES", ".PP", ".RS 4", ".nf", escape("\n".join(all_examples))]
        lines += [".fi", ".RE"]
    lines.append(".SH SEE ALSO")
    refs = [p.name for p in pages if p is not page and _related(p.path, page.path)] + ["jq"]
    for i, name in enumerate(refs):
        lines.append(f".BR {escape(name)} (1){',' if i < len(refs) - 1 else ''}")
    return "\n".join(lines) + "\n"


def _related(other: tuple[str, ...], page: tuple[str, ...]) -> bool:
    """The root, siblings and children of a page belong in its SEE ALSO."""
    return not other or other[:-1] == page[:-1] or other[:-1] == page


# -- generation ---------------------------------------------------------------------


def completion_script(cli: click.Command, shell: str) -> str:
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    if cls is None:
        raise ValueError(f"click has no completion for {shell}")
    return cls(cli, {}, PROG, COMPLETE_VAR).source()


def generate(cli: click.Command | None = None, prose: Prose | None = None) -> dict[str, str]:
    """Every generated file: path relative to the source root → content."""
    cli = cli or default_cli()
    prose = prose or Prose.load()
    files: dict[str, str] = {}
    for shell, name in COMPLETION_FILES.items():
        files[f"completions/{name}"] = completion_script(cli, shell)
    pages = list(iter_pages(cli))
    for page in pages:
        files[f"man/{page.name}.1"] = render_page(page, pages, prose)
    return files


def stale(root: Path, files: dict[str, str]) -> list[str]:
    """Generated files that differ from what is in ``root``, and stray ones there."""
    out = []
    for rel, content in files.items():
        path = root / rel
        if not path.is_file() or path.read_text(encoding="utf-8") != content:
            out.append(rel)
    for folder, pattern in (("man", "*.1"), ("completions", "*")):
        for path in sorted((root / folder).glob(pattern)):
            rel = f"{folder}/{path.name}"
            if path.is_file() and rel not in files:
                out.append(rel)
    return out


def write(root: Path, files: dict[str, str]) -> list[str]:
    """Write the files under ``root`` and remove stray generated ones; return changes."""
    changed = stale(root, files)
    for rel in changed:
        path = root / rel
        if rel in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(files[rel], encoding="utf-8")
        else:
            path.unlink()
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m tools.docgen",
        description="Regenerate man/ and completions/ from the click application.",
    )
    parser.add_argument(
        "--check", action="store_true", help="Only compare; exit 1 listing stale files."
    )
    parser.add_argument(
        "--root", type=Path, default=SOURCE_ROOT, help="Source tree (default: %(default)s)."
    )
    args = parser.parse_args(argv)
    prose = Prose.load()
    files = generate(prose=prose)
    for page in iter_pages(default_cli()):
        if prose.output(page.key) is None and prose.output(page.command.name or "") is None:
            print(f"docgen: note: no OUTPUT prose for {page.invocation!r}", file=sys.stderr)
    if args.check:
        changed = stale(args.root, files)
        for rel in changed:
            print(rel)
        if changed:
            print("docgen: stale files: run python -m tools.docgen", file=sys.stderr)
        return 1 if changed else 0
    for rel in write(args.root, files):
        print(f"wrote {rel}" if rel in files else f"removed {rel}")
    return 0
