"""What a string field may hold before trustwall hands it to the kernel: the one place that says.

iptables-save prints chain and interface names raw and comments quoted only when needed, and
iptables-restore splits lines on ``\\n`` and words on space/tab; a field holding a newline, a
quote or a control character therefore changes what the kernel gets (``--comment $'x"\\n-A INPUT
-j ACCEPT'`` adds a rule) or cannot be read back. Every entry point that builds rules from
user text — ``fw allow|deny|reject`` (plan.build_rule), a policy's rules, user chains and
``unmanaged:`` chains (policy), and every apply (apply.apply_rulesets, for the rules and chains
it adds) — validates here. Rules read from the kernel are kept as they are (see
:func:`check_added`): trustwall reads them faithfully or refuses with a clear error.
"""

from __future__ import annotations

from trustwall.errors import BadInput
from trustwall.firewall.iptables.model import MAX_CHAIN_NAME, MAX_IFACE_NAME, Rule, Ruleset

#: XT_MAX_COMMENT_LEN is 256 bytes including the NUL: the kernel keeps 255 and silently cuts
#: a longer comment (checked on 1.8.9/nft), which trustwall could then not find again.
MAX_COMMENT_BYTES = 255
#: Characters iptables-save prints raw in a chain or interface name that iptables-restore
#: would read differently (quotes and backslash open or escape a quoted word).
_RESTORE_SPECIAL = frozenset("\"'\\")


class FieldError(BadInput):
    """A name, interface or comment the kernel would not get (or give back) as written."""


def _show(value: str) -> str:
    """The value as a repr, so a control character in it is visible and harmless to print."""
    return ascii(value)


def _control(value: str) -> str | None:
    """The first character that is not printable (control, separator, surrogate, …)."""
    for char in value:
        if not char.isprintable() or char in "\t\n\r":
            return char
    return None


def chain_name(name: str, *, what: str = "chain name") -> str:
    """A chain name iptables accepts and iptables-save prints back unchanged: 1 to 28 printable
    ASCII characters, no whitespace, quote or backslash, not starting with ``-`` or ``!``."""
    if not name:
        raise FieldError(f"empty {what}")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_CHAIN_NAME:
        raise FieldError(f"{what} {_show(name)} is too long (at most {MAX_CHAIN_NAME} "
                         "characters)")
    bad = next((c for c in name if not ("!" <= c <= "~") or c in _RESTORE_SPECIAL), None)
    if bad is not None:
        raise FieldError(f"{what} {_show(name)} holds {_show(bad)}: use printable ASCII "
                         "without spaces, quotes or backslashes")
    if name[0] in "-!":
        raise FieldError(f"{what} {_show(name)} may not start with {name[0]!r}")
    return name


def interface(name: str, *, what: str = "interface name") -> str:
    """An interface name as the kernel accepts it (dev_valid_name: under IFNAMSIZ, no ``/``,
    ``:`` or whitespace, not ``.``/``..``), in printable ASCII that iptables-save prints back
    unchanged; ``+`` only at the end, where it is iptables' prefix wildcard."""
    if not name:
        raise FieldError(f"empty {what}")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_IFACE_NAME:
        raise FieldError(f"{what} {_show(name)} is too long (at most {MAX_IFACE_NAME} "
                         "characters)")
    bad = next((c for c in name if not ("!" <= c <= "~") or c in _RESTORE_SPECIAL
                or c in "/:"), None)
    if bad is not None:
        raise FieldError(f"{what} {_show(name)} holds {_show(bad)}, which the kernel does not "
                         "allow in an interface name (or iptables-save cannot print back)")
    if "+" in name[:-1]:
        raise FieldError(f"{what} {_show(name)}: '+' is only allowed at the end (wildcard)")
    if name in (".", "..") or name[0] == "!":
        raise FieldError(f"{what} {_show(name)} is not a valid interface name")
    return name


def comment(text: str) -> str:
    """A rule comment: printable characters (spaces allowed; no control characters), at most
    255 bytes of UTF-8."""
    bad = _control(text)
    if bad is not None:
        raise FieldError(f"comment {_show(text)} holds {_show(bad)}: comments must be printable "
                         "text on one line")
    size = len(text.encode("utf-8"))
    if size > MAX_COMMENT_BYTES:
        raise FieldError(f"comment is {size} bytes; the kernel keeps at most "
                         f"{MAX_COMMENT_BYTES} (it would cut it silently)")
    return text


def option_value(value: str, *, option: str) -> str:
    """Any other match or target argument: no control characters (iptables-save would print
    them raw and break the line)."""
    bad = _control(value)
    if bad is not None:
        raise FieldError(f"--{option} value {_show(value)} holds {_show(bad)}")
    return value


def check_rule(rule: Rule) -> None:
    """Every string field of a rule built from user text (see the module docstring)."""
    chain_name(rule.chain)
    for iface, flag in ((rule.in_interface, "-i"), (rule.out_interface, "-o")):
        if iface is not None:
            interface(iface.name, what=f"{flag} interface")
    for match in rule.matches:
        for opt in match.options:
            for value in opt.values:
                if match.module == "comment" and opt.name == "comment":
                    comment(value)
                else:
                    option_value(value, option=opt.name)
    if rule.target is not None:
        chain_name(rule.target.name, what="target")
        for opt in rule.target.options:
            for value in opt.values:
                option_value(value, option=opt.name)


def check_added(target: Ruleset, live: Ruleset | None) -> None:
    """Validate what ``target`` adds to ``live``: chains it creates and rules not already
    there. Rules and chains the kernel already holds pass unchanged — they are read back
    faithfully or refused by the reader — so an odd rule someone else wrote by hand does not
    block an unrelated change."""
    for table in target.tables:
        old = live.table(table.name) if live is not None else None
        for chain in table.chains:
            old_chain = old.chain(chain.name) if old is not None else None
            if old_chain is None:
                chain_name(chain.name)
            known = set(old_chain.rules) if old_chain is not None else set()
            for rule in chain.rules:
                if rule not in known:
                    check_rule(rule)
