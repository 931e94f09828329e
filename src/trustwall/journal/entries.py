"""Journal entries: one frozen dataclass per kind of step, instead of dicts passed around.

A line of ``journal.jsonl`` is one of:

* :class:`FileStep`   the before-image of a file (``before``: type, bytes digest, mode, owner;
  or a symlink target; or "absent");
* :class:`TreeStep`   the names a directory held before a command could add files to it;
* :class:`RunStep`    a command that ran (kept for the log; never run again);
* :class:`RecordStep` a non-file before-image of a registered step kind (say ``iptables-v4``):
  the blob digest, a label and the kind's validated data.

:func:`from_json` checks only the *shape* of a line; what a line may point at (paths confined
to the root, a known step kind, a digest as blob name) is checked by the transaction before it
acts (``transaction._entries``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from trustwall.journal.steps import JournalRefused


@dataclass(frozen=True)
class FileStep:
    op: ClassVar[str] = "file"
    path: str
    before: Mapping[str, Any]


@dataclass(frozen=True)
class TreeStep:
    op: ClassVar[str] = "tree"
    path: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class RunStep:
    op: ClassVar[str] = "run"
    argv: tuple[str, ...]


@dataclass(frozen=True)
class RecordStep:
    op: ClassVar[str] = "record"
    kind: str
    before: str  # the sha256 of the blob holding the before-image
    label: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


Step = FileStep | TreeStep | RunStep | RecordStep


def to_json(step: Step) -> dict[str, Any]:
    """The journal line for ``step``."""
    if isinstance(step, FileStep):
        return {"op": step.op, "path": step.path, "before": dict(step.before)}
    if isinstance(step, TreeStep):
        return {"op": step.op, "path": step.path, "names": list(step.names)}
    if isinstance(step, RunStep):
        return {"op": step.op, "argv": list(step.argv)}
    return {"op": step.op, "kind": step.kind, "label": step.label, "before": step.before,
            "data": dict(step.data)}


def from_json(entry: Any, where: str) -> Step:
    """The step a journal line describes; any other shape is refused (never guessed at)."""
    op = entry.get("op") if isinstance(entry, dict) else None
    if op == "file" and isinstance(entry.get("path"), str) \
            and isinstance(entry.get("before"), dict):
        return FileStep(entry["path"], entry["before"])
    if op == "tree" and isinstance(entry.get("path"), str) \
            and isinstance(entry.get("names"), list) \
            and all(isinstance(n, str) for n in entry["names"]):
        return TreeStep(entry["path"], tuple(entry["names"]))
    if op == "run":
        if entry.get("undo_argv"):
            raise JournalRefused(
                f"{where}: the journal asks to run a command on undo; trustwall never runs "
                "commands read from a journal", hint="this journal was written by an older "
                "trustwall or by someone else; inspect it before removing the transaction")
        if isinstance(entry.get("argv"), list):
            return RunStep(tuple(str(a) for a in entry["argv"]))
    if op == "record" and isinstance(entry.get("kind"), str) \
            and isinstance(entry.get("before"), str) \
            and isinstance(entry.get("label", ""), str) \
            and isinstance(entry.get("data", {}), dict):
        return RecordStep(entry["kind"], entry["before"], entry.get("label", ""),
                          entry.get("data") or {})
    if op in ("file", "tree", "run", "record"):
        raise JournalRefused(f"{where}: refusing a malformed {op} entry")
    raise JournalRefused(f"{where}: unknown journal op {op!r}; not acting on it")
