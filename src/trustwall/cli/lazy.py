"""A click group whose subcommands are imported only when invoked.

Start-up time is a goal (``trustwall --help`` within 3x of ``python -c pass``): importing
cryptography, rich or the firewall model for every invocation would blow it, so each command
lives in its own module and is named here as ``"module:attribute"``.
"""

from __future__ import annotations

from importlib import import_module

import click


class JsonCheckedGroup(click.Group):
    """A group that refuses the global ``--json`` for a command without JSON output, instead
    of silently printing text a script would then fail to parse (``trustwall --json fw
    save``)."""

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        root = ctx.find_root()
        if (command is not None and not isinstance(command, click.Group)
                and root.params.get("json_output")
                and not any(p.name == "as_json" for p in command.params)
                and not ctx.resilient_parsing):
            path = " ".join([*ctx.command_path.split()[1:], name or ""])
            raise click.UsageError(f"'{path}' has no JSON output; drop --json", ctx=ctx)
        return name, command, rest


class LazyGroup(JsonCheckedGroup):
    def __init__(self, *args: object, lazy: dict[str, tuple[str, str]] | None = None,
                 **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        # name -> ("module:attr", one-line help shown in the listing without importing)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            target, _ = self.lazy[cmd_name]
            module_name, attr = target.split(":")
            return getattr(import_module(module_name), attr)
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        # click suggests only among eagerly registered commands; ours are lazy, so a typo
        # (`prob`, `fw alow`) would get no "Did you mean".
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as exc:
            raise click.exceptions.NoSuchCommand(
                exc.command_name, possibilities=self.list_commands(ctx), ctx=ctx) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # List lazy commands from their declared help so --help imports nothing.
        rows = [(name, self.lazy[name][1]) for name in sorted(self.lazy)]
        for name in super().list_commands(ctx):
            if name not in self.lazy:
                cmd = super().get_command(ctx, name)
                if cmd is not None and not cmd.hidden:
                    rows.append((name, cmd.get_short_help_str(limit=70)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(sorted(rows))
