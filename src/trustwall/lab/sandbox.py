"""Trust-store sandbox: a private mount namespace where the host is read-only and every trust
store trustwall may change is a writable copy.

Layout inside the sandbox (built by a long-lived *holder* process, see :func:`_hold`):

- ``/etc`` is a sandbox directory (``<dir>/etc``): each host entry is bind-mounted read-only
  onto it, except the stores that live directly in /etc (``environment``, ``hosts``,
  ``ca-certificates.conf``, ``ca-certificates/``, ``profile.d/``), which are plain copies. So
  ``atomic_write('/etc/environment')`` (temp file + rename in /etc) works, while writing an
  existing host file fails with EROFS and replacing it fails with EBUSY. A *new* file in /etc
  lands in the sandbox directory, never on the host.
- ``/usr``, ``/var``, ``/root``, ``/home``, ``/opt`` and ``/srv`` are read-only bind mounts of
  themselves (``/root`` because the venv interpreters and the system certifi live under
  ``/root/.pyenv`` here). ``/var/lib``
  is rebuilt like /etc so that ``/var/lib/trustwall`` (the journal's default state directory)
  is writable and always starts empty (never a copy of the host's journal).
- Nested stores are writable copies bind-mounted over the real path: ``/etc/ssl/certs``
  (with ``java/cacerts``, a JKS file), ``/usr/local/share/ca-certificates``,
  ``/var/lib/ca-certificates-java`` and the certifi package directories.
- ``/var/lib/dpkg`` (33 MB; ``cp -a`` takes 2 s) and ``/var/log`` are overlays with their upper
  directory in the sandbox: the Debian Java hook runs ``dpkg --triggers-only``, which locks and
  rewrites /var/lib/dpkg and appends to /var/log/dpkg.log (docs/quirks-found.md). Nothing is
  disabled:
  ``update-ca-certificates`` inside the sandbox runs the real hook and updates the copy of
  Java's cacerts.
- ``HOME`` for sandboxed commands is ``<dir>/home`` with a fresh, empty NSS db in
  ``~/.pki/nssdb``.

The copies live in a host directory ``/dev/shm/tw-sandbox-<pid>-<n>`` so the host can inspect
them (:meth:`Sandbox.path`); /dev/shm is a tmpfs, so building a sandbox creates no disk I/O
(on ext4 under load the ~300 symlinks of /etc/ssl/certs alone took 0.5 s).
The holder runs ``unshare --mount --propagation private`` (inside
``ip netns exec`` when given a :class:`~trustwall.lab.netns.Netns`, so the netns' own
/etc/hosts is what gets copied); commands enter with ``nsenter --target <holder> --mount``
(``--wdns`` for the working directory: ``--wd`` resolves in the caller's namespace,
docs/quirks-found.md).
When the holder dies the namespace and all its mounts vanish; the holder also exits when its
parent does (EOF on stdin), and :func:`cleanup_stale` removes directories of dead creators.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from trustwall.clients.login import SYSTEM_PATH, base_environment
from trustwall.errors import EnvironmentMissing
from trustwall.lab.netns import Netns, require_root
from trustwall.proc import CommandFailed, pid_alive

#: Stores that are direct children of /etc: copied into the sandbox's own /etc directory.
ETC_COPIES = ("environment", "hosts", "ca-certificates.conf", "ca-certificates", "profile.d")
#: Directories rebuilt entry by entry (read-only binds of the host's entries) with these
#: entries writable: copied if the host has them; a name ending in "/" is always a new empty
#: directory, never the host's (/var/lib/trustwall, the journal's default state directory: a
#: sandbox starts with no history, so what it undoes or verifies never depends on the host's).
REBUILT = {"/etc": ETC_COPIES, "/var/lib": ("trustwall/",)}
#: Nested stores: copied, then bind-mounted over the real path.
NESTED_COPIES = (
    "/etc/ssl/certs",
    "/usr/local/share/ca-certificates",
    "/var/lib/ca-certificates-java",
)
#: Large or log-like directories the Java hook writes: overlays (upper dir in the sandbox).
OVERLAYS = ("/var/lib/dpkg", "/var/log")
#: Host trees made read-only inside (besides /etc, which is rebuilt entry by entry): /home and
#: /opt too, since users' NSS dbs and JDKs unpacked in /opt are trust stores as well.
READ_ONLY = ("/usr", "/var", "/root", "/home", "/opt", "/srv")

#: Where sandbox directories live: a tmpfs the host can see (not remapped inside).
SANDBOX_PARENT = Path("/dev/shm")
_DIR_PREFIX = "tw-sandbox-"
_DIR_RE = re.compile(r"^tw-sandbox-(?P<pid>\d+)-\d+$")
_counter = itertools.count(1)


def default_certifi_dirs() -> list[Path]:
    """The certifi package of the interpreter running trustwall (the project venv)."""
    try:
        import certifi
    except ImportError:
        return []
    return [Path(certifi.where()).parent]


class Sandbox:
    """A private mount namespace with writable copies of the trust stores (see module doc).

    ``Sandbox(netns=None, certifi_dirs=None)``: ``certifi_dirs`` defaults to the certifi of the
    running interpreter; pass more (e.g. a test venv's) to sandbox them too. The netns'
    /etc/hosts (lab names) is copied when the sandbox starts: create it after the lab.

    Attributes: ``root`` (the sandbox directory on the host), ``home`` (HOME inside), ``pid``
    (the holder), ``netns``. Everything outside /etc, /usr, /var, /root, /home, /opt and /srv
    (e.g. /tmp, /work) stays shared with the host: no trust store lives there, except the
    certifi packages, which are copied.
    """

    def __init__(self, netns: Netns | None = None, *,
                 certifi_dirs: Sequence[str | os.PathLike[str]] | None = None) -> None:
        require_root()
        for tool in ("unshare", "nsenter"):
            if shutil.which(tool, path=SYSTEM_PATH) is None:
                raise EnvironmentMissing(f"{tool} is not installed",
                                         hint="apt-get install util-linux")
        self.netns = netns
        self.root = _new_sandbox_dir()
        self.home = self.root / "home"
        self._procs: list[subprocess.Popen] = []
        self._holder: subprocess.Popen | None = None
        dirs = default_certifi_dirs() if certifi_dirs is None else [Path(d) for d in certifi_dirs]
        self.nested = [*NESTED_COPIES, *(str(Path(d).resolve()) for d in dirs)]
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    # ---- life cycle -------------------------------------------------------------------------
    def _start(self) -> None:
        self.home.mkdir(mode=0o700)
        nssdb = self.home / ".pki" / "nssdb"
        nssdb.mkdir(parents=True)
        certutil = shutil.which("certutil", path=SYSTEM_PATH)
        if certutil is not None:  # a fresh, empty NSS db as browsers/NSS clients create it
            subprocess.run([certutil, "-N", "-d", f"sql:{nssdb}", "--empty-password"],
                           check=True, capture_output=True, timeout=30)
        plan = {"root": str(self.root), "rebuilt": {k: list(v) for k, v in REBUILT.items()},
                "nested": self.nested, "overlays": list(OVERLAYS), "read_only": list(READ_ONLY)}
        argv = ["unshare", "--mount", "--propagation", "private",
                sys.executable, "-m", "trustwall.lab.sandbox", "--hold", json.dumps(plan)]
        if self.netns is not None:
            argv = self.netns.argv(argv)
        env = {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8", "PYTHONPATH": _package_root()}
        self._holder = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env=env, text=True,
                                        start_new_session=True)
        line = self._holder.stdout.readline() if self._holder.stdout else ""
        if line.strip() != "ready":
            self._holder.kill()
            _, err = self._holder.communicate(timeout=10)
            raise CommandFailed([*argv[:1], "sandbox holder"], self._holder.returncode or 1,
                                line, err or line)

    @property
    def pid(self) -> int:
        """PID of the holder process (its mount namespace is the sandbox)."""
        if self._holder is None:
            raise RuntimeError("sandbox is closed")
        return self._holder.pid

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Kill what runs inside (by PID), then the holder; the mounts vanish with it."""
        for proc in self._procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self._procs.clear()
        holder, self._holder = self._holder, None
        if holder is not None:
            if holder.poll() is None:
                _kill_namespace_members(holder.pid)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(holder.pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    holder.kill()
            holder.communicate(timeout=10)
        if self.root.exists():
            _safe_rmtree(self.root)

    # ---- running inside ---------------------------------------------------------------------
    def base_env(self, **extra: str) -> dict[str, str]:
        """The scrubbed environment commands get unless the caller passes one."""
        return base_environment(str(self.home), **extra)

    def argv(self, argv: Sequence[str], *, cwd: str | None = None) -> list[str]:
        """The command line that runs ``argv`` inside the sandbox (and its netns, if any)."""
        return enter_argv(self.pid, argv, net=self.netns is not None, cwd=cwd)

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        input: str | bytes | None = None,
        check: bool = True,
        timeout: float = 120,
        cwd: str | None = None,
        text: bool = True,
    ) -> subprocess.CompletedProcess:
        """Run ``argv`` inside; ``env`` replaces (not extends) :meth:`base_env`."""
        env = self.base_env() if env is None else dict(env)
        proc = subprocess.run(self.argv(argv, cwd=cwd), input=input, capture_output=True,
                              text=text, timeout=timeout, env=env, check=False)
        if check and proc.returncode != 0:
            out = proc.stdout if text else proc.stdout.decode(errors="replace")
            err = proc.stderr if text else proc.stderr.decode(errors="replace")
            raise CommandFailed(list(argv), proc.returncode, out, err)
        return proc

    def popen(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
              cwd: str | None = None, **popen_kw: object) -> subprocess.Popen:
        """Start ``argv`` inside in the background; killed by :meth:`close`."""
        popen_kw.setdefault("start_new_session", True)
        env = self.base_env() if env is None else dict(env)
        proc = subprocess.Popen(self.argv(argv, cwd=cwd), env=env,  # type: ignore[call-overload]
                                **popen_kw)
        self._procs.append(proc)
        return proc

    def path(self, real_path: str | os.PathLike[str]) -> Path:
        """Host-side path of what the sandbox sees at ``real_path`` (writable copies directly
        in the sandbox directory; anything else, e.g. the overlays, via /proc/<holder>/root,
        where an *absolute* symlink resolves in the caller's namespace: ask for the link's
        target, e.g. /etc/ssl/certs/java/cacerts rather than the JDK's lib/security/cacerts)."""
        real = Path(real_path)
        if not real.is_absolute():
            raise ValueError(f"{real_path}: not an absolute path")
        for base, names in REBUILT.items():
            if any(real == Path(base, n) or Path(base, n) in real.parents
                   for n in map(_entry_name, names)):
                return self.root / "rebuilt" / real.relative_to("/")
        for store in self.nested:
            if real == Path(store) or Path(store) in real.parents:
                return self.root / "stores" / real.relative_to("/")
        if real == self.home or self.home in real.parents:
            return real
        return Path(f"/proc/{self.pid}/root") / real.relative_to("/")


def enter_argv(holder_pid: int, argv: Sequence[str], *, net: bool,
               cwd: str | None = None) -> list[str]:
    """The command line that runs ``argv`` in the mount namespace of sandbox holder
    ``holder_pid`` (and its network namespace with ``net``); also from another process than
    the one that made the sandbox (``trustwall lab exec``)."""
    full = ["nsenter", "--target", str(holder_pid), "--mount"]
    if net:
        full.append("--net")
    return [*full, f"--wdns={cwd or '/'}", "--", *argv]


def store_fingerprint(certifi_dirs: Sequence[str | os.PathLike[str]] | None = None
                      ) -> dict[str, str]:
    """SHA-256 per store the sandbox protects, over names, link targets and bytes (as seen by
    the calling process): equal before and after a test means the host stores were not touched.
    """
    dirs = default_certifi_dirs() if certifi_dirs is None else [Path(d) for d in certifi_dirs]
    paths = [*(f"{base}/{_entry_name(name)}" for base, names in REBUILT.items()
               for name in names),
             *NESTED_COPIES, *map(str, dirs),
             "/var/lib/dpkg/status", "/var/lib/dpkg/triggers", "/var/log/dpkg.log",
             "/root/.pki/nssdb"]
    return {path: _tree_digest(Path(path)) for path in paths}


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    if not root.exists() and not root.is_symlink():
        return "absent"
    entries = [root] if not root.is_dir() else sorted(
        [root, *(e for e in root.rglob("*") if "__pycache__" not in e.parts)])
    for entry in entries:
        digest.update(str(entry.relative_to(root) if entry != root else ".").encode() + b"\0")
        if entry.is_symlink():
            digest.update(b"L" + os.readlink(entry).encode())
        elif entry.is_file():
            digest.update(b"F" + entry.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _new_sandbox_dir() -> Path:
    """``/dev/shm/tw-sandbox-<pid>-<n>``: the creator's PID in the name is the clean-up record."""
    while True:
        candidate = SANDBOX_PARENT / f"{_DIR_PREFIX}{os.getpid()}-{next(_counter)}"
        try:
            candidate.mkdir(mode=0o755)
        except FileExistsError:  # left by an earlier process with our (reused) PID
            continue
        candidate.chmod(0o755)
        return candidate


def _package_root() -> str:
    """Directory holding the ``trustwall`` package, for the holder's ``-m`` import."""
    return str(Path(__file__).resolve().parents[2])


def _kill_namespace_members(holder_pid: int) -> None:
    """SIGKILL every other process that shares the holder's mount namespace."""
    try:
        target = os.readlink(f"/proc/{holder_pid}/ns/mnt")
    except OSError:
        return
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == holder_pid:
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/mnt") == target:
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue


def _safe_rmtree(root: Path) -> None:
    """Remove a sandbox directory; refuse if anything under it is still a mount point."""
    mounts = Path("/proc/self/mounts").read_text().split("\n")
    prefix = str(root) + "/"
    for line in mounts:
        fields = line.split()
        if len(fields) > 1 and (fields[1] == str(root) or fields[1].startswith(prefix)):
            raise RuntimeError(f"{fields[1]} is still mounted; not removing {root}")
    shutil.rmtree(root, ignore_errors=True)


def cleanup_stale() -> list[str]:
    """Remove sandboxes whose creating process is dead (after a ``kill -9``).

    The holder exits by itself when its creator dies (EOF on its stdin), but a command started
    inside keeps the namespace alive: such processes are found by their mount table, which
    names the sandbox directory, and killed before the directory is removed.
    """
    removed = []
    for entry in SANDBOX_PARENT.glob(f"{_DIR_PREFIX}*"):
        match = _DIR_RE.match(entry.name)
        if match is None:
            continue
        if not pid_alive(int(match["pid"])):
            _kill_processes_mounting(entry)
            _safe_rmtree(entry)
            removed.append(str(entry))
    return removed


def _kill_processes_mounting(root: Path) -> None:
    marker = f" {root}/"
    for _ in range(50):
        found = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                if marker in Path(f"/proc/{entry}/mountinfo").read_text():
                    found = True
                    os.kill(int(entry), signal.SIGKILL)
            except (OSError, ProcessLookupError):
                continue
        if not found:
            return
        time.sleep(0.02)


# ---- the holder (runs inside the new mount namespace) -----------------------------------------
_MS_RDONLY = 1
_MS_REMOUNT = 32
_MS_BIND = 4096
_MS_REC = 16384


def _mount(source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    rc = libc.mount(source.encode() if source else None, target.encode(),
                    fstype.encode() if fstype else None, flags,
                    data.encode() if data else None)
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


def _bind(source: str, target: str, *, read_only: bool) -> None:
    _mount(source, target, None, _MS_BIND | _MS_REC)
    if read_only:
        _mount(None, target, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY)


def _copy(source: str, dest: Path) -> None:
    if os.path.isdir(source) and not os.path.islink(source):
        shutil.copytree(source, dest, symlinks=True)
        shutil.copystat(source, dest)
    else:
        shutil.copy2(source, dest, follow_symlinks=False)


def _entry_name(name: str) -> str:
    return name.rstrip("/")


def _rebuild(real: str, writable: Sequence[str], root: Path) -> None:
    """Replace directory ``real`` by a sandbox directory: the ``writable`` entries are copies
    (or new empty directories), every other entry a read-only bind of the host's."""
    rebuilt = root / "rebuilt" / real.lstrip("/")
    rebuilt.mkdir(parents=True)
    shutil.copystat(real, rebuilt)
    copies = {name for name in writable if not name.endswith("/")}
    fresh = {_entry_name(name) for name in writable if name.endswith("/")}
    read_only_binds = []
    for entry in os.scandir(real):
        dest = rebuilt / entry.name
        if entry.name in fresh:
            continue
        if entry.name in copies:
            _copy(entry.path, dest)
        elif entry.is_symlink():
            os.symlink(os.readlink(entry.path), dest)
        else:
            if entry.is_dir():
                dest.mkdir()
            else:
                dest.touch()
            read_only_binds.append((entry.path, str(dest)))
    for name in fresh:
        (rebuilt / name).mkdir(mode=0o700)
    for source, dest in read_only_binds:
        _bind(source, dest, read_only=True)
    _mount(str(rebuilt), real, None, _MS_BIND | _MS_REC)


def _hold(plan: dict) -> None:
    root = Path(plan["root"])
    # 1. The sandbox /etc: copies of the /etc-level stores, read-only binds of the rest.
    _rebuild("/etc", plan["rebuilt"]["/etc"], root)
    # 2. /usr, /var, /root read-only; then /var/lib rebuilt inside the read-only /var.
    for tree in plan["read_only"]:
        if os.path.isdir(tree) and not os.path.islink(tree):
            _bind(tree, tree, read_only=True)
    for real, writable in plan["rebuilt"].items():
        if real != "/etc":
            _rebuild(real, writable, root)
    # 3. Nested stores: writable copies over the real paths.
    for store in plan["nested"]:
        if not os.path.exists(store):
            continue
        copy = root / "stores" / store.lstrip("/")
        copy.parent.mkdir(parents=True, exist_ok=True)
        _copy(store, copy)
        _bind(str(copy), store, read_only=False)
    # 4. Overlays for the big dpkg database and the logs.
    for n, lower in enumerate(plan["overlays"]):
        if not os.path.isdir(lower):
            continue
        upper, work = root / "overlay" / str(n) / "upper", root / "overlay" / str(n) / "work"
        upper.mkdir(parents=True)
        work.mkdir()
        _mount("overlay", lower, "overlay", 0,
               f"lowerdir={lower},upperdir={upper},workdir={work}")
    print("ready", flush=True)
    # Block until the creator closes our stdin (or dies); the namespace dies with us.
    sys.stdin.read()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--hold":
        try:
            _hold(json.loads(sys.argv[2]))
        except Exception as exc:
            print(f"error: {exc}", flush=True)
            sys.exit(1)
    else:
        sys.exit("usage: python -m trustwall.lab.sandbox --hold <plan-json>")
