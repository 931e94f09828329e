"""Trust-store helpers shared by trust_ca and trust_fix: results per store, diff text."""

from __future__ import annotations


def store_changes(result):
    """Per store: what was (or would be) added, removed or already there."""
    return [dict(kind=s.kind, path=s.path, added=list(s.added), removed=list(s.removed),
                 already=list(s.already), absent=list(s.absent), notes=list(s.notes))
            for s in result.stores]


def change_diff(result):
    """Ansible diff of a ChangeResult: for each store, the wanted certificates it holds before
    and after; ``prepared`` lists the additions and removals."""
    before, after, prepared = [], [], []
    for s in result.stores:
        had = [*s.already, *s.removed]
        has = [*s.already, *s.added]
        before += [f"{s.kind} {s.path}: {fp}" for fp in had]
        after += [f"{s.kind} {s.path}: {fp}" for fp in has]
        prepared += [f"+ {s.kind} {s.path}: {fp}" for fp in s.added]
        prepared += [f"- {s.kind} {s.path}: {fp}" for fp in s.removed]
    return {"before": "\n".join(before) + "\n", "after": "\n".join(after) + "\n",
            "prepared": "\n".join(prepared) + "\n"}


def kinds_from(include, exclude):
    """Store kinds to act on: the included ones (default every kind) minus the excluded."""
    from trustwall.stores.registry import KINDS

    wanted = list(include or KINDS)
    return [k for k in wanted if k.partition(":")[0] not in (exclude or [])]


def verdicts(result):
    return [dict(name=c.name, ok=c.ok, error=c.error, seconds=round(c.seconds, 3))
            for c in result.clients]
