"""``trustwall completion bash|zsh|fish``: print the shell's completion script.

The script is click's own (``_TRUSTWALL_COMPLETE=<shell>_source trustwall``): it calls
trustwall back on every <Tab>, so completion always matches the installed version.
"""

from __future__ import annotations

import click

SHELLS = ("bash", "zsh", "fish")


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    bash:  trustwall completion bash > /etc/bash_completion.d/trustwall
    zsh:   trustwall completion zsh > "${fpath[1]}/_trustwall"
    fish:  trustwall completion fish > ~/.config/fish/completions/trustwall.fish
    """
    from click.shell_completion import get_completion_class

    from trustwall.cli.app import cli

    cls = get_completion_class(shell)
    assert cls is not None  # every name in SHELLS is one click ships
    script = cls(cli, {}, "trustwall", "_TRUSTWALL_COMPLETE").source()
    click.echo(script)
