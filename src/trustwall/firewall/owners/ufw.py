"""ufw as the firewall's owner: read its state, plan a change as ufw commands, apply it safely.

ufw (0.36, Debian's) keeps its user rules in /etc/ufw/user.rules and user6.rules: each rule is a
``### tuple ### ACTION PROTO DPORT DST SPORT SRC [DAPP SAPP] DIRECTION[_IFACE] [comment=HEX]``
line followed by the ``-A ufw[6]-user-*`` lines it loads with iptables-restore. ``ufw reload``
and a boot (``ufw-init start``) rebuild every ufw chain from these files, so a raw iptables
rule is not the way to change such a host: the change must be a ufw command.

Python API (the CLI's ``fw allow|deny|reject|delete`` and Ansible call these)::

    state = read_state()                     # enabled?, defaults, user rules, status
    plan = plan(Request("allow", proto="tcp", dport="18745"), state)
    result = apply(plan, Options())          # journaled; ``trustwall undo`` reverses it

**Where the rule goes.** ufw evaluates its user rules first match wins. A rule whose match
is identical to an existing one is *updated in place* by ufw (``ufw allow 18745/tcp`` turns a
``deny 18745/tcp`` into an allow; ``ufw insert 1 allow 18745/tcp`` is skipped as "existing"),
so that is the plan then. Otherwise, when an earlier rule overlaps the request with another
action (a ``deny 18745/tcp`` before an ``allow from 198.18.200.2 … port 18745``), the plan is
``ufw insert N …`` with N that rule's number in ``ufw status numbered``; with nothing in the
way, ``ufw ACTION …`` appends.

**Prediction.** ufw itself says what it would write: ``ufw --dry-run COMMAND`` prints the
rules files it would save. The plan keeps those rule lists (``expected``), checks that the new
rule precedes every conflicting one, and builds the predicted iptables ruleset as the live one
with the ``ufw*-user-*`` chains replaced by the predicted ``-A`` lines; the effect is
:func:`trustwall.firewall.analysis.plan.diff` of the two (so it is honest: ufw's
``ufw-before-input`` drops INVALID packets before the user rules, and the effect shows only the
packets whose verdict really changes) and the lockout check traces the operator's flows on it.

**Apply** (:func:`apply`): one journal transaction records a ``ufw`` step (undo and rollback
run ``ufw reload`` after the files are back), the before-images of user.rules and user6.rules,
then runs the ufw commands (argv, never a shell) and reads ufw back: the user rules must be
exactly the predicted ones and ``ufw status numbered`` must list them, or the transaction
rolls back. Confirm-or-rollback and the lockout check are today's (change/apply.py).

**Temporary rules** (``--for``): ufw has no timeouts, so the rule carries trustwall's expiry
record in ufw's own rule comment (``tw:NAME expires=ISO``, plus ``was=deny`` when it replaced
a rule in place); :func:`expire` removes expired ones through ufw (``ufw delete …``, or the
update back to the replaced action) and ``fw expire`` calls it.

Every file value is hostile: each tuple field is validated, read values only ever become argv
words of ``ufw`` after validation, and files are opened without following symlinks.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from trustwall.errors import EXIT_PROBLEM, BadInput, LockoutRisk, ParseError, TrustwallError
from trustwall.firewall.owners.base import Command, OwnerPlan, Request

OWNER = "ufw"
USER_RULES = {4: "/etc/ufw/user.rules", 6: "/etc/ufw/user6.rules"}
UFW_CONF = "/etc/ufw/ufw.conf"
DEFAULTS = "/etc/default/ufw"
PREFIX = {4: "ufw", 6: "ufw6"}
MAX_FILE = 8 << 20  # a rules file larger than this is refused, not read

_ACTION_RE = re.compile(r"^(?P<route>route:)?(?P<action>allow|deny|reject|limit)"
                        r"(?:_(?P<log>log|log-all))?$")
_PROTOS = frozenset({"any", "tcp", "udp", "ipv6", "esp", "ah", "gre", "igmp", "vrrp"})
_PORT = r"\d{1,5}(?::\d{1,5})?"
_PORT_RE = re.compile(rf"^(?:any|{_PORT}(?:,{_PORT}){{0,14}})$")
_APP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9%._+ -]{0,63}$")
_IFACE_RE = re.compile(r"^[A-Za-z0-9_.:+@-]{1,15}$")
_DIRECTION_RE = re.compile(r"^(?P<dir>in|out|fwd)(?:_(?P<a>[^!\s]+)(?:!out_(?P<b>\S+))?)?$")
_HEX_RE = re.compile(r"^(?:[0-9a-f]{2}){0,256}$")
_DEFAULT_RE = re.compile(r'^(DEFAULT_(?:INPUT|OUTPUT|FORWARD|APPLICATION)_POLICY)="?'
                         r'(ACCEPT|DROP|REJECT|SKIP)"?\s*$')
_STATUS_RE = re.compile(r"^\[\s*(\d+)\]\s")
_REQ_ACTIONS = ("allow", "deny", "reject", "delete")
_TARGET = {"allow": "ACCEPT", "deny": "DROP", "reject": "REJECT", "limit": "ACCEPT"}


class UfwMismatch(TrustwallError):
    """After the ufw commands ufw held something other than the plan; rolled back."""

    exit_code = EXIT_PROBLEM


# -- state ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class UfwRule:
    """One ufw user rule, as its ``### tuple ###`` line says (every field validated)."""

    family: int
    action: str  # allow, deny, reject, limit
    proto: str
    dport: str
    dst: str
    sport: str
    src: str
    direction: str = "in"  # in, out, fwd
    iface_in: str = ""
    iface_out: str = ""
    route: bool = False
    log: str = ""
    dapp: str = ""
    sapp: str = ""
    comment: str = ""
    lines: tuple[str, ...] = ()  # its -A lines, as ufw wrote them

    def key(self) -> tuple[object, ...]:
        """What ufw compares to call two rules "the same" (action, log, comment excluded)."""
        return (self.family, self.route, self.proto, self.dport, self.dst, self.sport,
                self.src, self.dapp, self.sapp, self.direction, self.iface_in, self.iface_out)

    def words(self, *, this_family_only: bool = False) -> list[str]:
        """The rule as ufw command words (``deny from any to any port 18745 proto tcp``), for
        ``ufw delete`` and the update back; built from validated fields only. ``any`` stands
        for both families' copies; ``this_family_only`` names 0.0.0.0/0 or ::/0 instead."""
        out = (["route"] if self.route else []) + [self.action]
        if self.route:
            if self.iface_in:
                out += ["in", "on", self.iface_in]
            if self.iface_out:
                out += ["out", "on", self.iface_out]
        else:
            out.append(self.direction)
            if self.iface_in or self.iface_out:
                out += ["on", self.iface_in or self.iface_out]
        if self.log:
            out.append(self.log)
        if self.dapp or self.sapp:
            raise BadInput("ufw application-profile rules are not changed by trustwall",
                           hint="use `ufw delete` with the profile name")
        out += ["from", self.src if this_family_only and self.dst == self.src
                else _any(self.src)]
        if self.sport != "any":
            out += ["port", self.sport]
        out += ["to", _any(self.dst)]
        if self.dport != "any":
            out += ["port", self.dport]
        if self.proto != "any":
            out += ["proto", self.proto]
        return out

    def twin(self) -> UfwRule:
        """The other family's copy a both-families ufw rule has (meaningful only when its
        addresses are "any")."""
        other = 6 if self.family == 4 else 4
        anywhere = "::/0" if other == 6 else "0.0.0.0/0"
        return replace(self, family=other, src=anywhere, dst=anywhere, lines=())

    def to_json(self) -> dict[str, object]:
        return {"family": self.family, "action": self.action, "proto": self.proto,
                "dport": self.dport, "dst": self.dst, "sport": self.sport, "src": self.src,
                "direction": self.direction, "interface_in": self.iface_in,
                "interface_out": self.iface_out, "route": self.route, "log": self.log,
                "comment": self.comment}


