"""Paths under ``--root IMG`` resolved the way a process chrooted at IMG would see them.

``IMG/etc/ssl/certs -> /usr/lib/ssl/certs`` is inside the image, but the host kernel follows
it to the HOST's directory: a write through it escapes the image. :func:`resolve` is the
stdlib-only equivalent of ``openat2(RESOLVE_IN_ROOT)``: it walks component by component from
an ``O_PATH`` descriptor of the root, never lets the kernel follow a link (``O_NOFOLLOW``,
``fstatat(AT_SYMLINK_NOFOLLOW)``), reads each link itself, restarts an absolute target at the
root and stops ``..`` at the root. The result is a host path inside the root whose existing
components are real directories. Every store read and every journaled write and snapshot under
a root goes through it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from trustwall.errors import BadInput

MAX_LINKS = 40  # as the kernel's ELOOP limit


def _parts(text: str) -> list[str]:
    return [p for p in text.split("/") if p not in ("", ".")]


def inside(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> bool:
    top, full = os.path.abspath(root), os.path.abspath(path)
    return top == "/" or full == top or full.startswith(top + "/")


def resolve(root: str | os.PathLike[str], path: str | os.PathLike[str], *,
            follow_last: bool = False) -> Path:
    """The host path of ``path`` (a host path under ``root``) as seen from inside ``root``.

    Links in the parents are always followed (inside the root); the last component only with
    ``follow_last`` (reads; a write replaces a link itself). Missing components are kept as
    they are. A ``path`` outside ``root`` is refused.
    """
    top = os.path.abspath(root)
    full = os.path.abspath(path)
    if top == "/":
        if follow_last or full == "/":
            return Path(os.path.realpath(full))
        return Path(os.path.realpath(os.path.dirname(full)), os.path.basename(full))
    if not inside(top, full):
        raise BadInput(f"{full} is outside the root {top}")
    pending = _parts(os.path.relpath(full, top))
    names: list[str] = []            # resolved components below the root
    fds = [os.open(top, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)]
    links = 0
    missing = False
    try:
        while pending:
            name = pending.pop(0)
            if name == "..":
                if names:
                    names.pop()
                    if not missing:
                        os.close(fds.pop())
                continue
            if missing:  # below a missing directory nothing can be a link
                names.append(name)
                continue
            last = not pending
            try:
                st = os.stat(name, dir_fd=fds[-1], follow_symlinks=False)
            except FileNotFoundError:
                names.append(name)
                missing = True
                continue
            if stat.S_ISLNK(st.st_mode) and (follow_last or not last):
                links += 1
                if links > MAX_LINKS:
                    raise BadInput(f"{full}: too many levels of symbolic links")
                target = os.readlink(name, dir_fd=fds[-1])
                if target.startswith("/"):
                    for fd in fds[1:]:
                        os.close(fd)
                    del fds[1:]
                    names.clear()
                pending[:0] = _parts(target)
                continue
            names.append(name)
            if not last:
                if not stat.S_ISDIR(st.st_mode):
                    raise BadInput(f"{full}: {os.path.join(top, *names)} is not a directory")
                fds.append(os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW
                                   | os.O_CLOEXEC, dir_fd=fds[-1]))
    finally:
        for fd in fds:
            os.close(fd)
    return Path(top, *names)
