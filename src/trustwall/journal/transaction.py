"""Transactions: every change trustwall makes, journaled before it happens, undoable after.

A transaction lives in ``<state_dir>/txns/<NNNNNN>/``:

* ``meta.json``     id, kind, description, who, when, and which transaction it undoes;
* ``journal.jsonl`` one line per step, appended and fsynced *before* the step changes
  anything: the before-image of a file (bytes in ``blobs/<sha256>``, mode, owner; or a
  symlink target; or "absent"), a command that was run (for the record only: it is never run
  again), or a non-file before-image (``record``: e.g. an ``iptables-save`` dump, named by a
  step KIND from :mod:`trustwall.journal.steps`, which alone decides how it is restored);
* ``status.json``   written atomically at the end: committed (with after-images) or
  rolled-back.

A journal is data, never instructions: every entry is validated before anything is acted
upon (known op and kind, sha256 blob names, paths inside the transaction's root), and a
journal that fails is refused as a whole.

Every file write is atomic (temp + fsync + rename), so a kill -9 at any point leaves each
file either old or new, and the journal knows every file that may be new. A transaction
without ``status.json`` is a crashed one: the next run (holding the host lock, so the crashed
run is certainly dead) rolls it back to the before-images. ``undo`` is itself a transaction,
so it is crash-safe and can be undone in turn.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from trustwall import proc
from trustwall.errors import BadInput, StoreError
from trustwall.journal import entries, fault, rootfs, statedir, steps
from trustwall.journal.atomic import atomic_write, fsync_dir, open_append, read_nofollow, write_all
from trustwall.journal.audit import AuditLog, who
from trustwall.journal.lock import HostLock
from trustwall.journal.statedir import DEFAULT_STATE_DIR, state_dir_for

__all__ = ["DEFAULT_STATE_DIR", "Transaction", "recover", "state_dir_for", "transactions",
           "undo"]

ABSENT = "absent"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _append_line(path: Path, obj: dict[str, Any]) -> None:
    fd = open_append(path)
    try:
        write_all(fd, (json.dumps(obj, sort_keys=True) + "\n").encode())
        fault.point("fsync")
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_lines(path: Path) -> list[Any]:
    """Journal lines as JSON values; a torn last line (kill -9 mid-write) was never acted upon:
    skip it."""
    if not path.exists():
        return []
    out = []
    for line in read_nofollow(path).split(b"\n"):
        try:
            out.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
    return out


def _where(txn_dir: Path, number: int) -> str:
    return f"transaction {txn_dir.name.lstrip('0')} journal line {number}"


def _steps(txn_dir: Path) -> list[entries.Step]:
    """The journal's steps, each line's shape checked (see :func:`_entries` for acting)."""
    return [entries.from_json(line, _where(txn_dir, number))
            for number, line in enumerate(_read_lines(txn_dir / "journal.jsonl"), start=1)]


def _store_blob(blobs: Path, data: bytes) -> str:
    """Keep ``data`` as ``blobs/<sha256>`` and return the digest."""
    digest = _sha256(data)
    blob = blobs / digest
    if not blob.exists():
        # Named by its content and only referenced by a journal line written after this
        # fsync, so a torn blob is never used: no temp + rename needed.
        fd = os.open(blob, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            write_all(fd, data)
            fault.point("fsync")
            os.fsync(fd)
        finally:
            os.close(fd)
    return digest


def describe_image(image: dict[str, Any]) -> str:
    """One word for a before/after image: a sha256, ``symlink:<target>``, ``dir`` or absent."""
    kind = image.get("type")
    if kind == "file":
        return str(image.get("sha256"))
    if kind == "symlink":
        return f"symlink:{image.get('target')}"
    return str(kind)


def capture(path: Path) -> tuple[dict[str, Any], bytes | None]:
    """The image of ``path`` as it is now, and its bytes when it is a regular file."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return {"type": ABSENT}, None
    if stat.S_ISLNK(st.st_mode):
        return {"type": "symlink", "target": os.readlink(path)}, None
    if stat.S_ISDIR(st.st_mode):
        return {"type": "dir", "mode": stat.S_IMODE(st.st_mode),
                "uid": st.st_uid, "gid": st.st_gid}, None
    if not stat.S_ISREG(st.st_mode):
        raise StoreError(f"{path}: not a regular file, symlink or directory")
    data = read_nofollow(path)  # swapped for a link since the lstat: refused, not followed
    return {"type": "file", "sha256": _sha256(data), "mode": stat.S_IMODE(st.st_mode),
            "uid": st.st_uid, "gid": st.st_gid}, data


