"""What a client process starts with on this host: the system PATH, the proxy variables, the
/etc/environment format, and the environment a new login shell gets.

pam_env reads /etc/environment (``KEY=VALUE`` lines, no shell syntax) before the shell starts;
``bash -l`` then reads /etc/profile, which sources /etc/profile.d/*.sh. That is what the
user's next terminal sees -- not this process's environment, which may carry CA variables that
hide the problem.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

#: System directories first: root's PATH may lack /usr/sbin (iptables, update-ca-certificates).
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: The proxy variables clients read (which one each reads is in its own module).
PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy",
                   "ALL_PROXY", "no_proxy", "NO_PROXY")
#: ``[export] KEY=VALUE``: a line of /etc/environment (also how /etc/profile.d exports look).
ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
#: Variables a shell sets for itself: not part of what a client inherits.
_SHELL_NOISE = ("_", "SHLVL", "PWD", "OLDPWD")


class Enclosure(Protocol):
    """Where a command runs: a network namespace, a sandbox (anything that wraps argv)."""

    def argv(self, argv: Sequence[str]) -> list[str]: ...


def base_environment(home: str, **extra: str) -> dict[str, str]:
    """The scrubbed start every client run gets: nothing inherited from this process."""
    return {"PATH": SYSTEM_PATH, "HOME": home, "LANG": "C.UTF-8", **extra}


def parse_environment(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines as pam_env reads /etc/environment (quotes stripped, ``#`` comments,
    an optional leading ``export``)."""
    out = {}
    for line in text.splitlines():
        match = ASSIGNMENT.match(line)
        if match and not line.lstrip().startswith("#"):
            value = match.group(2).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            out[match.group(1)] = value
    return out


def login_environment(inside: Enclosure | None = None, *, home: str | None = None,
                      user: str | None = None) -> dict[str, str]:
    """The environment a new login shell of ``user`` gets on this host, or ``inside`` an
    enclosure (whose /etc is what is read)."""
    home = home or os.environ.get("HOME") or str(Path.home())
    user = user or os.environ.get("USER", "root")
    initial = base_environment(home, TERM="dumb", USER=user, LOGNAME=user, SHELL="/bin/bash")

    def wrap(argv: list[str]) -> list[str]:
        return inside.argv(argv) if inside is not None else argv

    cat = subprocess.run(wrap(["cat", "/etc/environment"]), env=initial, capture_output=True,
                         text=True, timeout=30, check=False, errors="replace")
    initial.update(parse_environment(cat.stdout))
    proc = subprocess.run(wrap(["bash", "-lc", "env -0"]), env=initial, capture_output=True,
                          text=True, timeout=30, check=False, errors="replace")
    env = dict(item.split("=", 1) for item in proc.stdout.split("\0") if "=" in item) \
        if proc.returncode == 0 else dict(initial)
    for noise in _SHELL_NOISE:
        env.pop(noise, None)
    return env