def _any(address: str) -> str:
    return "any" if address in ("0.0.0.0/0", "::/0") else address


@dataclass(frozen=True)
class UfwState:
    """What ufw holds: ``enabled`` (ufw.conf), ``active`` (``ufw status``), the default
    policies, the user rules per family in file order, and ``ufw status numbered`` as text."""

    enabled: bool
    active: bool
    defaults: Mapping[str, str]
    rules: Mapping[int, tuple[UfwRule, ...]]
    status: str = ""
    numbered: tuple[str, ...] = ()

    def number(self, family: int, index: int) -> int:
        """``ufw status numbered``'s number of rule ``index`` (0-based) of ``family``: the
        IPv4 rules come first, then the IPv6 ones."""
        return index + 1 + (len(self.rules.get(4, ())) if family == 6 else 0)

    def to_json(self) -> dict[str, object]:
        return {"owner": OWNER, "enabled": self.enabled, "active": self.active,
                "defaults": dict(self.defaults),
                "rules": [r.to_json() for f in (4, 6) for r in self.rules.get(f, ())],
                "status": list(self.numbered)}


def _read(path: str) -> str:
    from trustwall.journal.atomic import read_nofollow

    data = read_nofollow(path)
    if len(data) > MAX_FILE:
        raise ParseError(f"{path}: larger than {MAX_FILE} bytes; not reading it")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError(f"{path}: not UTF-8 text") from None


def _address(text: str, family: int, where: str) -> str:
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError:
        raise ParseError(f"{where}: bad address {text!r}") from None
    if net.version != family:
        raise ParseError(f"{where}: IPv{net.version} address {text!r} in the IPv{family} rules")
    return text