def atomic_symlink(path: Path, target: str) -> None:
    """Point ``path`` at ``target`` atomically (new link under a temp name, then rename)."""
    tmp = path.parent / f".{path.name}.{os.getpid()}.tw-tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fault.point("symlink")
    os.symlink(target, tmp)
    try:
        fault.point("rename")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            with contextlib.suppress(OSError):  # only directories we created, and only if empty
                path.rmdir()
        else:
            fault.point("unlink")
            path.unlink()
            fsync_dir(path.parent)


def restore_image(path: Path, image: dict[str, Any], blobs: Path) -> None:
    """Make ``path`` be ``image`` again, atomically (the reverse of a recorded step)."""
    kind = image["type"]
    if kind == ABSENT:
        _remove(path)
    elif kind == "symlink":
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_symlink(path, image["target"])
    elif kind == "dir":
        if not path.is_dir():
            path.mkdir(parents=True, exist_ok=True)
            os.chmod(path, image["mode"])
    else:
        data = _blob(blobs, image["sha256"])
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or (path.exists() and not path.is_file()):
            _remove(path)
        atomic_write(path, data, mode=image["mode"], owner=(image["uid"], image["gid"]))
    _clean_temp_files(path)


def _clean_temp_files(path: Path) -> None:
    """Temp files a killed atomic write left next to ``path`` (never visible under its name)."""
    with contextlib.suppress(OSError):
        for leftover in path.parent.glob(f".{path.name}.*tw-tmp"):
            leftover.unlink()


@dataclass(frozen=True)
class FileChange:
    path: str
    before: str
    after: str


@dataclass(frozen=True)
class TxnSummary:
    """A transaction as `trustwall log` and `undo` see it."""

    id: str
    kind: str
    description: str
    status: str  # committed | rolled-back | open
    started: str
    finished: str | None
    who: dict[str, Any]
    undoes: str | None
    undone_by: str | None
    files: tuple[FileChange, ...]
    commands: tuple[tuple[str, ...], ...]
    records: tuple[str, ...]


