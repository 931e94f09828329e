"""One lock per host (per state directory): concurrent trustwall runs that change things
serialize instead of interleaving their writes.

``flock`` on ``<state_dir>/lock``: the kernel drops the lock when the holder dies (even on
kill -9), so a crashed run never leaves a stale lock behind; the pid written into the file is
only there to tell the waiting user who holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import time
from pathlib import Path
from types import TracebackType

from trustwall.errors import TrustwallError
from trustwall.journal.atomic import open_nofollow, read_nofollow
from trustwall.journal.statedir import ensure


class LockTimeout(TrustwallError):
    """Another trustwall run held the host lock for longer than we were willing to wait."""


# flock conflicts between two open() of the same file even in one process, so every HostLock
# of a process on the same path shares one descriptor: path -> [fd, depth].
_HELD: dict[str, list[int]] = {}


class HostLock:
    """Exclusive lock on ``state_dir/lock``, re-entrant within the process."""

    def __init__(self, state_dir: str | os.PathLike[str], *, timeout: float | None = 300) -> None:
        self.path = Path(state_dir) / "lock"
        self.timeout = timeout
        self._key = os.path.abspath(self.path)
        self._mine = 0

    @property
    def held(self) -> bool:
        return self._key in _HELD

    def holder(self) -> str:
        """The pid recorded by the current holder (informational; may be stale)."""
        try:
            return read_nofollow(self.path).decode(errors="replace").strip()
        except OSError:
            return ""

    def acquire(self) -> None:
        if self._key in _HELD:
            _HELD[self._key][1] += 1
            self._mine += 1
            return
        ensure(self.path.parent)
        fd = open_nofollow(self.path, os.O_RDWR | os.O_CREAT)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise TrustwallError(f"{self.path}: not a regular file; refusing to lock it")
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise LockTimeout(
                            f"{self.path}: held by another trustwall run (pid {self.holder()})",
                            hint="wait for it to finish, or check it is not stuck",
                        ) from None
                    time.sleep(0.02)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        _HELD[self._key] = [fd, 1]
        self._mine += 1

    def release(self) -> None:
        if self._mine == 0 or self._key not in _HELD:
            return
        self._mine -= 1
        entry = _HELD[self._key]
        entry[1] -= 1
        if entry[1] > 0:
            return
        fd = entry[0]
        del _HELD[self._key]
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> HostLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
