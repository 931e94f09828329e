"""What a journaled non-file step is, and how to reverse it: one registry of step kinds.

The journal never stores a command to run later. A ``record`` entry names a KIND (say
``iptables-v4``) plus a few validated data fields and the digest of the before-image; rollback
and undo look the kind up here and the code, not the journal, decides which program restores
it. A journal naming a kind this registry does not know (or data a kind refuses) is refused
with an error before anything runs: a planted or corrupted state directory cannot steer a root
process into running its own argv.

Kinds may carry pre-undo checks (:func:`add_pre_undo_check`): called with the journal step,
the before-image and the after-image captured at commit, they raise to refuse an undo that
would do harm (the firewall adds "the live ruleset still equals the after-image" and "same
network namespace" here).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from trustwall import proc
from trustwall.errors import StoreError
from trustwall.journal import fault

if TYPE_CHECKING:
    from trustwall.journal.entries import RecordStep


class JournalRefused(StoreError):
    """A journal entry trustwall will not act upon (unknown kind, bad field, path outside)."""


class UndoConflict(StoreError):
    """A pre-undo check's refusal that ``undo --force`` overrides (the state changed since)."""


PreUndoCheck = Callable[["RecordStep", bytes, "bytes | None"], None]
PostRestoreCheck = Callable[["RecordStep", bytes], None]


@dataclass
class StepKind:
    """A kind of non-file state: how to read it now and how to put a before-image back."""

    name: str
    capture: Callable[[Mapping[str, Any]], bytes]
    restore_argv: Callable[[Mapping[str, Any]], list[str]]
    fields: Mapping[str, Callable[[Any], bool]] = field(default_factory=dict)
    pre_undo: list[PreUndoCheck] = field(default_factory=list)
    # Called after undo restored a before-image (step, before); raise to roll the undo back.
    post_restore: list[PostRestoreCheck] = field(default_factory=list)
    # Its restore reloads state from files journaled AFTER it in the same transaction (ufw):
    # an undo records it first, so a rolled-back undo restores those files before reloading.
    reloads_files: bool = False

    def validate(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """``data`` restricted to this kind's fields, each checked; anything else refused."""
        out = {}
        for key, value in data.items():
            check = self.fields.get(key)
            if check is None or not check(value):
                raise JournalRefused(f"journal step {self.name}: refusing field {key}={value!r}")
            out[key] = value
        return out

    def restore(self, data: Mapping[str, Any], before: bytes) -> None:
        argv = self.restore_argv(data)
        fault.point(f"exec {argv[0]}")
        proc.run(argv, input=before, text=False)


_KINDS: dict[str, StepKind] = {}


def register(kind: StepKind) -> StepKind:
    _KINDS[kind.name] = kind
    return kind


def kind(name: Any) -> StepKind:
    """The registered kind ``name``; a journal naming anything else is refused, never run."""
    found = _KINDS.get(name) if isinstance(name, str) else None
    if found is None:
        raise JournalRefused(f"journal names an unknown step kind {name!r}; not acting on it",
                             hint="the state directory may have been tampered with; inspect "
                                  "it before removing the transaction")
    return found


def add_pre_undo_check(name: str, check: PreUndoCheck) -> None:
    """Run ``check(step, before, after)`` before undoing a ``name`` step; raise to refuse."""
    kind(name).pre_undo.append(check)


# -- iptables / ip6tables ------------------------------------------------------------------

BACKENDS = ("", "nft", "legacy")

#: Where a firewall change was made (firewall.undo refuses to undo it elsewhere).
WHERE_FIELDS: Mapping[str, Callable[[Any], bool]] = {
    "netns": lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
    "machine_id": lambda v: isinstance(v, str) and len(v) == 32
    and all(c in "0123456789abcdef" for c in v),
}


def _iptables(family: int) -> StepKind:
    def from_data(data: Mapping[str, Any], verb: str) -> str:
        from trustwall.firewall.iptables.live import tool

        return tool(family, verb, backend=str(data.get("backend", "")))

    return StepKind(
        name=f"iptables-v{family}",
        capture=lambda data: proc.run([from_data(data, "save")], text=False).stdout,
        restore_argv=lambda data: [from_data(data, "restore")],
        fields={"backend": lambda v: v in BACKENDS, **WHERE_FIELDS},
        pre_undo=[lambda step, before, after: _firewall_undo().before_undo(
            step, before, after)],
        post_restore=[lambda step, before: _firewall_undo().after_restore(step, before)],
    )


def _firewall_undo() -> Any:
    """firewall.undo, imported when an undo needs it (it imports the journal itself)."""
    from trustwall.firewall.change import undo

    return undo


IPTABLES_V4 = register(_iptables(4))
IPTABLES_V6 = register(_iptables(6))


# -- one native nftables table (nftables.conf owner) ------------------------------------------

NFT_FAMILIES = ("ip", "ip6", "inet", "arp", "bridge", "netdev")


def _nft_table_image(data: Mapping[str, Any]) -> bytes:
    """An ``nft -f`` script that makes the table exactly what it is now: create it (so the
    delete cannot fail), delete it, then its listing — one nft transaction, all or nothing.
    A table that does not exist gives just the create + delete (undo removes it)."""
    family, name = str(data["family"]), str(data["table"])
    listed = proc.run(["nft", "list", "table", family, name], check=False)
    body = listed.stdout if listed.returncode == 0 else ""
    return f"table {family} {name}\ndelete table {family} {name}\n{body}".encode()


def _nft_name(value: Any) -> bool:
    import re

    return isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value) is not None


