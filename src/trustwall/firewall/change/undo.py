"""What makes undoing a firewall change safe: the journal's ``iptables-v4``/``-v6`` steps call
these (journal/steps.py) so ``trustwall undo`` never does harm.

* **Where**: a change records the network namespace (the inode of /proc/self/ns/net) and the
  host (/etc/machine-id) it was made in; undo refuses anywhere else. A transaction a lab test
  left in the host's state dir would otherwise load the lab's ruleset onto the host firewall.
* **Nothing changed since**: the live ruleset must still equal the after-image captured at
  commit (parsed, so counters do not count). Otherwise restoring the before-image would wipe
  whatever came later — a rule added by hand to keep SSH open, another tool's chains. We
  refuse (``--force`` overrides) rather than revert only the transaction's own rules: a rule's
  meaning depends on its position among all the others, so a three-way merge of rule lists can
  silently change what other rules decide; file undos refuse in the same situation.
* **No lockout**: the ruleset undo would load is traced for the operator's own session (found
  in the kernel, session.py), as an apply is.
* **Afterwards**: the kernel is read back and compared with the before-image, as after every
  apply; a difference makes the undo's own transaction roll back.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from trustwall.errors import ParseError, StoreError
from trustwall.firewall.iptables.model import Ruleset
from trustwall.journal.steps import UndoConflict

if TYPE_CHECKING:
    from trustwall.journal.entries import RecordStep

MACHINE_ID = Path("/etc/machine-id")


class UndoRefused(UndoConflict):
    """Undoing this firewall step would do harm here and now (``--force`` overrides)."""


class UndoElsewhere(StoreError):
    """The step was journaled in another network namespace or on another host: never undone
    here, not even with ``--force``."""


def machine_id() -> str | None:
    """This host's /etc/machine-id (32 hex digits), or None when it has none."""
    try:
        text = MACHINE_ID.read_text().strip()
    except OSError:
        return None
    return text if len(text) == 32 and all(c in "0123456789abcdef" for c in text) else None


def where() -> dict[str, Any]:
    """The journal data that says where a firewall change is made."""
    from trustwall.firewall.change.session import netns_id

    out: dict[str, Any] = {}
    netns, host = netns_id(), machine_id()
    if netns is not None:
        out["netns"] = netns
    if host is not None:
        out["machine_id"] = host
    return out


def _family(step: RecordStep) -> int:
    return 6 if step.kind == "iptables-v6" else 4


def _parse(data: bytes, family: int) -> Ruleset | None:
    from trustwall.firewall.iptables.live import decode
    from trustwall.firewall.iptables.parse import parse_save

    try:
        return parse_save(decode(data), family=family)
    except ParseError:
        return None


def check_place(step: RecordStep) -> None:
    """Refuse to undo a step made in another network namespace or on another host."""
    data = step.data
    here = where()
    if "netns" not in data:
        raise UndoElsewhere("this firewall change does not say which network namespace it was "
                            "made in (an older trustwall journaled it), so undo cannot know "
                            "whether it would load that ruleset onto the right firewall")
    if data.get("machine_id") != here.get("machine_id"):
        raise UndoElsewhere(f"this firewall change was made on another host (machine-id "
                            f"{str(data.get('machine_id'))[:12]}…, this is "
                            f"{str(here.get('machine_id'))[:12]}…)")
    if data["netns"] != here.get("netns"):
        raise UndoElsewhere(f"this firewall change was made in another network namespace "
                            f"(net:[{data['netns']}]; this process is in "
                            f"net:[{here.get('netns')}]): undoing it here would load that "
                            "ruleset onto this firewall")


def check_unchanged(step: RecordStep, after: bytes | None) -> None:
    """Refuse when the live ruleset is no longer what the transaction left (see module doc)."""
    from trustwall.firewall.change.apply import ruleset_differences
    from trustwall.firewall.iptables.live import read_live

    family = _family(step)
    expected = _parse(after, family) if after is not None else None
    if expected is None:
        raise UndoRefused(f"IPv{family}: the transaction kept no readable after-image, so undo "
                          "cannot tell whether the firewall changed since")
    try:
        live = read_live(family=family)
    except ParseError as exc:
        raise UndoRefused(f"IPv{family}: the live ruleset does not read back ({exc})") from None
    differences = ruleset_differences(expected, live)
    if differences:
        raise UndoRefused(f"IPv{family}: the firewall changed since this transaction, and undo "
                          "would wipe that change too: " + "; ".join(differences))


def check_lockout(step: RecordStep, before: bytes) -> None:
    """Refuse an undo whose result would cut the operator's own session."""
    from trustwall.firewall.change import apply

    family = _family(step)
    target = _parse(before, family)
    if target is None:
        return  # restored byte for byte, as it was; nothing trustwall can trace
    flows = apply._flows(apply.Options(), apply._session(apply.Options()))
    problems = apply.check_lockout(target, flows)
    if problems:
        raise UndoRefused("refusing to undo: it would lock you out: " + "; ".join(problems),
                          hint="--force undoes anyway (from a console, or with a way back in)")


def before_undo(step: RecordStep, before: bytes, after: bytes | None) -> None:
    """The journal's pre-undo check for ``iptables-v4``/``-v6`` steps."""
    check_place(step)
    check_unchanged(step, after)
    check_lockout(step, before)


def after_restore(step: RecordStep, before: bytes) -> None:
    """After undo restored ``before``: the kernel must hold exactly that (else the undo's own
    transaction rolls back)."""
    from trustwall.firewall.change.apply import KernelMismatch, kernel_differences

    family = _family(step)
    expected = _parse(before, family)
    if expected is None:
        return
    differences = kernel_differences(family, expected)
    if differences:
        raise KernelMismatch(f"IPv{family}: after the undo the kernel holds something other "
                             "than the previous ruleset, so the undo was rolled back: "
                             + "; ".join(differences))