def parse_tuple(line: str, family: int, where: str = "tuple") -> UfwRule:
    """One ``### tuple ###`` line (without its -A lines); any unexpected field is refused."""
    body = line.removeprefix("### tuple ###").strip()
    comment = ""
    if " comment=" in body:
        body, _, hexed = body.partition(" comment=")
        hexed = hexed.strip()
        if not _HEX_RE.match(hexed):
            raise ParseError(f"{where}: bad comment {hexed[:40]!r}")
        try:
            comment = bytes.fromhex(hexed).decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError(f"{where}: comment is not UTF-8") from None
        if not comment.isprintable():
            raise ParseError(f"{where}: comment holds control characters")
    words = body.split()
    if len(words) not in (7, 9):
        raise ParseError(f"{where}: a tuple has 7 or 9 fields, not {len(words)}")
    found = _ACTION_RE.match(words[0])
    if found is None:
        raise ParseError(f"{where}: bad action {words[0]!r}")
    proto, dport, dst, sport, src = words[1:6]
    if proto not in _PROTOS:
        raise ParseError(f"{where}: bad protocol {proto!r}")
    for port in (dport, sport):
        if not _PORT_RE.match(port) or any(
                not 0 < int(p) < 65536 for p in re.split(r"[,:]", port) if p != "any"):
            raise ParseError(f"{where}: bad port {port!r}")
    dapp = sapp = ""
    if len(words) == 9:
        dapp, sapp = ("" if w == "-" else w.replace("%20", " ") for w in words[6:8])
        for app in (dapp, sapp):
            if app and not _APP_RE.match(app):
                raise ParseError(f"{where}: bad application name {app!r}")
    direction = _DIRECTION_RE.match(words[-1])
    if direction is None:
        raise ParseError(f"{where}: bad direction {words[-1]!r}")
    iface_in = iface_out = ""
    first, second = direction["a"] or "", direction["b"] or ""
    if first.startswith("out_") or (direction["dir"] == "out" and first):
        iface_out = first.removeprefix("out_")
    elif first:
        iface_in = first.removeprefix("in_")
    iface_out = second or iface_out
    for iface in (iface_in, iface_out):
        if iface and not _IFACE_RE.match(iface):
            raise ParseError(f"{where}: bad interface {iface!r}")
    return UfwRule(family, found["action"], proto, dport, _address(dst, family, where), sport,
                   _address(src, family, where), direction["dir"], iface_in, iface_out,
                   bool(found["route"]), found["log"] or "", dapp, sapp, comment)


def parse_rules(text: str, family: int, source: str = "user.rules") -> tuple[UfwRule, ...]:
    """The user rules of a user.rules / user6.rules text (or ufw's dry-run print of one)."""
    rules: list[UfwRule] = []
    lines: list[str] = []
    inside = False
    chain_re = re.compile(rf"^-A {PREFIX[family]}-user-[a-z-]+ ")
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        where = f"{source} line {number}"
        if line == "### RULES ###":
            inside = True
        elif line == "### END RULES ###":
            inside = False
        elif not inside or not line:
            continue
        elif line.startswith("### tuple ###"):
            if rules:
                rules[-1] = replace(rules[-1], lines=tuple(lines))
            rules.append(parse_tuple(line, family, where))
            lines = []
        elif chain_re.match(line) and rules:
            lines.append(line)
        else:
            raise ParseError(f"{where}: unexpected line in ufw's rules: {line[:80]!r}")
    if rules:
        rules[-1] = replace(rules[-1], lines=tuple(lines))
    return tuple(rules)


def _ufw(*args: str, check: bool = True) -> str:
    from trustwall.proc import run

    return run(["ufw", *args], check=check, env=_ENV).stdout


_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def read_state() -> UfwState:
    """ufw's state on this host (files read without following symlinks, then ``ufw status
    numbered``, whose numbers must cover exactly the rules of the two files)."""
    conf = _read(UFW_CONF)
    enabled = any(line.strip() in ("ENABLED=yes", 'ENABLED="yes"') for line in conf.splitlines())
    defaults: dict[str, str] = {}
    for line in _read(DEFAULTS).splitlines():
        found = _DEFAULT_RE.match(line.strip())
        if found:
            defaults[found[1].removeprefix("DEFAULT_").removesuffix("_POLICY").lower()] = \
                found[2]
    rules = {f: parse_rules(_read(path), f, path) for f, path in USER_RULES.items()}
    status = _ufw("status", "numbered")
    active = status.startswith("Status: active")
    numbered = tuple(line.rstrip() for line in status.splitlines() if _STATUS_RE.match(line))
    if active and len(numbered) != sum(len(r) for r in rules.values()):
        raise ParseError(f"ufw status numbered lists {len(numbered)} rules, but "
                         f"{'/'.join(USER_RULES.values())} hold "
                         f"{sum(len(r) for r in rules.values())}: the files changed behind "
                         "ufw's back; run `ufw reload` first")
    return UfwState(enabled, active, defaults, rules, status, numbered)


def owns_host() -> bool:
    """Is ufw enabled here (ufw.conf ENABLED=yes)? Cheap: reads one file, runs nothing."""
    try:
        conf = _read(UFW_CONF)
    except (OSError, TrustwallError):
        return False
    return any(line.strip() in ("ENABLED=yes", 'ENABLED="yes"') for line in conf.splitlines())