class Transaction:
    """``with Transaction("ca-install", "trust Corp Root", root=...) as txn: txn.write_file(...)``.

    Holds the host lock from enter to exit. Leaving the block normally commits; an exception
    rolls every step back (before the exception propagates). ``dry_run=True`` records the plan
    in :attr:`planned` and changes nothing.
    """

    def __init__(self, kind: str, description: str, *,
                 root: str | os.PathLike[str] | None = None,
                 state_dir: str | os.PathLike[str] | None = None,
                 undoes: str | None = None, dry_run: bool = False,
                 lock_timeout: float | None = 300) -> None:
        self.kind = kind
        self.description = description
        self.root = os.path.abspath(root or "/")
        self.state_dir = state_dir_for(root, state_dir)
        self.undoes = undoes
        self.dry_run = dry_run
        self.planned: list[str] = []
        self.id: str | None = None
        self.dir: Path | None = None
        self._lock = HostLock(self.state_dir, timeout=lock_timeout)
        self._seen: set[str] = set()

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Transaction:
        if self.dry_run:
            return self
        self._lock.acquire()
        try:
            recover(state_dir=self.state_dir, _locked=True)
            txns = self.state_dir / "txns"
            txns.mkdir(parents=True, exist_ok=True, mode=0o700)
            numbers = [int(p.name) for p in txns.iterdir() if p.name.isdigit()]
            number = max(numbers, default=0) + 1
            self.id = str(number)
            self.dir = txns / f"{number:06d}"
            (self.dir / "blobs").mkdir(parents=True)
            meta = {"id": self.id, "kind": self.kind, "description": self.description,
                    "root": self.root, "started": _now(), "pid": os.getpid(), "who": who(),
                    "undoes": self.undoes}
            atomic_write(self.dir / "meta.json", json.dumps(meta, indent=1).encode(), mode=0o600)
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.dry_run:
            return
        try:
            assert self.dir is not None
            if not (self.dir / "journal.jsonl").exists():
                # Nothing was changed (an install that found everything in place): a no-op
                # leaves no transaction and no audit record behind.
                shutil.rmtree(self.dir)
                return
            if exc_type is None:
                _finish(self.state_dir, self.dir, "committed")
            else:
                _rollback(self.dir)
                _finish(self.state_dir, self.dir, "rolled-back",
                        error=f"{exc_type.__name__}: {exc}")
        finally:
            self._lock.release()

    # -- steps -----------------------------------------------------------------------------
    def _path(self, path: str | os.PathLike[str], *, follow_last: bool = False) -> Path:
        """``path`` as the root sees it (:mod:`rootfs`): a link in the image never leads the
        write out of it."""
        full = Path(os.path.abspath(path))
        if self.root != "/" and rootfs.inside(self.root, full):
            return rootfs.resolve(self.root, full, follow_last=follow_last)
        return full

    def _confine(self, path: Path) -> None:
        top = confinement(self.root, self.state_dir)
        if top != Path("/") and not Path(os.path.abspath(path)).is_relative_to(top):
            raise BadInput(f"{path} is outside the root {top}, and the journal would live "
                           "inside it (where undo could not trust it)",
                           hint="give --state-dir outside the root to change paths outside it")

    def _journal(self, step: entries.Step) -> None:
        assert self.dir is not None, "use the Transaction as a context manager"
        _append_line(self.dir / "journal.jsonl", entries.to_json(step))

    def _store_blob(self, data: bytes) -> str:
        assert self.dir is not None
        return _store_blob(self.dir / "blobs", data)

    def snapshot(self, path: str | os.PathLike[str]) -> None:
        """Record the before-image of ``path`` (once per transaction) without changing it.

        Call this before :meth:`run` for every file the command may change.
        """
        if self.dry_run:
            return
        target = self._path(path)
        key = str(target)
        if key in self._seen:
            return
        self._confine(target)
        image, data = capture(target)
        if data is not None:
            self._store_blob(data)
        self._journal(entries.FileStep(key, image))
        self._seen.add(key)

    def snapshot_tree(self, directory: str | os.PathLike[str]) -> None:
        """Before-images of everything under ``directory``; undo removes what appears later."""
        if self.dry_run:
            return
        top = self._path(directory, follow_last=True)
        if not top.is_dir():
            return
        names = []
        for dirpath, dirnames, filenames in os.walk(top):
            for name in sorted(filenames + [d for d in dirnames
                                            if os.path.islink(os.path.join(dirpath, d))]):
                full = Path(dirpath) / name
                names.append(str(full.relative_to(top)))
                self.snapshot(full)
        self._journal(entries.TreeStep(str(top), tuple(sorted(names))))

    def _make_parents(self, target: Path) -> None:
        missing = []
        parent = target.parent
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        for directory in reversed(missing):
            self._confine(directory)
            self._journal(entries.FileStep(str(directory), {"type": ABSENT}))
            self._seen.add(str(directory))
            fault.point("mkdir")
            directory.mkdir(mode=0o755)

    def write_file(self, path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644,
                   owner: tuple[int, int] | None = (0, 0)) -> None:
        """Atomically replace ``path`` with ``data`` (missing parent directories are made)."""
        if self.dry_run:
            self.planned.append(f"write {path} ({len(data)} bytes, mode {mode:o})")
            return
        target = self._path(path)
        self._make_parents(target)
        self.snapshot(target)
        atomic_write(target, data, mode=mode, owner=owner)  # replaces a link, never follows

    def symlink(self, path: str | os.PathLike[str], target: str) -> None:
        if self.dry_run:
            self.planned.append(f"link {path} -> {target}")
            return
        link = self._path(path)
        self._make_parents(link)
        self.snapshot(link)
        atomic_symlink(link, target)

    def remove_file(self, path: str | os.PathLike[str]) -> None:
        if self.dry_run:
            self.planned.append(f"remove {path}")
            return
        target = self._path(path)
        if not target.exists() and not target.is_symlink():
            return
        if target.is_dir() and not target.is_symlink():
            raise BadInput(f"{target}: is a directory")
        self.snapshot(target)
        fault.point("unlink")
        target.unlink()
        fsync_dir(target.parent)

    def run(self, argv: Sequence[str], *, input: str | bytes | None = None,
            env: dict[str, str] | None = None,
            timeout: float | None = 300) -> subprocess.CompletedProcess | None:
        """Run a command that changes state. Whatever it changes must be journaled first
        (:meth:`snapshot`, :meth:`snapshot_tree`, :meth:`record`): rollback and undo restore
        those images; the argv is journaled for the log only and never run again."""
        if self.dry_run:
            self.planned.append("run " + " ".join(argv))
            return None
        self._journal(entries.RunStep(tuple(str(a) for a in argv)))
        fault.point(f"exec {argv[0]}")
        done = proc.run(argv, input=input, env=env, timeout=timeout,
                        text=not isinstance(input, bytes))
        fault.point(f"after {argv[0]}")
        return done

    def record(self, kind: str, before: bytes, *, label: str = "",
               data: dict[str, Any] | None = None) -> None:
        """Record a non-file before-image (say an ``iptables-save`` dump) *before* changing it.

        ``kind`` names a :class:`~trustwall.journal.steps.StepKind`; rollback and undo restore
        ``before`` the way that kind says, with the validated ``data`` (e.g. the backend).
        """
        step = steps.kind(kind)
        fields = step.validate(data or {})
        if self.dry_run:
            self.planned.append(f"record {kind} {label}".rstrip())
            return
        digest = self._store_blob(before)
        self._journal(entries.RecordStep(kind, digest, label, fields))


