"""Typed results of the doctor: a :class:`Ladder` of :class:`Rung` s, walked in order.

Each rung says what was checked, what was found and the next command. The first broken rung
is the answer; the rungs after it are not checked (``skipped``), because their result would
depend on the broken one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

STATUSES = ("ok", "broken", "skipped", "warning")


@dataclass(frozen=True)
class Rung:
    """One step of a ladder."""

    name: str
    status: str  # ok | broken | skipped | warning
    checked: str
    found: str
    next_command: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown rung status {self.status!r}")


@dataclass(frozen=True)
class Ladder:
    """All rungs of one diagnosis, in the order they were climbed."""

    target: str
    rungs: tuple[Rung, ...]

    @property
    def broken(self) -> str | None:
        """The name of the first broken rung (None: nothing is broken)."""
        return next((r.name for r in self.rungs if r.status == "broken"), None)

    @property
    def exit_code(self) -> int:
        return 1 if self.broken else 0

    def rung(self, name: str) -> Rung:
        return next(r for r in self.rungs if r.name == name)

    def to_json(self) -> dict[str, object]:
        return {"target": self.target,
                "rungs": [{"name": r.name, "status": r.status, "checked": r.checked,
                           "found": r.found, "next_command": r.next_command}
                          for r in self.rungs],
                "broken": self.broken}


@dataclass
class Climb:
    """Builds a ladder rung by rung; once a rung is broken, the rest are recorded skipped."""

    target: str
    names: tuple[str, ...]
    rungs: list[Rung] = field(default_factory=list)

    @property
    def stopped(self) -> bool:
        return any(r.status == "broken" for r in self.rungs)

    def add(self, rung: Rung) -> None:
        self.rungs.append(rung)

    def blame(self, name: str, found: str, next_command: str | None) -> None:
        """Mark an earlier rung broken after the fact (a later rung showed it was the cause)."""
        self.rungs = [replace(r, status="broken", found=found, next_command=next_command)
                      if r.name == name else r for r in self.rungs]

    def finish(self) -> Ladder:
        done = {r.name for r in self.rungs}
        first = next((r.name for r in self.rungs if r.status == "broken"), None)
        rest = [Rung(n, "skipped", "-", f"not checked: the {first} rung is broken"
                     if first else "not checked")
                for n in self.names if n not in done]
        return Ladder(self.target, tuple(self.rungs) + tuple(rest))
