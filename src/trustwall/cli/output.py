"""Rendering helpers shared by every command: ``--json`` or a rich terminal view.

A command builds one typed result (a dataclass) and calls :func:`emit`; the same object feeds
the JSON and the human view, so the two can never disagree.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from trustwall.jsonable import to_jsonable

F = TypeVar("F", bound=Callable[..., Any])


def dumps(value: Any) -> str:
    return json.dumps(to_jsonable(value), indent=2, sort_keys=False, ensure_ascii=False)


def json_wanted(ctx: click.Context | None = None) -> bool:
    """True when ``--json`` was given globally (``trustwall --json X``) or on the command."""
    ctx = ctx or click.get_current_context(silent=True)
    while ctx is not None:
        if ctx.params.get("as_json"):
            return True
        if isinstance(ctx.obj, dict) and ctx.obj.get("json"):
            return True
        ctx = ctx.parent
    return False


def json_option(func: F) -> F:
    """Add ``--json`` to a read command (the global ``trustwall --json`` works as well)."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print the result as JSON (stable keys) instead of a table.")(func)


# C0 and C1 controls (ESC starts a terminal escape sequence: hidden text, cursor moves, a fake
# line) and the bidirectional overrides that reorder what a reader sees. Tab and newline stay
# unless the field must be one line.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e"
                       "\u2066-\u2069]")
_CONTROLS_AND_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029"
                                  "\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str, *, one_line: bool = False) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``), never obeyed.

    Certificate names, rule comments, interface names and error texts come from the network, a
    file or the kernel: a terminal must show them, not act on them. ``one_line`` also escapes
    line breaks, so a field cannot forge a line of its own (a fake fingerprint under a name).
    """
    return (_CONTROLS_AND_BREAKS if one_line else _CONTROLS).sub(_escaped, text)


def console(stderr: bool = False) -> Any:
    """A rich Console for untrusted text: no markup, no emoji codes, control characters shown.

    Markup is off on purpose: a CA whose O= holds ``[conceal]`` or ``[/]`` would otherwise hide
    or forge what is printed next to it (a fingerprint) or crash the command, and ``:AB:`` in
    a fingerprint would become an emoji. Style with :func:`styled` or ``style=``; every plain
    string printed (tables and trees included) has its control characters escaped. Imported
    lazily: rich is slow to import.
    """
    return _safe_console_class()(stderr=stderr, no_color=bool(os.environ.get("NO_COLOR")),
                                 highlight=False, soft_wrap=False, markup=False, emoji=False)


@functools.cache
def _safe_console_class() -> Any:
    from rich.console import Console

    class SafeConsole(Console):
        def render_str(self, text: str, **kwargs: Any) -> Any:
            return super().render_str(visible(text), **kwargs)

    return SafeConsole


def styled(*parts: str | tuple[str, str]) -> Any:
    """A rich Text from plain strings and ``(text, style)`` pairs; nothing in them is markup."""
    from rich.text import Text

    return Text.assemble(*((visible(p[0]), p[1]) if isinstance(p, tuple) else visible(p)
                           for p in parts))


def print_command(out: Any, command: str, prefix: str = "") -> None:
    """A command the user may copy: on its own line, never wrapped, never inside a box."""
    from rich.text import Text

    if prefix:
        out.print(Text(visible(prefix)), soft_wrap=True)
    out.print(Text(visible(command, one_line=True), style="bold"), soft_wrap=True)


def print_table(out: Any, columns: list[str], rows: list[list[Any]], *, title: str = "",
                keep: int = 2, header: bool = True) -> None:
    """Rows as a table when it fits without breaking a word, else as a list.

    The first ``keep`` columns hold what must never be cut (a name, a verdict, an error name)
    and get their full width; the other columns may wrap between words, never inside one (a
    path broken mid-word cannot be copied). When that does not fit (60 columns, a long path)
    each row becomes a heading line and one ``column: value`` line per field.
    """
    from rich.table import Table
    from rich.text import Text

    def widest(i: int, unit: Callable[[str], list[str]]) -> int:
        cells = [str(r[i]) for r in rows] + ([columns[i]] if header else [])
        return max((len(u) for cell in cells for u in unit(cell)), default=0)

    needed = sum(widest(i, str.splitlines) if i < keep else widest(i, str.split)
                 for i in range(len(columns))) + 2 * (len(columns) - 1)
    if needed <= out.width:
        table = Table(show_header=header, header_style="bold", box=None, pad_edge=False,
                      title=Text(visible(title), style="bold") if title else None,
                      title_justify="left")
        for i, col in enumerate(columns):
            table.add_column(Text(col), no_wrap=i < keep, overflow="fold")
        for row in rows:
            table.add_row(*(_text(cell) for cell in row))
        out.print(table)
        return
    if title:
        out.print(Text(visible(title), style="bold"), soft_wrap=True)
    for row in rows:
        out.print(Text("  ").join(_text(c) for c in row[:keep]), soft_wrap=True)
        for col, cell in zip(columns[keep:], row[keep:], strict=True):
            if str(cell):
                out.print(Text.assemble(f"    {col}: ", _text(cell)), soft_wrap=True)


def _text(cell: Any) -> Any:
    from rich.text import Text

    return cell if isinstance(cell, Text) else Text(visible(str(cell)))


yes_option = click.option("-y", "--yes", is_flag=True,
                          help="Do not ask; needed to go ahead without a terminal.")


def ask(question: str, *, yes: bool, action: str, first: str = "") -> None:
    """The one confirmation behaviour: ``--yes`` goes ahead; a terminal gets ``question``;
    anything else (a pipe, cron, Ansible) is refused in one line that names ``--yes``."""
    if yes:
        return
    if not sys.stdin.isatty():
        from trustwall.errors import BadInput

        raise BadInput(f"refusing to {action} without confirmation (no terminal to ask on): "
                       f"{first}rerun with --yes")
    click.confirm(question, abort=True, err=True)


def _interrupted_notice(ctx: click.Context | None) -> Any:
    """An interrupted transaction in the state directory this command reads, if any.

    Every command's output goes through :func:`emit`, so this is where all of them notice a
    crashed change (``recover`` and ``undo`` report it themselves). A stat when there is no
    state directory.
    """
    from trustwall.journal.statedir import interrupted

    params: dict[str, Any] = {}
    while ctx is not None:
        if ctx.command.name in ("recover", "undo"):
            return None
        for key in ("root", "state_dir"):
            if params.get(key) is None and isinstance(ctx.params.get(key), str):
                params[key] = ctx.params[key]
        ctx = ctx.parent
    return interrupted(params.get("root"), params.get("state_dir"))


def emit(result: Any, human: Callable[[Any], None]) -> None:
    """Print ``result`` as JSON when asked, else call ``human(result)`` to draw it.

    An interrupted transaction is named in one line on stderr, and under a top-level
    ``"interrupted"`` key of a JSON object.
    """
    notice = _interrupted_notice(click.get_current_context(silent=True))
    if notice is not None:
        sys.stderr.write(f"trustwall: warning: {notice.line()}\n")
    if json_wanted():
        value = to_jsonable(result)
        if notice is not None and isinstance(value, dict):
            value["interrupted"] = to_jsonable(notice)
        sys.stdout.write(dumps(value) + "\n")
    else:
        human(result)
