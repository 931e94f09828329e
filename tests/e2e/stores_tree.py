"""Helpers for the stores tests: sandbox trees copied from this host, a snapshot that
compares trees byte for byte, and running a distro tool inside a tree through a private
mount namespace (so update-ca-certificates writes the tree, never the host)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from trustwall.clients.login import SYSTEM_PATH
from trustwall.stores.sandbox import make_sandbox

BINDS = ("etc/ssl/certs", "usr/share/ca-certificates", "usr/local/share/ca-certificates",
         "etc/ca-certificates.conf")



def in_tree(tree: Path, argv: list[str], **kw: object) -> subprocess.CompletedProcess:
    """Run ``argv`` with the tree's store paths bind-mounted over the host's, in a private
    mount namespace: the tool sees normal paths, the host is never written."""
    mounts = "; ".join(f"mount --bind {tree / rel} /{rel}" for rel in BINDS)
    script = f"set -e; {mounts}; exec \"$@\""
    env = {"PATH": SYSTEM_PATH, "LC_ALL": "C", "HOME": "/root"}
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                           "sh", *argv], capture_output=True, text=True, check=True,
                          env=env, timeout=120, **kw)  # type: ignore[arg-type]


def native_update(tree: Path, *extra: str) -> str:
    """update-ca-certificates on the tree, hooks off (the Java hook would run dpkg)."""
    return in_tree(tree, ["update-ca-certificates", "--hooksdir", "/nonexistent", *extra]).stdout


def consistent_template(dest: Path) -> Path:
    """A sandbox on which update-ca-certificates has run once, so it has nothing to fix."""
    make_sandbox(dest)
    native_update(dest)
    return dest


def copy_tree(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, symlinks=True)
    return dest


def snapshot(top: Path, *, skip: tuple[str, ...] = ("var/lib/trustwall",)) -> dict[str, tuple]:
    """Every path under ``top``: kind, bytes or link target, mode, owner."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        rel_dir = os.path.relpath(dirpath, top)
        if any(rel_dir == s or rel_dir.startswith(s + "/") for s in skip):
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(top))
            if any(rel == s or s.startswith(rel + "/") for s in skip):
                continue  # the journal and the directories holding it
            st = path.lstat()
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir", st.st_mode & 0o7777, st.st_uid, st.st_gid)
            else:
                out[rel] = ("file", path.read_bytes(), st.st_mode & 0o7777, st.st_uid,
                            st.st_gid)
    return out


def diff(a: dict[str, tuple], b: dict[str, tuple]) -> list[str]:
    keys = sorted(set(a) | set(b))
    return [k for k in keys if a.get(k) != b.get(k)]


_TEMPLATE: dict[str, Path] = {}


def template(factory: object) -> Path:
    """One consistent sandbox per test session (copy it before changing anything)."""
    if "tree" not in _TEMPLATE:
        base = factory.mktemp("stores-template")  # type: ignore[attr-defined]
        _TEMPLATE["tree"] = consistent_template(base / "root")
    return _TEMPLATE["tree"]