# -- planning ------------------------------------------------------------------------------


@dataclass(frozen=True)
class UfwPlan(OwnerPlan):
    """An :class:`OwnerPlan` plus what apply needs to check ufw afterwards: the rule lists
    ufw's dry run predicted (``expected``) and the predicted iptables rulesets."""

    request: Request | None = None
    expected: Mapping[int, tuple[UfwRule, ...]] = field(default_factory=dict)
    targets: Mapping[int, Any] = field(default_factory=dict)  # family -> iptables Ruleset
    base: Mapping[int, tuple[UfwRule, ...]] = field(default_factory=dict)  # rules planned on

    def to_json(self) -> dict[str, object]:
        out = super().to_json()
        # the user rules ufw will hold, as `ufw status` orders them
        out["rules"] = [f"IPv{f} " + " ".join(r.words(this_family_only=True))
                        for f in (4, 6) for r in self.expected.get(f, ())]
        return out


def _check_port(value: str | None, what: str, proto: str | None) -> str | None:
    if value is None:
        return None
    if not _PORT_RE.match(value) or value == "any" or any(
            not 0 < int(p) < 65536 for p in re.split(r"[,:]", value)):
        raise BadInput(f"bad {what} {value!r}: a port, a range a:b or a list a,b")
    if proto not in ("tcp", "udp") and re.search(r"[,:]", value):
        raise BadInput(f"ufw needs -p tcp or -p udp for the port range/list {value!r}")
    return value


def _check_request(request: Request) -> int | None:
    """Validate ``request`` for ufw; return the address family its addresses imply."""
    if request.action not in _REQ_ACTIONS:
        raise BadInput(f"ufw owner: unknown action {request.action!r}")
    if request.proto is not None and request.proto not in _PROTOS - {"any"}:
        raise BadInput(f"ufw cannot match protocol {request.proto!r}")
    if (request.dport or request.sport) and request.proto not in (None, "tcp", "udp"):
        raise BadInput("ports need -p tcp or -p udp")
    _check_port(request.dport, "--dport", request.proto)
    _check_port(request.sport, "--sport", request.proto)
    if request.in_iface is not None and not _IFACE_RE.match(request.in_iface):
        raise BadInput(f"bad interface name {request.in_iface!r}")
    _refuse_iptables_details(request)
    if request.comment is not None and (not request.comment.isprintable()
                                        or len(request.comment) > 200):
        raise BadInput("a ufw rule comment is at most 200 printable characters")
    family = request.family
    for address in (request.src, request.dst):
        if address is None:
            continue
        try:
            version = ipaddress.ip_network(address, strict=False).version
        except ValueError:
            raise BadInput(f"bad address {address!r}") from None
        if family not in (None, version):
            raise BadInput(f"{address} is an IPv{version} address, but IPv{family} was asked")
        family = version
    if family not in (None, 4, 6):
        raise BadInput(f"bad family {family!r}")
    return family


def _refuse_iptables_details(request: Request) -> None:
    """iptables-shaped details (``--chain``, ``--table``, ``--state``, ``--out``,
    ``--reject-with``, a rule number) that a ufw rule cannot express are refused, never
    dropped silently. Read with getattr: older shapes of Request lack them."""
    chain = getattr(request, "chain", None)
    if chain not in (None, "INPUT", "ufw-user-input", "ufw6-user-input"):
        raise BadInput(f"ufw's user rules are for incoming traffic; chain {chain} is not one "
                       "trustwall changes through ufw", hint="see `ufw route --help` for "
                       "forwarded traffic")
    if getattr(request, "table", "filter") not in (None, "filter"):
        raise BadInput("ufw writes only the filter table")
    if getattr(request, "state", None) not in (None, "NEW"):
        raise BadInput("ufw rules match new connections; replies are ufw's before-rules' job")
    for name, what in (("out_iface", "an outgoing interface"),
                       ("reject_with", "a --reject-with type")):
        if getattr(request, name, None) is not None:
            raise BadInput(f"a ufw rule for incoming traffic cannot take {what}")
    if getattr(request, "rule_number", None) is not None:
        raise BadInput("on a ufw host, delete by the rule's fields, not an iptables rule "
                       "number (ufw renumbers its chains at every reload)",
                       hint="`ufw status numbered`, then `ufw delete NUM`")


def _request_words(request: Request, action: str, family: int | None,
                   comment: str | None) -> list[str]:
    """``ACTION [in on IF] from SRC [port P] to DST [port P] [proto P] [comment C]``."""
    words = [action]
    if request.in_iface:
        words += ["in", "on", request.in_iface]
    src = request.src or {None: "any", 4: "0.0.0.0/0", 6: "::/0"}[
        family if request.dst is None else None]
    words += ["from", src]
    if request.sport:
        words += ["port", request.sport]
    words += ["to", request.dst or "any"]
    if request.dport:
        words += ["port", request.dport]
    if request.proto:
        words += ["proto", request.proto]
    if comment:
        words += ["comment", comment]
    return words


