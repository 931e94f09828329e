"""Atomic file writes: temp file in the same directory, fsync, rename, fsync the directory.

A reader (or a crash) sees either the old bytes or the new bytes, never a mix. Owner and mode
are set on the temp file before the rename, so the new file is never visible with wrong rights.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from trustwall.errors import BadInput


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable."""
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
    if target.is_dir():
        raise BadInput(f"{target}: is a directory")
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise BadInput(f"{target}: directory {directory} does not exist")
    if not overwrite and target.exists():
        raise BadInput(f"{target}: exists (use --force to overwrite)")
    if owner is None and target.exists():
        st = target.stat()
        owner = (st.st_uid, st.st_gid)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tw-tmp", dir=directory)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            if owner is not None and os.geteuid() == 0:
                os.fchown(handle.fileno(), *owner)
            os.fsync(handle.fileno())
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
