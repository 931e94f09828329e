"""Rendering helpers shared by every command: ``--json`` or a rich terminal view.

A command builds one typed result (a dataclass) and calls :func:`emit`; the same object feeds
the JSON and the human view, so the two can never disagree.
"""

from __future__ import annotations

import json
import os
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


def console(stderr: bool = False) -> Any:
    """A rich Console honouring NO_COLOR and non-terminals (imported lazily: rich is slow)."""
    from rich.console import Console

    return Console(stderr=stderr, no_color=bool(os.environ.get("NO_COLOR")),
                   highlight=False, soft_wrap=False)


def emit(result: Any, human: Callable[[Any], None]) -> None:
    """Print ``result`` as JSON when asked, else call ``human(result)`` to draw it."""
    if json_wanted():
        sys.stdout.write(dumps(result) + "\n")
    else:
        human(result)
