"""Where the journal lives, whether it can be trusted, and whether a change was interrupted.

The state directory steers a root process (its journals are rolled back, its lock and audit
log are written), so it is only used when nobody but root could have written it: owned by
root (the running user), mode 0700, every parent owned by root and not writable by others
(a sticky world-writable parent such as /tmp is fine: others cannot rename our entries).
Reading commands never create it; :func:`ensure` does, for a change.

This module imports nothing heavy: :func:`interrupted` runs on every CLI command and costs a
``stat`` when there is no state directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from trustwall.errors import BadInput

DEFAULT_STATE_DIR = "var/lib/trustwall"  # under --root (/ by default)
ENV = "TRUSTWALL_STATE_DIR"


class UnsafeStateDir(BadInput):
    """A state directory (or one of its parents) others could have written."""


def state_dir_for(root: str | os.PathLike[str] | None = None,
                  state_dir: str | os.PathLike[str] | None = None) -> Path:
    """``--state-dir`` / TRUSTWALL_STATE_DIR as given, else ``<root>/var/lib/trustwall``;
    always absolute (a watcher started with cwd / must find the same directory)."""
    explicit = state_dir or os.environ.get(ENV)
    if explicit:
        return Path(os.path.abspath(explicit))
    return Path(os.path.abspath(root or "/")) / DEFAULT_STATE_DIR


_CHECKED: set[str] = set()


def _refuse(path: str, problem: str, fix: str) -> UnsafeStateDir:
    return UnsafeStateDir(f"state directory {path}: {problem}; refusing to use it",
                          hint=fix)


def _check_parents(path: str) -> None:
    """Every existing ancestor of ``path``, lexically and after symlinks: root-owned, not
    writable by group or others unless sticky."""
    me = os.geteuid()
    seen: set[str] = set()
    for start in (path, os.path.realpath(path)):
        current = start
        while True:
            parent = os.path.dirname(current)
            if parent == current:
                break
            current = parent
            if current in seen:
                continue
            seen.add(current)
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                continue
            if st.st_uid not in (0, me):
                raise _refuse(path, f"its parent {current} is owned by uid {st.st_uid}",
                              f"use a state directory whose parents only root can change "
                              f"(or chown root {current})")
            if stat.S_ISLNK(st.st_mode):
                continue  # a root-owned link; its target is walked via realpath
            if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
                raise _refuse(path, f"its parent {current} is writable by others "
                              f"(mode {stat.S_IMODE(st.st_mode):04o})",
                              f"chmod go-w {current}, or use another --state-dir")


def check(directory: str | os.PathLike[str]) -> bool:
    """Whether the state directory exists; raise :class:`UnsafeStateDir` if it is unsafe."""
    path = os.path.abspath(directory)
    if path in _CHECKED:
        return True
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        _check_parents(path)
        return False
    if stat.S_ISLNK(st.st_mode):
        raise _refuse(path, "it is a symlink", f"point --state-dir at {os.path.realpath(path)}"
                      " itself (root-owned, mode 0700)")
    if not stat.S_ISDIR(st.st_mode):
        raise _refuse(path, "not a directory", "use another --state-dir")
    if st.st_uid != os.geteuid():
        raise _refuse(path, f"owned by uid {st.st_uid}, not {os.geteuid()}",
                      f"if you trust its contents: chown root:root {path}; else move it away")
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise _refuse(path, f"mode {stat.S_IMODE(st.st_mode):04o}, not 0700",
                      f"if you trust its contents: chmod 0700 {path}")
    _check_parents(path)
    _CHECKED.add(path)
    return True


def ensure(directory: str | os.PathLike[str]) -> Path:
    """The state directory, created (mode 0700) when missing, checked either way."""
    path = os.path.abspath(directory)
    if not check(path):
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        if not check(path):
            raise _refuse(path, "vanished while being created", "try again")
    return Path(path)


# -- interrupted transactions ----------------------------------------------------------------

@dataclass(frozen=True)
class Interrupted:
    """A transaction a crash left open (or whose audit record was not written)."""

    state_dir: str
    id: str
    kind: str
    description: str
    started: str
    pending: str  # "rollback" (no status yet) or "audit" (finished, audit record missing)

    @property
    def command(self) -> str:
        extra = "" if self.state_dir == str(state_dir_for()) else f" --state-dir {self.state_dir}"
        return f"trustwall recover{extra}"

    def line(self) -> str:
        what = (f"transaction #{self.id} ({self.kind}: {self.description[:80]!r}, started "
                f"{self.started}) was interrupted")
        if self.pending == "rollback":
            return f"{what} and is not rolled back yet; `{self.command}` rolls it back"
        return f"{what} before it was fully logged; `{self.command}` finishes the audit log"

    def to_json(self) -> dict[str, str]:
        return {"state_dir": self.state_dir, "id": self.id, "kind": self.kind,
                "description": self.description, "started": self.started,
                "pending": self.pending, "resolve": self.command}


def _lock_held(directory: Path) -> bool:
    """Whether another process holds the host lock (probed read-only: nothing is written)."""
    import fcntl

    try:
        fd = os.open(directory / "lock", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def interrupted(root: str | os.PathLike[str] | None = None,
                state_dir: str | os.PathLike[str] | None = None) -> Interrupted | None:
    """The newest transaction left open, if any. Cheap: a stat when there is no state dir.

    Every change recovers before it starts, so only the newest transaction can be open; a
    state directory that is missing, unsafe or unreadable reports nothing here (the command
    that needs it says why).
    """
    directory = state_dir_for(root, state_dir)
    txns = directory / "txns"
    try:
        names = [n for n in os.listdir(txns) if n.isdigit()]
    except OSError:
        return None
    if not names:
        return None
    newest = txns / max(names, key=int)
    try:
        if os.path.lexists(newest / "status.json"):
            if os.path.lexists(newest / "audited"):
                return None
            pending = "audit"
        else:
            pending = "rollback"
        fd = os.open(newest / "meta.json", os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            meta = json.loads(handle.read(1 << 20))
        if not (newest / "journal.jsonl").exists() and pending == "rollback":
            return None  # a transaction starting right now, or one that changed nothing
        if _lock_held(directory):
            return None  # running right now in another process, not interrupted
    except (OSError, ValueError):
        return None
    return Interrupted(str(directory), str(meta.get("id", newest.name)), str(meta.get("kind")),
                       str(meta.get("description")), str(meta.get("started")), pending)