def _ports(text: str) -> list[tuple[int, int]]:
    if text == "any":
        return [(0, 65535)]
    out = []
    for item in text.split(","):
        low, _, high = item.partition(":")
        out.append((int(low), int(high or low)))
    return out


def _ports_meet(a: str, b: str) -> bool:
    return any(lo1 <= hi2 and lo2 <= hi1 for lo1, hi1 in _ports(a) for lo2, hi2 in _ports(b))


def _nets_meet(a: str, b: str) -> bool:
    return ipaddress.ip_network(a).overlaps(ipaddress.ip_network(b))  # type: ignore[arg-type]


def overlaps(a: UfwRule, b: UfwRule) -> bool:
    """Can one packet match both rules? (Same family, direction and kind; interfaces, protocols,
    ports and addresses intersect.)"""
    if (a.family, a.route, a.direction) != (b.family, b.route, b.direction):
        return False
    for x, y in ((a.iface_in, b.iface_in), (a.iface_out, b.iface_out)):
        if x and y and x != y:
            return False
    if "any" not in (a.proto, b.proto) and a.proto != b.proto:
        return False
    return (_ports_meet(a.dport, b.dport) and _ports_meet(a.sport, b.sport)
            and _nets_meet(a.src, b.src) and _nets_meet(a.dst, b.dst))


def _dry_run(words: Sequence[str]) -> dict[int, tuple[UfwRule, ...]]:
    """The rule lists ufw would write for ``ufw words`` (``ufw --dry-run``): the families it
    prints; one it leaves out is unchanged. A refusal by ufw is the user's one-line error."""
    from trustwall.proc import CommandFailed

    try:
        out = _ufw("--dry-run", *words)
    except CommandFailed as exc:
        detail = (exc.stderr or exc.stdout or "").strip().splitlines()
        raise BadInput(f"ufw refuses `ufw {' '.join(words)}`: "
                       f"{detail[-1] if detail else exc}") from None
    result: dict[int, tuple[UfwRule, ...]] = {}
    for section in re.split(r"(?m)^\*filter\s*$", out)[1:]:
        body = section.split("\nCOMMIT", 1)[0]
        family = 6 if re.search(r"(?m)^:ufw6-user-input ", body) else 4
        result[family] = parse_rules(body, family, "ufw --dry-run")
    return result


def _added(before: Sequence[UfwRule], after: Sequence[UfwRule]) -> list[UfwRule]:
    return [r for r in after if r not in before]


def _index(rules: Sequence[UfwRule], wanted: UfwRule) -> int:
    """Where ``wanted`` (as ufw's dry run printed it) stands in ``rules`` (as read)."""
    return next(i for i, r in enumerate(rules)
                if r.key() == wanted.key() and r.action == wanted.action)


def _in_the_way(predicted: Sequence[UfwRule], new: UfwRule) -> UfwRule | None:
    """A rule ahead of ``new`` in ``predicted`` that overlaps it with another action."""
    for rule in predicted:
        if rule == new:
            return None
        if rule.action != new.action and overlaps(rule, new):
            return rule
    return None


def plan(request: Request, state: UfwState | None = None, *,
         now: _dt.datetime | None = None) -> UfwPlan:
    """The ufw command for ``request`` on this host, its predicted result and effect."""
    state = state or read_state()
    family = _check_request(request)
    if request.action == "delete":
        return _plan_delete(request, state, family)
    comment = _temporary_comment(request, state, family, now)
    words = _request_words(request, request.action, family, comment)
    predicted = _dry_run(words)
    notes: list[str] = []
    new_rules = {f: _added(state.rules.get(f, ()), rules) for f, rules in predicted.items()}
    new_rules = {f: r for f, r in new_rules.items() if r}
    if not new_rules:
        return _finish(request, state, (), {}, ["already in place: ufw holds this rule"])
    # A conflicting rule ahead of the appended one: insert before the first such rule.
    blocking = {f: _in_the_way(predicted[f], r[0]) for f, r in new_rules.items()}
    if any(blocking.values()):
        position = min(state.number(f, _index(state.rules[f], b))
                       for f, b in blocking.items() if b is not None)
        words = ["insert", str(position), *words]
        predicted = _dry_run(words)
        new_rules = {f: _added(state.rules.get(f, ()), rules) for f, rules in predicted.items()}
        still = [f"IPv{f}: {' '.join(b.words())}" for f, r in new_rules.items() if r
                 for b in [_in_the_way(predicted[f], r[0])] if b is not None]
        if still:
            return _refused(request, f"ufw would place the rule after a conflicting rule "
                            f"({'; '.join(still)}), so it would not take effect",
                            "reorder by hand: ufw delete NUM, then ufw insert NUM …")
        notes.append(f"inserted as rule {position}, before the conflicting "
                     + ", ".join(" ".join(b.words()) for b in blocking.values() if b))
    for f, rules in new_rules.items():
        replaced = [r for r in state.rules.get(f, ()) if r.key() == rules[0].key()
                    and r not in predicted[f]]
        if replaced:
            notes.append(f"IPv{f}: ufw updates `{' '.join(replaced[0].words())}` "
                         f"(rule {state.number(f, _index(state.rules[f], replaced[0]))}) in "
                         "place: same match, so ufw keeps one rule")
    expected = {f: predicted.get(f, state.rules.get(f, ())) for f in (4, 6)}
    return _finish(request, state, (Command(("ufw", *words), runtime=True, permanent=True),),
                   expected, notes)