NFT_TABLE = register(StepKind(
    name="nft-table",
    capture=_nft_table_image,
    restore_argv=lambda data: ["nft", "-f", "-"],
    # where the change was made (WHERE_FIELDS): undo refuses to load the table elsewhere
    fields={"family": lambda v: v in NFT_FAMILIES, "table": _nft_name, **WHERE_FIELDS},
    pre_undo=[lambda step, before, after: _firewall_undo().check_place(step)],
))


# -- firewalld (runtime and permanent zone settings, restored through firewall-cmd) --------

def _firewalld() -> Any:
    """The firewalld owner, imported when a firewalld step is captured or restored."""
    from trustwall.firewall.owners import firewalld

    return firewalld


FIREWALLD = register(StepKind(
    name="firewalld",
    capture=lambda data: _firewalld().capture(list(data["zones"])),
    restore_argv=lambda data: _firewalld().restore_argv(data),
    # where the change was made (WHERE_FIELDS): undo never acts on another namespace's or
    # host's firewalld (firewall-cmd talks to whichever firewalld this process's D-Bus reaches)
    fields={"zones": lambda v: _firewalld().valid_zones(v), **WHERE_FIELDS},
    pre_undo=[lambda step, before, after: _firewall_undo().check_place(step)],
))


# -- ufw -------------------------------------------------------------------------------------
# ufw's state is its files (/etc/ufw/user.rules, user6.rules: journaled as file steps AFTER
# this one) plus the chains it loads from them. This step is journaled first, so rollback and
# undo (newest step first) put the files back and THEN run ``ufw reload``; the before-image is
# ``ufw status numbered``, which must read the same afterwards. An undo's own transaction
# records it first too (reloads_files), so a rolled-back undo keeps that order.


def _ufw_status(data: Mapping[str, Any]) -> bytes:
    return proc.run(["ufw", "status", "numbered"], text=False).stdout


def _ufw_check_status(step: RecordStep, before: bytes) -> None:
    now = _ufw_status(step.data)
    if before and now != before:
        raise StoreError("after the undo `ufw status numbered` differs from before the change, "
                         "so the undo was rolled back")


UFW = register(StepKind(
    name="ufw",
    capture=_ufw_status,
    restore_argv=lambda data: ["ufw", "reload"],
    fields=dict(WHERE_FIELDS),
    # never reload another namespace's / host's ufw from this journal
    pre_undo=[lambda step, before, after: _firewall_undo().check_place(step)],
    post_restore=[_ufw_check_status],
    reloads_files=True,
))
