"""Deterministic crash points for the crash tests: kill this process at the Nth durable step.

Every write, fsync, rename, unlink, mkdir, symlink and state-changing exec of a change calls
:func:`point`. With ``TRUSTWALL_FAULT_AT=N`` the Nth call SIGKILLs the process (as a power cut
or ``kill -9`` would, no cleanup runs); with ``TRUSTWALL_FAULT_TRACE=FILE`` every call is
appended to FILE, so a test first counts the points of an operation, then kills it at each one
in turn. Unset (always, outside tests) it costs one global lookup per step.
"""

from __future__ import annotations

import os
import signal

_AT = int(os.environ.get("TRUSTWALL_FAULT_AT") or 0)
_TRACE = os.environ.get("TRUSTWALL_FAULT_TRACE") or ""
_count = 0


def point(what: str) -> None:
    """One crash point (``what`` names it in the trace)."""
    if not (_AT or _TRACE):
        return
    global _count
    _count += 1
    if _TRACE:
        fd = os.open(_TRACE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{_count} {os.getpid()} {what}\n".encode())
        finally:
            os.close(fd)
    if _count == _AT:
        os.kill(os.getpid(), signal.SIGKILL)


def arm(*, at: int = 0, trace: str = "") -> None:
    """Set the crash point and trace file in-process (a forked test child), restarting the
    count; the environment variables do the same for a fresh process."""
    global _AT, _TRACE, _count
    _AT, _TRACE, _count = at, trace, 0
