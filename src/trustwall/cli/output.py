"""Rendering helpers shared by every command: ``--json`` or a rich terminal view.

A command builds one typed result (a dataclass) and calls :func:`emit`; the same object feeds
the JSON and the human view, so the two can never disagree.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def to_jsonable(value: Any) -> Any:
    """Turn dataclasses, enums, paths, dates and bytes into plain JSON values."""
    if hasattr(value, "to_json") and callable(value.to_json):
        return to_jsonable(value.to_json())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not f.name.startswith("_")}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


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


def console(stderr: bool = False) -> Any:
    """A rich Console honouring NO_COLOR and non-terminals (imported lazily: rich is slow)."""
    from rich.console import Console

    return Console(stderr=stderr, no_color=bool(os.environ.get("NO_COLOR")),
                   highlight=False, soft_wrap=False)


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