def _plan_delete(request: Request, state: UfwState, family: int | None) -> UfwPlan:
    """Remove what an allow/deny/reject of the same fields added: ``ufw delete ACTION …``
    (one command removes both families' copies of a rule)."""
    keys: set[tuple[object, ...]] = set()
    for action in ("allow", "deny"):  # one of the two differs from any existing rule
        probe = _dry_run(_request_words(request, action, family, None))
        keys = {r.key() for f, rules in probe.items()
                for r in _added(state.rules.get(f, ()), rules)}
        if keys:
            break
    removes = getattr(request, "removes", None)
    matches = [r for f in (4, 6) for r in state.rules.get(f, ()) if r.key() in keys
               and removes in (None, r.action)]
    if not matches:
        return _finish(request, state, (), {}, ["nothing to delete: no ufw rule matches"])
    commands, seen = [], set()
    for rule in matches:
        words = ("delete", *_words(rule, state, family))
        if words not in seen:
            seen.add(words)
            commands.append(words)
    expected: dict[int, tuple[UfwRule, ...]] = {}
    if len(commands) == 1:
        predicted = _dry_run(commands[0])
        expected = {f: predicted.get(f, state.rules.get(f, ())) for f in (4, 6)}
    else:  # one dry run per command cannot chain; expected = the rules minus the matches
        expected = {f: tuple(r for r in state.rules.get(f, ()) if r not in matches)
                    for f in (4, 6)}
    return _finish(request, state, tuple(Command(("ufw", *w), permanent=True)
                                         for w in commands), expected, [])


def _words(rule: UfwRule, state: UfwState, family: int | None) -> list[str]:
    """``rule``'s words for a command that must touch only it: family-explicit addresses when
    a family was asked for, or when the other family holds no twin of the rule."""
    if rule.src not in ("0.0.0.0/0", "::/0") or rule.dst != rule.src:
        return rule.words()  # a real address: one family anyway
    twin = rule.twin()
    has_twin = any(r.key() == twin.key() and r.action == rule.action
                   for r in state.rules.get(twin.family, ()))
    return rule.words(this_family_only=family is not None or not has_twin)


def _temporary_comment(request: Request, state: UfwState, family: int | None,
                       now: _dt.datetime | None) -> str | None:
    """``tw:NAME expires=ISO [was=ACTION]`` for ``--for``, else the user's comment."""
    if request.duration is None:
        return request.comment
    from trustwall.firewall.change.quick import derived_name, rule_tag

    if request.duration <= 0:
        raise BadInput("--for needs a positive duration")
    now = now or _dt.datetime.now(_dt.timezone.utc)
    name = request.name or derived_name(_TARGET.get(request.action, request.action).upper(),
                                        proto=request.proto, dport=request.dport,
                                        sport=request.sport, src=request.src)
    tag = rule_tag(name, now + _dt.timedelta(seconds=request.duration))
    assert tag is not None
    # A rule with the same match is updated in place by ufw: expiry must put it back.
    probe = _dry_run(_request_words(request, request.action, family, None))
    old = [r for f, rules in probe.items() for new in _added(state.rules.get(f, ()), rules)
           for r in state.rules.get(f, ()) if r.key() == new.key()]
    if old:
        tag += f" was={old[0].action}"
    return tag


def _refused(request: Request, why: str, next_: str) -> UfwPlan:
    return UfwPlan(OWNER, (), True, refused=why, next=next_, request=request)


def _finish(request: Request, state: UfwState, commands: tuple[Command, ...],
            expected: Mapping[int, tuple[UfwRule, ...]], notes: list[str]) -> UfwPlan:
    effect: list[str] = []
    targets: dict[int, Any] = {}
    if commands and not state.active:
        notes.append("ufw is inactive: the rule is stored and takes effect at `ufw enable`")
    elif commands:
        targets, effect, more_notes = _predict(state, expected)
        notes.extend(more_notes)
    if request.duration is not None and commands:
        notes.append("ufw has no timeouts: the rule's comment carries trustwall's expiry "
                     "record and `trustwall fw expire` removes it through ufw")
    return UfwPlan(OWNER, commands, True, tuple(effect), notes=tuple(notes), request=request,
                   expected=dict(expected), targets=targets,
                   base={f: state.rules.get(f, ()) for f in (4, 6)})


