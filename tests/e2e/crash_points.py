"""Kill a trustwall operation at EACH of its crash points in turn, recover, check (issue 19).

``python crash_points.py SPEC.json`` (inside a lab namespace for firewall operations) prints
one JSON object. SPEC: ``argv`` (the trustwall command), ``state_dir``, and how to reset the
world before each run: ``template`` + ``root`` (a sandbox tree copied afresh) and/or
``ruleset`` (iptables-restore'd). Observed state: the tree under ``root`` (the journal
excluded) and/or ``iptables-save`` without counters.

The crash points are journal/fault.py's: every write, fsync, rename, unlink, mkdir, symlink
and state-changing exec. A first run traces them (N points and the "new" state); then for
i = 1..N the command runs in a forked child (modules already imported: a fork costs a few ms,
a fresh interpreter 300) that SIGKILLs itself at point i; ``trustwall recover`` runs in
another child; and the parent checks: the state is wholly the old or the new one, no
transaction is open, and the audit log verifies.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from trustwall.cli.main import main
from trustwall.journal import fault, statedir
from trustwall.journal.audit import AuditLog
from trustwall.journal.transaction import transactions

SKIP = "var/lib/trustwall"


def _tree(top: Path) -> dict[str, tuple]:
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        rel_dir = os.path.relpath(dirpath, top)
        if rel_dir == SKIP or rel_dir.startswith(SKIP + "/"):
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(top))
            if SKIP.startswith(rel):
                continue
            st = path.lstat()
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir", st.st_mode & 0o7777)
            else:
                out[rel] = ("file", path.read_bytes(), st.st_mode & 0o7777)
    return out


def _rules() -> str:
    text = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    return "\n".join(re.sub(r" \[\d+:\d+\]$", "", line) for line in text.splitlines()
                     if not line.startswith("#"))


class World:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.state = Path(spec["state_dir"])
        self.root = Path(spec["root"]) if spec.get("root") else None

    def reset(self) -> None:
        if self.spec.get("template"):
            assert self.root is not None
            shutil.rmtree(self.root, ignore_errors=True)
            shutil.copytree(self.spec["template"], self.root, symlinks=True)
        if self.spec.get("fresh_state"):
            shutil.rmtree(self.state, ignore_errors=True)
        if self.spec.get("ruleset"):
            subprocess.run(["iptables-restore"], input=self.spec["ruleset"], text=True,
                           check=True)

    def observe(self) -> tuple:
        return (_tree(self.root) if self.root is not None else None,
                _rules() if self.spec.get("ruleset") else None)


def _child(argv: list[str], *, at: int = 0, trace: str = "") -> int:
    """Run ``trustwall ARGV`` in a forked child; its exit code, or -signal."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 70
        try:
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 0)
            os.dup2(null, 1)
            os.dup2(null, 2)
            fault.arm(at=at, trace=trace)
            code = main(list(argv))
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _warm_up(argv: list[str]) -> None:
    """Run ``argv --dry-run`` here, before forking: every child then starts with the modules
    it needs already imported (a third of a second each otherwise)."""
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null), \
            contextlib.redirect_stderr(null):
        main([*argv, "--dry-run"])


def run(spec: dict[str, Any]) -> dict[str, Any]:
    world = World(spec)
    argv, state = spec["argv"], world.state
    recover_argv = ["recover", "--state-dir", str(state)]
    world.reset()
    _warm_up(argv)
    world.reset()
    old = world.observe()
    with tempfile.NamedTemporaryFile(prefix="tw-fault-") as trace:
        assert _child(argv, trace=trace.name) == 0, "the operation fails without a kill"
        points = [line.split(" ", 2)[2].strip()
                  for line in Path(trace.name).read_text().splitlines()]
    new = world.observe()
    assert new != old, "the operation changed nothing"
    outcomes: collections.Counter[str] = collections.Counter()
    failures = []
    for at in range(1, len(points) + 1):
        world.reset()
        statedir._CHECKED.clear()
        code = _child(argv, at=at)
        problems = []
        if code != -9:
            problems.append(f"not killed (exit {code})")
        if _child(recover_argv) != 0:
            problems.append("recover failed")
        now = world.observe()
        outcome = "old" if now == old else "new" if now == new else "MIXED"
        outcomes[outcome] += 1
        if outcome == "MIXED":
            problems.append("state is neither wholly old nor wholly new")
        if statedir.interrupted(state_dir=state) is not None:
            problems.append("a transaction is still open")
        if any(t.status == "open" for t in transactions(state_dir=state)):
            problems.append("a transaction has no status")
        verdict = AuditLog(state).verify()
        if not verdict.ok:
            problems.append("log --verify: " + "; ".join(p.message for p in verdict.problems))
        if problems:
            failures.append({"at": at, "point": points[at - 1], "problems": problems})
    return {"points": len(points), "kinds": collections.Counter(
                p.split()[0] for p in points), "outcomes": dict(outcomes),
            "failures": failures}


if __name__ == "__main__":
    print(json.dumps(run(json.loads(Path(sys.argv[1]).read_text()))))
