"""Man pages and shell completion scripts, generated from the click application.

``python -m forgectl.docgen`` rewrites ``man/`` and ``completions/`` in the source
tree; ``python -m forgectl.docgen --check`` only compares and exits 1 listing the
stale files. Names, synopses, options, environment variables, defaults, examples
and exit codes come from the click definitions (and ``forgectl.errors``), so a new
flag or command shows up on the next run. What click cannot know (the JSON each
command prints, the environment and files forgectl reads) is kept here as data.

The CLI never imports this module: it costs nothing at run time.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from . import __version__
from .config import CONFIG_FILE
from .constants import ENV_KEYRING_TIMEOUT, ENV_TRANSPORT
from .credentials import DEFAULT_KEYRING_TIMEOUT, INDEX_FILE, TOKENS_FILE
from .errors import ExitCode
from .settings import TOKEN_SOURCES

PROG = "forgectl"
COMPLETE_VAR = "_FORGECTL_COMPLETE"
#: Shell name → file under completions/ (the names each shell looks up).
COMPLETION_FILES = {"bash": "forgectl.bash", "zsh": "_forgectl", "fish": "forgectl.fish"}
#: The source tree this module belongs to (``man/`` and ``completions/`` live there).
SOURCE_ROOT = Path(__file__).resolve().parent.parent

# -- hand-written prose ------------------------------------------------------------
#
# A block is a paragraph (str) or a list of (term, description) pairs. Text is plain:
# it is escaped for roff on output. ``Fields`` render as an indented tagged list.

Fields = list[tuple[str, str]]
Block = str | Fields

_CONVENTIONS: list[Block] = [
    "Data goes to standard output, everything else (status, warnings, errors, "
    "-v traces) to standard error. When standard output is not a terminal, or with "
    "--json, each event is printed as one JSON object per line (JSON lines), so the "
    "output can be piped to jq(1). On a terminal the output is human-readable "
    "instead (--pretty forces that). Both server dialects, the documented /ws API "
    "and the real Forge server's /api JSON Patch streams, produce the same JSON.",
    "Fields the documented API defines are printed as the server sent them; "
    "fields a server adds beyond them are kept. When talking to the real Forge "
    "server, forgectl builds the documented objects from its records (described "
    "per command in forgectl-logs(1), forgectl-monitor(1) and forgectl-diff(1)).",
]

#: OUTPUT section per command path ("" is the root group).
OUTPUT: dict[str, list[Block]] = {
    "": _CONVENTIONS,
    "logs": [
        "Without --raw, one JSON object per normalized log entry:",
        [
            ("level", "One of debug, info, warn, error, success."),
            ("message", "The log text (a string, possibly with newlines)."),
            ("timestamp", "ISO 8601 time of the entry, or null when the server gives none."),
            (
                "source",
                "What produced the entry. From the real Forge server: user, assistant, "
                "system, executor, tool:NAME for a tool call, or stdout/stderr for a "
                "script process shown from its raw output.",
            ),
            (
                "metadata",
                "An object, or null. From the real Forge server it holds entryType "
                "(the server's entry kind, e.g. assistant_message, tool_use, "
                "error_message, or STDOUT/STDERR), index (the entry's position in the "
                "process log), revision (0, then 1, 2, ... when the server rewrites an "
                "entry in place after it was printed, e.g. streaming assistant text: the "
                "entry is printed again with the same index; an entry is held until it "
                "stops changing, so most rewrites never show), and where they apply "
                "toolName, status, "
                "action, errorType and details (the server's own metadata).",
            ),
        ],
        "Script processes (setup, cleanup, dev server) have no normalized stream on the "
        "real Forge server once they have finished: their raw output is shown instead, "
        "one entry per line, stderr lines at level warn (a note on stderr says so).",
        "With --raw the process's output is written to standard output byte for byte, "
        "whether or not it is a terminal. With --raw --json each chunk is one object "
        "instead:",
        [
            ("stream", "stdout, stderr, or null when the server does not say."),
            ("content", "The text of the chunk (chunks are not split into lines)."),
        ],
    ],
    "monitor": [
        "One JSON object per execution-process event, with these fields in common:",
        [
            (
                "type",
                "process_started, process_progress, process_completed, process_failed "
                "or process_stopped. Other types a server sends are printed unchanged.",
            ),
            ("processId", "The execution process (see forgectl-logs(1))."),
            ("taskAttemptId", "The task attempt it belongs to (see forgectl-diff(1))."),
        ],
        "and, by type:",
        [
            ("process_started", "executor (e.g. CLAUDE_CODE), startedAt."),
            (
                "process_progress",
                "progress: {percentage, stage, message, estimatedRemaining (ms)}.",
            ),
            (
                "process_completed",
                "completedAt, duration (milliseconds), exitCode, and from the documented "
                "API stats: {filesChanged, linesAdded, linesRemoved}.",
            ),
            ("process_failed", "failedAt, error: {code, message, details}."),
            ("process_stopped", "stoppedAt, stoppedBy, reason."),
        ],
        "From the real Forge server every event also carries runReason (setupscript, "
        "cleanupscript, codingagent or devserver); process_failed and process_stopped "
        "carry exitCode (null when the process was killed); error.code is "
        "EXECUTION_ERROR and reason is killed. That server sends no progress events.",
        "Processes already running when the stream opens are reported as "
        "process_started; with --history, processes that had already ended are reported "
        "too (a process_started followed by its final event).",
    ],
    "diff": [
        "One JSON object per diff update:",
        [
            ("type", "Always diff_update."),
            ("attemptId", "The task attempt."),
            (
                "diff",
                "The attempt's whole current diff in git's unified format (an empty "
                "string when nothing changed), ready for git apply. Each update repeats "
                "the complete diff, not the change since the previous one. Files whose "
                "contents the server omits (too large, or --stat) appear as a "
                '"Binary files ... differ" header and a comment with their counts.',
            ),
            ("filesChanged", "Number of changed files."),
            ("insertions", "Lines added."),
            ("deletions", "Lines removed."),
            ("timestamp", "ISO 8601 time of the update."),
        ],
        "Without --follow exactly one object is printed: the diff as it stands. "
        "With --follow a new object follows each change until interrupted.",
    ],
}

_NO_DATA = (
    "Nothing on standard output. What was done (or why not) is reported on standard "
    "error, and the token itself is never printed."
)
OUTPUT["login"] = [_NO_DATA]
OUTPUT["logout"] = [_NO_DATA]
OUTPUT["auth"] = ["See the pages of the subcommands."]
OUTPUT["auth status"] = [
    "Without --json, one line per item (server, profile, api, token, and tls for "
    "https servers) on standard output. With --json, one JSON object:",
    [
        ("server", "The normalized server URL."),
        ("profile", "The profile in use, or null."),
        ("api", "The configured dialect: auto, documented or forge."),
        ("token", "true when a token is set (the token itself is never printed)."),
        (
            "token_source",
            f"Where it comes from: {', '.join(TOKEN_SOURCES)}; null without a token.",
        ),
        (
            "tls",
            "For https servers, how certificates are checked (system trust store, a CA "
            "file, or verification disabled); null for http.",
        ),
    ],
]

_NO_OUTPUT_PROSE: list[Block] = [
    "See DESCRIPTION above, and forgectl(1) for the conventions every command "
    "follows: data on standard output, diagnostics on standard error.",
]

#: ENVIRONMENT: every variable forgectl reads. Variables found on options but
#: missing here are still listed (described by their option), so none is forgotten.
ENVIRONMENT: Fields = [
    ("FORGE_URL", "The Forge server, as for --server (default http://localhost:8887)."),
    (
        "FORGE_TOKEN",
        "API token, as for --token. Preferred over the flag, which other users can "
        "see in process listings.",
    ),
    ("FORGE_API", "Server dialect, as for --api: auto, documented or forge."),
    ("FORGE_PROFILE", "Profile of the configuration file to use, as for --profile."),
    ("FORGE_CACERT", "CA bundle trusted for https and wss, as for --cacert."),
    ("FORGECTL_DEBUG", "When set, show a traceback on unexpected errors (as --debug)."),
    (
        "FORGECTL_CONFIG_DIR",
        "forgectl's configuration directory (see FILES), instead of $XDG_CONFIG_HOME/forgectl.",
    ),
    ("XDG_CONFIG_HOME", "Base of the configuration directory (default ~/.config)."),
    (
        ENV_KEYRING_TIMEOUT,
        "Seconds to wait for the OS keyring before treating it as unavailable "
        f"(default {DEFAULT_KEYRING_TIMEOUT:g}).",
    ),
    (
        ENV_TRANSPORT,
        "Set to websockets to stream through the websockets library's asyncio client "
        "instead of forgectl's own faster transport (which it already uses whenever "
        "a proxy applies).",
    ),
    ("NO_COLOR", "When set and not empty, pretty output has no colour (unless --color always)."),
    ("FORCE_COLOR", "When set, pretty output is coloured even when not on a terminal."),
    (
        "HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY",
        "Standard proxy settings (lower-case names too), honoured for the server's "
        "URLs (HTTP and SOCKS proxies).",
    ),
]

_DIR = "$XDG_CONFIG_HOME/forgectl"
FILES: Fields = [
    (
        f"{_DIR}/{CONFIG_FILE}",
        "Configuration file: named server profiles, chosen with --profile or FORGE_PROFILE "
        '(else default_profile, else a profile named "default"). A profile is a '
        "[profiles.NAME] table with any of server, api, output, cacert, insecure and "
        "token_file (a file holding the token); it only fills what flags and environment "
        "variables left unset. The directory is $FORGECTL_CONFIG_DIR when set, "
        "~/.config/forgectl when XDG_CONFIG_HOME is not.",
    ),
    (
        f"{_DIR}/{TOKENS_FILE}",
        "Plain-text token file (mode 0600), written by forgectl login --insecure-storage "
        "for machines without a usable keyring; tokens are kept per server URL. "
        "Used after --token, FORGE_TOKEN, the profile's token_file and the OS keyring.",
    ),
    (
        f"{_DIR}/{INDEX_FILE}",
        "Which servers have a token in the OS keyring (no secrets), so that other "
        "commands never load the keyring.",
    ),
]

#: Extra examples per command, after those of the command's epilog.
EXAMPLES: dict[str, list[str]] = {
    "": [
        "# the ids of every process that failed, as they fail",
        "forgectl monitor --json | jq -r 'select(.type==\"process_failed\") | .processId'",
    ],
    "logs": [
        "# messages of one tool, with their time",
        'forgectl logs 3f2a... | jq -r \'select(.source=="tool:bash") | "\\(.timestamp) \\(.message)"\'',
    ],
    "login": [
        "# CI: store a token from a secret without a prompt",
        'echo "$FORGE_TOKEN" | forgectl login --with-token --insecure-storage',
        "forgectl --server https://forge.example.com login",
    ],
    "logout": ["forgectl --server https://forge.example.com logout"],
    "auth": [
        "forgectl auth login --with-token < token.txt",
        "forgectl auth status",
        "forgectl auth logout",
    ],
    "auth status": ["forgectl auth status --json | jq -r .token_source"],
    "diff": [
        "# changed lines so far",
        "forgectl diff 8c1e... | jq '.insertions + .deletions'",
    ],
}


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
    from .cli.main import cli

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

_ENV_IN_HELP = re.compile(r"\s*\[env var: ([^\]]+)\]\s*$")


def option_envvars(option: click.Option) -> list[str]:
    """The variables an option reads: its own ``envvar``, or the ``[env var: X]`` its
    help names (options after a subcommand read theirs at the root)."""
    if option.envvar:
        names = [option.envvar] if isinstance(option.envvar, str) else list(option.envvar)
        return names
    match = _ENV_IN_HELP.search(option.help or "")
    return [name.strip() for name in match.group(1).split(",")] if match else []


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
    if option.is_flag or option.count:
        return None
    value = option.get_default(ctx, call=False)
    if value is None or value is _UNSET or callable(value) or value in ((), ""):
        return None
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    return str(value)


def render_options(page: Page) -> list[str]:
    lines: list[str] = []
    for param in page.command.get_params(page.ctx):
        if not isinstance(param, click.Option) or param.hidden:
            continue
        help_text = _ENV_IN_HELP.sub("", param.help or "")
        text = " ".join(help_text.split())
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


#: Exit statuses whose name and comment read badly as a man page line.
_EXIT_NAMES = {"OK": "Success"}


def exit_codes() -> Fields:
    """Every ``ExitCode`` as (value, meaning), the meaning taken from the comment on
    its line in ``forgectl.errors`` (else from its name), in numeric order."""
    comments: dict[str, str] = {}
    try:
        source = inspect.getsource(ExitCode)
    except (OSError, TypeError):
        source = ""
    for match in re.finditer(r"^\s*(\w+)\s*=\s*\d+\s*#\s*(.+?)\s*$", source, re.M):
        comments[match.group(1)] = match.group(2)
    out: Fields = []
    for member in sorted(ExitCode, key=int):
        name = member.name.replace("_", " ").capitalize()
        comment = comments.get(member.name)
        meaning = _EXIT_NAMES.get(member.name) or (f"{name}: {comment}" if comment else name)
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


def render_page(page: Page, pages: Sequence[Page]) -> str:
    command = page.command
    root_page = pages[0]
    title = escape(page.name.upper())
    lines = [
        '.\\" Generated by python -m forgectl.docgen from the click definitions: do not edit.',
        f'.TH "{title}" "1" "" "{PROG} {escape(__version__)}" "{PROG} manual"',
        ".nh",
        ".ad l",
        ".SH NAME",
        f"{escape(page.name)} \\- {escape(summary(command))}",
        ".SH SYNOPSIS",
        *_synopsis(page, root_page),
        ".SH DESCRIPTION",
    ]
    prose, examples = split_epilog(command.epilog)
    lines += render_paragraphs(paragraphs(command.help))
    if command.deprecated:
        lines += [".PP", _fill("This command is deprecated.")]
    lines += render_paragraphs(prose)
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
    if page.path:
        lines += [
            ".PP",
            _fill(
                "The connection options may also be given before the command name "
                "(global options, see forgectl(1)); given after it, they win."
            ),
        ]
    lines += render_options(page)
    lines.append(".SH OUTPUT")
    blocks = OUTPUT.get(page.key) or OUTPUT.get(command.name or "")
    if blocks is None:
        blocks = _NO_OUTPUT_PROSE
    elif page.path and any(
        "--pretty" in getattr(p, "opts", ()) for p in command.get_params(page.ctx)
    ):
        blocks = [*blocks, *_CONVENTIONS[:1]]
    lines += render_blocks(blocks)
    lines.append(".SH EXIT STATUS")
    lines += render_blocks([exit_codes()])
    for param in page.command.get_params(page.ctx):
        if isinstance(param, click.Option) and "--exit-status" in param.opts and param.help:
            lines += render_blocks([f"With --exit-status: {param.help}"])
    lines.append(".SH ENVIRONMENT")
    env = list(ENVIRONMENT)
    listed = {name for names, _ in env for name in names.split(", ")}
    for name, option in sorted(collect_envvars(pages).items()):
        if name not in listed:
            env.append((name, f"As for {option}."))
    lines += render_blocks([env])
    lines.append(".SH FILES")
    lines += render_blocks([FILES])
    extra = EXAMPLES.get(page.key) or EXAMPLES.get(command.name or "", [])
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


def generate(cli: click.Command | None = None) -> dict[str, str]:
    """Every generated file: path relative to the source root → content."""
    cli = cli or default_cli()
    files: dict[str, str] = {}
    for shell, name in COMPLETION_FILES.items():
        files[f"completions/{name}"] = completion_script(cli, shell)
    pages = list(iter_pages(cli))
    for page in pages:
        files[f"man/{page.name}.1"] = render_page(page, pages)
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
        prog="python -m forgectl.docgen",
        description="Regenerate man/ and completions/ from the click application.",
    )
    parser.add_argument(
        "--check", action="store_true", help="Only compare; exit 1 listing stale files."
    )
    parser.add_argument(
        "--root", type=Path, default=SOURCE_ROOT, help="Source tree (default: %(default)s)."
    )
    args = parser.parse_args(argv)
    files = generate()
    for page in iter_pages(default_cli()):
        if page.key not in OUTPUT and page.command.name not in OUTPUT:
            print(f"docgen: note: no OUTPUT prose for {page.invocation!r}", file=sys.stderr)
    if args.check:
        changed = stale(args.root, files)
        for rel in changed:
            print(rel)
        if changed:
            print("docgen: stale files: run python -m forgectl.docgen", file=sys.stderr)
        return 1 if changed else 0
    for rel in write(args.root, files):
        print(f"wrote {rel}" if rel in files else f"removed {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