def _predict(state: UfwState, expected: Mapping[int, tuple[UfwRule, ...]]
             ) -> tuple[dict[int, Any], list[str], list[str]]:
    """The predicted iptables ruleset per changed family (live, with ufw's user chains holding
    the predicted -A lines), the effect lines and notes (INVALID packets)."""
    from trustwall.firewall.analysis.plan import diff
    from trustwall.firewall.iptables.live import read_live

    targets: dict[int, Any] = {}
    effect: list[str] = []
    notes: list[str] = []
    for family in (4, 6):
        if tuple(expected.get(family, ())) == tuple(state.rules.get(family, ())):
            continue
        live = read_live(family=family)
        target = predicted_ruleset(live, expected[family], family)
        targets[family] = target
        found = diff(live, target, tables=("filter",))
        effect += [f"IPv{family} {h.table} {h.hook}: {c}" for h in found.hooks
                   for c in h.changes]
        if not found.different:
            effect.append(f"IPv{family}: no packet changes verdict")
        if _drops_invalid(target, family):
            notes.append(f"IPv{family}: packets in state INVALID stay dropped "
                         f"({PREFIX[family]}-before-input drops them before the user rules)")
    return targets, effect, notes


def predicted_ruleset(live: Any, rules: Sequence[UfwRule], family: int) -> Any:
    """``live`` (an iptables Ruleset) with every ``ufw*-user-*`` chain holding what ``rules``
    load, as ufw's reload would leave it."""
    from trustwall.firewall.iptables.parse import parse_rule_spec, tokenize

    by_chain: dict[str, list[Any]] = {}
    for rule in rules:
        for line in rule.lines:
            words = tokenize(line)
            by_chain.setdefault(words[1], []).append(
                parse_rule_spec(words[2:], chain=words[1], family=family))
    table = live.table("filter")
    if table is None:
        return live
    user = re.compile(rf"^{PREFIX[family]}-user-(input|output|forward)$")
    chains = tuple(replace(c, rules=tuple(by_chain.get(c.name, ())))
                   if user.match(c.name) else c for c in table.chains)
    return replace(live, tables=tuple(replace(t, chains=chains) if t.name == "filter" else t
                                      for t in live.tables))


def _drops_invalid(ruleset: Any, family: int) -> bool:
    from trustwall.firewall.semantics.routing import from_args
    from trustwall.firewall.semantics.trace import Packet, Tracer

    src, dst = ("192.0.2.1", "192.0.2.2") if family == 4 else ("2001:db8::1", "2001:db8::2")
    result = Tracer(ruleset, from_args([dst])).trace(
        Packet(src=src, dst=dst, proto="tcp", sport=40000, dport=18745, in_iface="tw-any0",
               state="INVALID"),
        with_path=False)
    return result.verdict == "DROP" and result.certain


# -- applying ------------------------------------------------------------------------------


@dataclass(frozen=True)
class UfwResult:
    plan: UfwPlan
    applied: bool
    txn_id: str | None = None
    confirm_deadline: str | None = None
    status: str = ""  # ``ufw status numbered`` afterwards
    kept_flows: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {**self.plan.to_json(), "applied": self.applied, "txn": self.txn_id,
                "confirm_deadline": self.confirm_deadline, "status": self.status.splitlines(),
                "kept_flows": list(self.kept_flows), "warnings": list(self.warnings)}


def apply(plan_: UfwPlan, options: Any = None) -> UfwResult:
    """Run ``plan_``'s ufw commands through the journal (see the module doc). ``options`` is
    :class:`trustwall.firewall.change.apply.Options` (dry_run, force, keep, confirm_within,
    root/state_dir, environ, session); ``persist`` does not apply: ufw always persists."""
    from trustwall.firewall.change import apply as fwapply
    from trustwall.firewall.change.undo import where
    from trustwall.journal.transaction import Transaction, state_dir_for

    options = options or fwapply.Options()
    if plan_.refused:
        raise BadInput(f"refused: {plan_.refused}", hint=plan_.next)
    session = fwapply._session(options)
    flows = fwapply._flows(options, session)
    kept = tuple(str(f) for f in flows)
    if not plan_.commands:
        return UfwResult(plan_, applied=False, kept_flows=kept)
    warnings: list[str] = []
    problems = [p for target in plan_.targets.values()
                for p in fwapply.check_lockout(target, flows)]
    if problems:
        if not options.force:
            raise LockoutRisk("refusing: " + "; ".join(problems),
                              hint="change the request, or --force with --confirm-within N")
        warnings.extend(f"forced despite lockout risk: {p}" for p in problems)
    confirm = fwapply._confirm_seconds(options, session)
    if session.unknown and confirm is None:
        if not options.force:
            raise LockoutRisk("refusing: this runs in an SSH session whose connection cannot "
                              "be found (so the lockout check cannot protect it)",
                              hint="add --confirm-within SECONDS, --keep FLOW, or --force")
        warnings.append("forced although the SSH session's connection could not be found")
    if options.dry_run:
        return UfwResult(plan_, applied=False, kept_flows=kept, warnings=tuple(warnings))
    current = read_state()
    if plan_.base and {f: current.rules.get(f, ()) for f in (4, 6)} != dict(plan_.base):
        raise BadInput("ufw's rules changed since this plan was made; plan again")
    state_status = current.status.encode()
    description = "ufw: " + "; ".join(c.text for c in plan_.commands)
    if plan_.effect:
        description += "\n" + "; ".join(str(e) for e in plan_.effect)
    deadline = None
    with Transaction("fw-ufw", description[:2000], root=options.root,
                     state_dir=options.state_dir) as txn:
        if confirm is not None:
            # Armed before anything changes (change/apply.py): the watcher undoes this
            # transaction unless `fw confirm` comes from a new connection in time. ufw
            # persists by itself: the watcher must not write iptables boot files.
            deadline = fwapply._arm_rollback(txn.id, confirm, replace(options, persist=False),
                                             [], session)
        try:
            # Journaled first, so undo/rollback reloads ufw after the files are back.
            txn.record("ufw", state_status, label="ufw reload", data=where())
            for path in USER_RULES.values():
                txn.snapshot(path)
            for command in plan_.commands:
                txn.run(list(command.argv), env=_ENV)
            after = read_state()
            differences = _differences(plan_.expected, after) + _kernel_differences(plan_)
            if differences:
                raise UfwMismatch("after the ufw commands ufw holds something other than the "
                                  "plan, so the change was rolled back: "
                                  + "; ".join(differences))
        except BaseException:
            (state_dir_for(options.root, options.state_dir) / fwapply.PENDING).unlink(
                missing_ok=True)
            raise
    return UfwResult(plan_, applied=True, txn_id=txn.id, confirm_deadline=deadline,
                     status=after.status, kept_flows=kept, warnings=tuple(warnings))


