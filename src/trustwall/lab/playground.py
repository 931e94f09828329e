"""The playground: try every real trustwall command on the lab, never on this host.

``trustwall lab up`` builds the lab with a sandbox on the client and on the server (see
:meth:`trustwall.lab.topology.Lab.open_playground`); ``trustwall lab exec ROLE -- CMD`` and
``trustwall lab shell ROLE`` run inside one of them: the host's network namespace (its own
firewall, the lab's names and interception) plus a private mount namespace where every trust
store, /etc/environment, /etc/profile.d and /var/lib/trustwall (the journal) are writable
copies. So ``fix``, ``ca install``, ``verify``, ``undo`` and ``fw allow --apply`` do exactly what
they do on a real host, to the lab's stores and the lab's kernel firewall, and nothing
persists on this host: the copies vanish with ``trustwall lab down``.

The command gets a clean environment (nothing inherited from this shell: no CA variables, no
SSH_CONNECTION): the system PATH with trustwall's own bin directory first, HOME in the sandbox
(where ``enterprise-ca.pem``, the lab's inspection CA "handed out by IT", waits), and
TRUSTWALL_STATE_DIR pointing at the host's own journal in its sandbox home: it starts empty
(the sandbox's /var/lib/trustwall would be a copy of this host's journal).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from trustwall.clients.login import SYSTEM_PATH
from trustwall.errors import BadInput
from trustwall.lab.sandbox import enter_argv
from trustwall.lab.topology import PLAYGROUND_ROLES, LabState, recorded_labs


def playground_lab(lab_id: str | None = None) -> LabState:
    """The running lab whose playground to enter: ``lab_id``, or the only one there is."""
    labs = [state for _path, state in recorded_labs()
            if state.playground and state.ready and state.owner_alive
            and (lab_id is None or state.id == lab_id)]
    if not labs:
        raise BadInput("no lab with a playground is up" + (f" with id {lab_id}" if lab_id
                                                           else ""),
                       hint="start one with: sudo trustwall lab up")
    if len(labs) > 1:
        raise BadInput(f"{len(labs)} labs are up: {', '.join(s.id for s in labs)}",
                       hint="name one with --lab ID")
    return labs[0]


def playground_command(state: LabState, role: str, argv: Sequence[str]
                       ) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) that run ``argv`` as root on the lab's ``role`` host."""
    if role not in PLAYGROUND_ROLES:
        raise BadInput(f"no playground host {role!r}", hint=f"one of {', '.join(PLAYGROUND_ROLES)}")
    if not argv:
        raise BadInput("no command given", hint=f"trustwall lab exec {role} -- trustwall verify "
                                                "https://good.lab.test/")
    box = state.playground[role]
    home = box["home"]
    return (enter_argv(int(box["pid"]), list(argv), net=True, cwd=home),
            playground_env(home, role, os.environ.get("TERM", "dumb")))


def playground_env(home: str, role: str, term: str = "dumb") -> dict[str, str]:
    """The environment of a command on the playground's ``role`` host (see module doc)."""
    return {"PATH": f"{Path(sys.executable).parent}:{SYSTEM_PATH}", "HOME": home,
            "LANG": "C.UTF-8", "TERM": term, "USER": "root", "LOGNAME": "root",
            "SHELL": "/bin/bash", "TRUSTWALL_STATE_DIR": journal_dir(home),
            "PS1": f"(lab {role}) \\w# "}


def journal_dir(home: str) -> str:
    return f"{home}/.local/state/trustwall"


def run_in_playground(role: str, argv: Sequence[str], *, lab_id: str | None = None,
                      capture: bool = False, timeout: float | None = None
                      ) -> subprocess.CompletedProcess:
    """Run ``argv`` on the playground's ``role`` host and wait for it."""
    full, env = playground_command(playground_lab(lab_id), role, argv)
    return subprocess.run(full, env=env, capture_output=capture, text=True, check=False,
                          timeout=timeout)


def shell(role: str, *, lab_id: str | None = None) -> None:
    """Replace this process with an interactive shell on the playground's ``role`` host."""
    full, env = playground_command(playground_lab(lab_id), role, ["bash", "--norc", "-i"])
    os.execvpe(full[0], full, env)
