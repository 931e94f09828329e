"""Running the real programs trustwall drives (openssl, keytool, certutil, iptables-restore…).

One place that turns "program not installed" into EnvironmentMissing and a failed run into a
one-line error with the program's own last line of stderr.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence

from trustwall.clients.login import SYSTEM_PATH
from trustwall.errors import EnvironmentMissing, TrustwallError


class CommandFailed(TrustwallError):
    """A program we ran exited non-zero; ``str()`` names it and quotes its stderr."""

    def __init__(self, argv: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        last = (stderr.strip() or stdout.strip()).splitlines()
        detail = last[-1] if last else f"exit {returncode}"
        super().__init__(f"{argv[0]} failed (exit {returncode}): {detail}")
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def which(program: str) -> str:
    """The absolute path of ``program`` in the system directories (never $PATH: an entry a
    user controls -- ~/bin, a venv, "." -- must not choose the keytool or iptables-restore
    root runs; root's PATH may also lack /usr/sbin); an absolute ``program`` is used as
    given."""
    path = shutil.which(program, path=SYSTEM_PATH)
    if path is None:
        raise EnvironmentMissing(f"{program} is not installed",
                                 hint=f"apt-get install the package providing {program}")
    return path


def run(
    argv: Sequence[str],
    *,
    input: str | bytes | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float | None = 120,
    text: bool = True,
) -> subprocess.CompletedProcess:
    """Run ``argv`` (its first element resolved on PATH) and capture output."""
    resolved = [which(argv[0]), *argv[1:]]
    try:
        proc = subprocess.run(resolved, input=input, env=dict(env) if env is not None else None,
                              capture_output=True, text=text, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise TrustwallError(f"{argv[0]} timed out after {timeout}s") from exc
    if check and proc.returncode != 0:
        out = proc.stdout if text else proc.stdout.decode(errors="replace")
        err = proc.stderr if text else proc.stderr.decode(errors="replace")
        raise CommandFailed(argv, proc.returncode, out, err)
    return proc