# -- validating a journal ------------------------------------------------------------------

_HEX = frozenset("0123456789abcdef")


def _is_digest(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX


def _is_mode(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0o7777


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**32


def _confined(path: Any, root: Path, where: str) -> Path:
    """``path`` from a journal, refused unless it is a normal absolute path inside ``root``."""
    if not isinstance(path, str) or not path.startswith("/") or "\0" in path \
            or os.path.normpath(path) != path.rstrip("/") or path != path.rstrip("/"):
        raise steps.JournalRefused(f"{where}: refusing path {path!r}")
    if not (root == Path("/") or Path(path) == root or Path(path).is_relative_to(root)):
        raise steps.JournalRefused(f"{where}: {path} is outside the root {root}; not touching it")
    return Path(path)


def _check_image(image: Any, where: str) -> None:
    ok = isinstance(image, dict)
    if ok:
        kind = image.get("type")
        if kind == ABSENT:
            ok = True
        elif kind == "symlink":
            ok = isinstance(image.get("target"), str) and "\0" not in image["target"]
        elif kind == "dir":
            ok = _is_mode(image.get("mode"))
        elif kind == "file":
            ok = (_is_digest(image.get("sha256")) and _is_mode(image.get("mode"))
                  and _is_id(image.get("uid")) and _is_id(image.get("gid")))
        else:
            ok = False
    if not ok:
        raise steps.JournalRefused(f"{where}: refusing before-image {image!r}")


def _entries(txn_dir: Path, root: Path) -> list[entries.Step]:
    """The journal of ``txn_dir``, every step validated before any is acted upon: paths inside
    ``root``, known step kinds with data they accept, digests as blob names. One bad entry
    refuses it all."""
    out = _steps(txn_dir)
    for number, step in enumerate(out, start=1):
        where = _where(txn_dir, number)
        if isinstance(step, entries.FileStep):
            _confined(step.path, root, where)
            _check_image(step.before, where)
        elif isinstance(step, entries.TreeStep):
            _confined(step.path, root, where)
            if not all(n and not n.startswith("/") and ".." not in n.split("/")
                       for n in step.names):
                raise steps.JournalRefused(f"{where}: refusing tree names")
        elif isinstance(step, entries.RecordStep):
            steps.kind(step.kind).validate(step.data)
            if not _is_digest(step.before):
                raise steps.JournalRefused(f"{where}: refusing blob name {step.before!r}")
    return out


def _meta(txn_dir: Path) -> dict[str, Any]:
    return json.loads(read_nofollow(txn_dir / "meta.json"))


def confinement(root: str | os.PathLike[str], state_dir: Path) -> Path:
    """Where a transaction's paths must stay: inside its root when its journal lives inside
    that root too (``--root IMG`` with IMG's own state dir: whoever made the image could have
    planted that journal), anywhere (stores named explicitly, say ``java:/srv/app.p12``) when
    the journal is in a state dir outside it."""
    top = Path(os.path.abspath(root))
    return top if state_dir.is_relative_to(top) else Path("/")


def _in_root(made_under: Path, path: str) -> Path:
    """A journaled path resolved again as its root sees it (a directory swapped for a link
    since the transaction cannot lead the restore out of the image)."""
    if str(made_under) != "/" and rootfs.inside(made_under, path):
        return rootfs.resolve(made_under, path)
    return Path(path)


def _made_under(txn_dir: Path, root: str | os.PathLike[str] | None) -> Path:
    recorded = _meta(txn_dir).get("root")
    if not isinstance(recorded, str) or not recorded.startswith("/"):
        raise steps.JournalRefused(f"transaction {txn_dir.name.lstrip('0')}: bad root {recorded!r}")
    if root is not None and os.path.abspath(root) != "/" \
            and os.path.abspath(recorded) != os.path.abspath(root):
        raise steps.JournalRefused(
            f"transaction {txn_dir.name.lstrip('0')} was made under root {recorded}, "
            f"not {os.path.abspath(root)}; not touching it")
    return Path(os.path.abspath(recorded))


def _blob(blobs: Path, digest: str) -> bytes:
    data = read_nofollow(blobs / digest)
    if _sha256(data) != digest:
        raise StoreError(f"journal blob {digest[:12]} is corrupt; not restoring it")
    return data


# -- commit, rollback, recovery ------------------------------------------------------------

def _finish(state_dir: Path, txn_dir: Path, status: str, *, error: str | None = None) -> None:
    """Write status.json, then chain the audit record (idempotent: recovery may redo it)."""
    status_path = txn_dir / "status.json"
    if not status_path.exists():
        after: dict[str, dict[str, Any]] = {}
        after_records: dict[str, str] = {}
        for number, step in enumerate(_steps(txn_dir)):
            if isinstance(step, entries.FileStep):
                after[step.path] = capture(Path(step.path))[0]
            elif isinstance(step, entries.RecordStep) and status == "committed":
                now = steps.kind(step.kind).capture(step.data)
                after_records[str(number)] = _store_blob(txn_dir / "blobs", now)
        doc = {"status": status, "finished": _now(), "after": after,
               "after_records": after_records, "error": error}
        atomic_write(status_path, json.dumps(doc, indent=1).encode(), mode=0o600)
    _audit(state_dir, txn_dir)


def _audit(state_dir: Path, txn_dir: Path) -> None:
    log = AuditLog(state_dir)
    meta = _meta(txn_dir)
    if (txn_dir / "audited").exists():
        return
    records = list(log.records())
    last = records[-1] if records else None
    if last is None or str(last.get("id")) != meta["id"]:
        summary = _summary(txn_dir)
        log.append({
            "id": meta["id"], "time": summary.finished or _now(), "who": meta["who"],
            "kind": meta["kind"], "description": meta["description"], "root": meta["root"],
            "status": summary.status, "undoes": meta.get("undoes"),
            "files": [{"path": f.path, "before": f.before, "after": f.after}
                      for f in summary.files],
            "commands": [list(c) for c in summary.commands],
            "records": list(summary.records),
        })
    else:
        # The record made it to the log but a kill came before audit.head was replaced.
        log.repair_head()
    atomic_write(txn_dir / "audited", b"", mode=0o600)


def _rollback(txn_dir: Path, root: str | os.PathLike[str] | None = None) -> None:
    """Undo every journaled step of a failed or crashed transaction, newest first."""
    blobs = txn_dir / "blobs"
    made = _made_under(txn_dir, root)
    for step in reversed(_entries(txn_dir, confinement(made, txn_dir.parent.parent))):
        if isinstance(step, entries.FileStep):
            restore_image(_in_root(made, step.path), step.before, blobs)
        elif isinstance(step, entries.TreeStep):
            _prune_tree(_in_root(made, step.path), set(step.names), None)
        elif isinstance(step, entries.RecordStep):
            steps.kind(step.kind).restore(step.data, _blob(blobs, step.before))


def _prune_tree(top: Path, keep: set[str], txn: Transaction | None) -> None:
    """Remove files under ``top`` that a command created (not in the snapshot ``keep``)."""
    if not top.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(top):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            full = Path(dirpath) / name
            if str(full.relative_to(top)) not in keep:
                if txn is None:
                    _remove(full)
                else:
                    txn.remove_file(full)


def _txn_dirs(state_dir: Path) -> list[Path]:
    txns = state_dir / "txns"
    if not txns.is_dir():
        return []
    return sorted((p for p in txns.iterdir() if p.name.isdigit() and (p / "meta.json").exists()),
                  key=lambda p: int(p.name))


@dataclass(frozen=True)
class RecoverResult:
    """What ``trustwall recover`` did (or, on a dry run, would do)."""

    state_dir: str
    rolled_back: tuple[str, ...]  # transactions a crash left open, now rolled back
    finished: tuple[str, ...]     # finished ones whose audit record / head was completed
    dry_run: bool


def recover_interrupted(*, root: str | os.PathLike[str] | None = None,
                        state_dir: str | os.PathLike[str] | None = None, dry_run: bool = False,
                        _locked: bool = False) -> RecoverResult:
    """Roll back every transaction a crash left open and finish any whose audit record is
    missing (repairing audit.head), each logged in the audit chain.

    Safe to run at any time: it takes the host lock, so a transaction still running elsewhere
    is waited for rather than rolled back under its feet. ``dry_run`` only names them: no lock,
    no write.
    """
    directory = state_dir_for(root, state_dir)
    rolled: list[str] = []
    finished: list[str] = []
    if not statedir.check(directory) or not (directory / "txns").is_dir():
        return RecoverResult(str(directory), (), (), dry_run)
    with contextlib.ExitStack() as stack:
        if not _locked and not dry_run:
            stack.enter_context(HostLock(directory))
        for txn_dir in _txn_dirs(directory):
            number = str(int(txn_dir.name))
            if not (txn_dir / "status.json").exists():
                if not dry_run:
                    _rollback(txn_dir, root)
                    _finish(directory, txn_dir, "rolled-back", error="interrupted; rolled back")
                rolled.append(number)
            elif not (txn_dir / "audited").exists():
                if not dry_run:
                    _audit(directory, txn_dir)
                finished.append(number)
    return RecoverResult(str(directory), tuple(rolled), tuple(finished), dry_run)


def recover(*, root: str | os.PathLike[str] | None = None,
            state_dir: str | os.PathLike[str] | None = None, dry_run: bool = False,
            _locked: bool = False) -> list[str]:
    """:func:`recover_interrupted`, returning the ids of the transactions rolled back."""
    return list(recover_interrupted(root=root, state_dir=state_dir, dry_run=dry_run,
                                    _locked=_locked).rolled_back)


# -- reading -------------------------------------------------------------------------------

def _summary(txn_dir: Path, undone_by: str | None = None) -> TxnSummary:
    meta = _meta(txn_dir)
    status_doc: dict[str, Any] = {}
    if (txn_dir / "status.json").exists():
        status_doc = json.loads(read_nofollow(txn_dir / "status.json"))
    after = status_doc.get("after", {})
    files, commands, records = [], [], []
    for number, line in enumerate(_read_lines(txn_dir / "journal.jsonl"), start=1):
        try:  # a summary only shows what it can read; acting on a journal validates it all
            step = entries.from_json(line, _where(txn_dir, number))
        except steps.JournalRefused:
            continue
        if isinstance(step, entries.FileStep):
            files.append(FileChange(step.path, describe_image(step.before),
                                    describe_image(after[step.path])
                                    if step.path in after else "?"))
        elif isinstance(step, entries.RunStep):
            commands.append(step.argv)
        elif isinstance(step, entries.RecordStep):
            records.append(f"{step.kind} {step.label}".rstrip())
    return TxnSummary(
        id=meta["id"], kind=meta["kind"], description=meta["description"],
        status=status_doc.get("status", "open"), started=meta["started"],
        finished=status_doc.get("finished"), who=meta["who"], undoes=meta.get("undoes"),
        undone_by=undone_by, files=tuple(files), commands=tuple(commands),
        records=tuple(records))


def transactions(*, root: str | os.PathLike[str] | None = None,
                 state_dir: str | os.PathLike[str] | None = None) -> list[TxnSummary]:
    """Every transaction, oldest first, with which undo (if any) reverted it."""
    directory = state_dir_for(root, state_dir)
    if not statedir.check(directory):
        return []
    dirs = _txn_dirs(directory)
    metas = {d: _meta(d) for d in dirs}
    undone_by: dict[str, str] = {}
    for d, meta in metas.items():
        if meta.get("undoes") and _status(d) == "committed":
            undone_by[str(meta["undoes"])] = meta["id"]
    return [_summary(d, undone_by.get(metas[d]["id"])) for d in dirs]


def _status(txn_dir: Path) -> str:
    try:
        return str(json.loads(read_nofollow(txn_dir / "status.json"))["status"])
    except FileNotFoundError:
        return "open"


# -- undo ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class UndoResult:
    undone: str
    description: str
    undo_txn: str | None  # None on --dry-run
    actions: tuple[str, ...]
    dry_run: bool


def _pick(summaries: list[TxnSummary], txn_id: str | None) -> TxnSummary:
    if txn_id is not None:
        wanted = txn_id.lstrip("#")
        for s in summaries:
            if s.id == wanted or (wanted.isdigit() and s.id == str(int(wanted))):
                if s.status != "committed":
                    raise BadInput(f"transaction {s.id} is {s.status}; nothing to undo")
                if s.undone_by:
                    raise BadInput(f"transaction {s.id} was already undone by {s.undone_by}",
                                   hint=f"trustwall undo {s.undone_by} redoes it")
                return s
        raise BadInput(f"no transaction {txn_id}", hint="trustwall log lists them")
    for s in reversed(summaries):
        if s.status == "committed" and not s.undone_by and not s.undoes:
            return s
    raise BadInput("nothing to undo", hint="trustwall log lists past transactions")


def undo(txn_id: str | None = None, *, root: str | os.PathLike[str] | None = None,
         state_dir: str | os.PathLike[str] | None = None, dry_run: bool = False,
         force: bool = False) -> UndoResult:
    """Restore what transaction ``txn_id`` (default: the latest not yet undone) changed.

    Files come back byte-identical with their mode and owner. A file changed again since
    (by a later transaction or by hand) is a conflict and refused unless ``force``.
    """
    directory = state_dir_for(root, state_dir)
    if not statedir.check(directory):
        _pick([], txn_id)  # refuses: nothing is created for an undo that cannot happen
    with contextlib.ExitStack() as stack:
        pending = recover(root=root, state_dir=directory, dry_run=True)  # named, not touched
        if not dry_run:
            stack.enter_context(HostLock(directory))
            recover(root=root, state_dir=directory, _locked=True)
            pending = []
        return _undo_locked(directory, txn_id, root=root, dry_run=dry_run, force=force,
                            pending=pending)


def _undo_locked(directory: Path, txn_id: str | None, *, root: str | os.PathLike[str] | None,
                 dry_run: bool, force: bool, pending: list[str]) -> UndoResult:
    """``undo`` once the host lock is held (or, for a dry run, without it: it writes nothing)."""
    target = _pick(transactions(state_dir=directory), txn_id)
    txn_dir = directory / "txns" / f"{int(target.id):06d}"
    made = _made_under(txn_dir, root)
    journal = _entries(txn_dir, confinement(made, directory))
    status_doc = json.loads(read_nofollow(txn_dir / "status.json"))
    after = status_doc["after"]
    blobs = txn_dir / "blobs"
    conflicts = [p for p, image in after.items()
                 if describe_image(capture(_in_root(made, p))[0]) != describe_image(image)]
    if conflicts and not force:
        raise StoreError(
            f"transaction {target.id}: {len(conflicts)} file(s) changed since "
            f"(e.g. {conflicts[0]})", hint="undo the later transactions first, or --force")
    after_records = status_doc.get("after_records") or {}
    for number, step in enumerate(journal):
        if isinstance(step, entries.RecordStep):
            digest = after_records.get(str(number))
            for check in steps.kind(step.kind).pre_undo:
                try:
                    check(step, _blob(blobs, step.before),
                          _blob(blobs, digest) if _is_digest(digest) else None)
                except steps.UndoConflict:
                    if not force:
                        raise
    actions = [f"first roll back interrupted transaction {p} (recovery pending)"
               for p in pending] + _undo_actions(journal)
    if dry_run:
        return UndoResult(target.id, target.description, None, tuple(actions), True)
    with Transaction("undo", f"undo {target.id}: {target.description}",
                     root=made, state_dir=directory, undoes=target.id) as txn:
        _apply_undo(txn, journal, blobs)
    return UndoResult(target.id, target.description, txn.id, tuple(actions), False)


def _undo_actions(journal: list[entries.Step]) -> list[str]:
    out = []
    for step in reversed(journal):
        if isinstance(step, entries.FileStep):
            out.append(f"restore {step.path} ({describe_image(step.before)})")
        elif isinstance(step, entries.TreeStep):
            out.append(f"remove files created under {step.path}")
        elif isinstance(step, entries.RecordStep):
            argv = steps.kind(step.kind).restore_argv(step.data)
            out.append(f"restore {step.kind} with " + " ".join(argv))
    return out


def _apply_undo(txn: Transaction, journal: list[entries.Step], blobs: Path) -> None:
    # A kind whose restore reloads from files (ufw: ``ufw reload`` of user.rules) is recorded
    # in the undo's own transaction before anything else, so that if the undo rolls back
    # (newest step first) the files come back first and the reload runs last, on them.
    early = {number for number, step in enumerate(journal)
             if isinstance(step, entries.RecordStep) and steps.kind(step.kind).reloads_files}
    for number in sorted(early, reverse=True):
        step = journal[number]
        assert isinstance(step, entries.RecordStep)
        txn.record(step.kind, steps.kind(step.kind).capture(step.data), label=step.label,
                   data=dict(step.data))
    for number, step in reversed(list(enumerate(journal))):
        if isinstance(step, entries.FileStep):
            path = txn._path(step.path)
            txn.snapshot(path)
            restore_image(path, step.before, blobs)
        elif isinstance(step, entries.TreeStep):
            _prune_tree(txn._path(step.path), set(step.names), txn)
        elif isinstance(step, entries.RecordStep):
            kind = steps.kind(step.kind)
            if number not in early:
                txn.record(kind.name, kind.capture(step.data), label=step.label,
                           data=dict(step.data))
            before = _blob(blobs, step.before)
            txn.run(kind.restore_argv(step.data), input=before)
            for check in kind.post_restore:
                check(step, before)


def iter_audit(*, root: str | os.PathLike[str] | None = None,
               state_dir: str | os.PathLike[str] | None = None) -> Iterator[dict[str, Any]]:
    yield from AuditLog(state_dir_for(root, state_dir)).records()

