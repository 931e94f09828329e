"""Options that mean the same in every command, declared once.

``--state-dir`` has one type, default and environment variable wherever a command journals;
ports are written the same way to ``fw allow|deny|reject|trace`` and ``why-in``: a number, a
range ``a:b``, a service name from /etc/services (``ssh``) or ufw's and firewall-cmd's
``PORT/PROTO`` (``18745/tcp``).
"""

from __future__ import annotations

import os

import click

from trustwall.errors import BadInput


def _absolute(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Absolute (a rollback watcher runs from /), but not resolved: a state dir that is a
    symlink must reach the journal's own check and be refused there, not be followed here."""
    return os.path.abspath(value) if value else value


state_dir_option = click.option(
    "--state-dir", type=click.Path(file_okay=False), callback=_absolute, default=None,
    envvar="TRUSTWALL_STATE_DIR",
    help="Journal directory [default: /var/lib/trustwall, under --root when given; "
         "env TRUSTWALL_STATE_DIR].")

PORT_HELP = "a number, a:b, a service name (ssh) or PORT/PROTO (18745/tcp)"


def port_and_proto(port: str | None, proto: str | None, option: str = "--dport"
                   ) -> tuple[str | None, str | None]:
    """``18745/tcp`` -> ``("18745", "tcp")``; a port without a protocol means tcp (as
    ``fw trace`` and ``why-in`` assume); a protocol that contradicts ``-p`` is refused."""
    if port is None:
        return None, proto
    number, slash, named = port.partition("/")
    if slash:
        if not number or not named:
            raise BadInput(f"{option} {port!r}: write PORT/PROTO, e.g. 18745/tcp")
        if proto is not None and proto.lower() != named.lower():
            raise BadInput(f"{option} {port!r} says {named} but -p says {proto}")
        return number, named.lower()
    return number, proto or "tcp"


def single_port(text: str, option: str = "--dport") -> int:
    """One port (a number or a service name), as a packet has."""
    from trustwall.firewall.iptables.extensions import BadValue, port

    try:
        return port(text)
    except BadValue as exc:
        raise BadInput(f"{option} {text!r}: {exc}") from None
