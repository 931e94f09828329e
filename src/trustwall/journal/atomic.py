"""Atomic file writes: temp file in the same directory, fsync, rename, fsync the directory.

A reader (or a crash) sees either the old bytes or the new bytes, never a mix. Owner and mode
are set on the temp file before the rename, so the new file is never visible with wrong rights.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

from trustwall.errors import BadInput
from trustwall.journal import fault


def open_nofollow(path: str | os.PathLike[str], flags: int, mode: int = 0o600) -> int:
    """``os.open`` that refuses a symlink as the last component with a clear error."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BadInput(f"{path}: is a symlink; refusing to follow it",
                           hint="someone planted it: inspect it, then remove it") from None
        raise


def read_nofollow(path: str | os.PathLike[str]) -> bytes:
    """The bytes of regular file ``path``, refusing a symlink in its last component (a state
    file planted as ``-> /etc/shadow`` is not read, let alone written)."""
    fd = open_nofollow(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BadInput(f"{path}: not a regular file")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def open_append(path: str | os.PathLike[str]) -> int:
    """An O_APPEND descriptor on state file ``path`` (created 0600), never through a symlink."""
    fd = open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise BadInput(f"{path}: not a regular file")
    return fd


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (it may write less on a large buffer)."""
    fault.point("write")
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable."""
    fault.point("fsync-dir")
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(
    path: str | os.PathLike[str],
    data: bytes,
    *,
    mode: int = 0o644,
    owner: tuple[int, int] | None = None,
    overwrite: bool = True,
) -> Path:
    """Write ``data`` to ``path`` atomically and return the path.

    ``owner`` is ``(uid, gid)``; by default a file we replace keeps its owner, and a new file
    belongs to the caller. With ``overwrite=False`` an existing file is an error (checked
    again at rename time with ``link`` so a race cannot clobber it).
    """
    target = Path(path)
    if target.is_dir() and not target.is_symlink():
        raise BadInput(f"{target}: is a directory")
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise BadInput(f"{target}: directory {directory} does not exist")
    if not overwrite and target.exists():
        raise BadInput(f"{target}: exists (use --force to overwrite)")
    if owner is None and target.exists() and not target.is_symlink():
        st = target.lstat()
        owner = (st.st_uid, st.st_gid)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tw-tmp", dir=directory)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            fault.point("write")
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            if owner is not None and os.geteuid() == 0:
                os.fchown(handle.fileno(), *owner)
            fault.point("fsync")
            os.fsync(handle.fileno())
        fault.point("rename")
        if overwrite:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # fails if target appeared meanwhile
            except FileExistsError as exc:
                raise BadInput(f"{target}: exists (use --force to overwrite)") from exc
            tmp.unlink()
        fsync_dir(directory)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return target