def _differences(expected: Mapping[int, tuple[UfwRule, ...]], after: UfwState) -> list[str]:
    out = []
    for family in (4, 6):
        want = tuple(expected.get(family, ()))
        held = tuple(after.rules.get(family, ()))
        if want != held:
            out.append(f"IPv{family} user rules: planned "
                       f"{[' '.join(r.words()) for r in want]}, ufw holds "
                       f"{[' '.join(r.words()) for r in held]}")
    if after.active and len(after.numbered) != sum(len(r) for r in after.rules.values()):
        out.append("ufw status numbered does not list every rule")
    return out


def _kernel_differences(plan_: UfwPlan) -> list[str]:
    """``ufw status`` reads ufw's files; the kernel must hold the predicted user chains too."""
    from trustwall.firewall.change.apply import ruleset_differences
    from trustwall.firewall.iptables.live import read_live

    out = []
    for family, target in plan_.targets.items():
        user = re.compile(rf"^{PREFIX[family]}-user-(input|output|forward)$")
        live = read_live(family=family)
        for chain in target.table("filter").chains if target.table("filter") else ():
            if not user.match(chain.name):
                continue
            held = live.chain("filter", chain.name)
            if held is None or held.rules != chain.rules:
                out += [f"IPv{family} kernel: {line}" for line in ruleset_differences(
                    predicted_ruleset(live, plan_.expected[family], family), live)] or [
                    f"IPv{family} kernel: {chain.name} differs from the plan"]
                break
    return out


# -- expiry --------------------------------------------------------------------------------


def expired_rules(state: UfwState, now: _dt.datetime) -> list[UfwRule]:
    """Rules whose trustwall comment says they expired (``tw:NAME expires=ISO``)."""
    from trustwall.firewall.change.policy import COMMENT_PREFIX, parse_time

    out = []
    for family in (4, 6):
        for rule in state.rules.get(family, ()):
            if not rule.comment.startswith(COMMENT_PREFIX):
                continue
            found = re.search(r"\bexpires=(\S+)", rule.comment)
            try:
                when = parse_time(found.group(1)) if found else None
            except ValueError:
                continue
            if when is not None and when <= now:
                out.append(rule)
    return out


def expire(*, now: _dt.datetime | None = None, options: Any = None
           ) -> tuple[list[UfwResult], list[str]]:
    """Remove expired temporary ufw rules through ufw (``ufw delete …``, or the update back to
    the action the rule replaced: ``was=deny``), journaled like any apply; unattended (no
    confirm window, no operator session)."""
    from trustwall.firewall.change.apply import Options

    now = now or _dt.datetime.now(_dt.timezone.utc)
    options = replace(options or Options(), confirm_within=0, environ={}, session=False)
    results, removed, done = [], [], set()
    while True:
        state = read_state()
        pending = [r for r in expired_rules(state, now) if r.key() not in done]
        if not pending:
            return results, removed
        rule = pending[0]
        done.add(rule.key())
        was = re.search(r"\bwas=(allow|deny|reject|limit)\b", rule.comment)
        spec = _words(rule, state, None)
        words = [was[1], *spec[1:]] if was else ["delete", *spec]
        predicted = _dry_run(words)
        expected = {f: predicted.get(f, state.rules.get(f, ())) for f in (4, 6)}
        p = _finish(Request("delete"), state, (Command(("ufw", *words), permanent=True),),
                    expected, [])
        results.append(apply(p, options))
        removed.append(f"ufw {' '.join(words)} ({rule.comment})")

