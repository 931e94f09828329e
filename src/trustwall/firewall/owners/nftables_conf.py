"""The plain-nftables owner: nftables.service loads /etc/nftables.conf (RHEL:
/etc/sysconfig/nftables.conf) and its includes at boot, so a change is made twice, in one
journaled transaction: the rule inserted into the live table, and the same statement appended
to that file, so that the boot (``nft -f /etc/nftables.conf``) rebuilds it.

The statement is the same text in both places (``insert rule inet filter input index 2 tcp
dport 18745 accept comment "tw:…"``), applied live with ``nft -f -`` and appended to the end
of the file, after every table and include the file loads, inside a marked block. Before
anything changes the new file is checked with ``nft -c`` (the kernel's own parser, no commit).
Undo restores the table's before-image (``nft-table`` journal step) and the file's bytes.

What the rule says and where it goes is a narrow interface, :class:`NftRule` from
:func:`place`: today a small renderer (protocol, ports, addresses, input interface, verdict)
placed at the top of the first filter-input base chain of a table the file declares. The
nftables frontend (firewall/nftables/) replaces both with the IR planner's placement (the
latest position that decides all the packets, across every base chain of the hook) — see the
notes each plan carries.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustwall.errors import BadInput, LockoutRisk, ProblemFound
from trustwall.firewall.owners import detect
from trustwall.firewall.owners.base import Command, OwnerPlan, Request

MARK = "# trustwall:"
_VERDICTS = {"allow": "accept", "deny": "drop", "reject": "reject"}
_SAFE_WORD = re.compile(r"^[A-Za-z0-9_.:/,+*-]+$")


@dataclass(frozen=True)
class NftRule:
    """One rule in a native nft table: where (family, table, chain, ``index`` = insert before
    the rule at that 0-based position; None = append) and its statement ``text``."""

    family: str
    table: str
    chain: str
    index: int | None
    text: str

    @property
    def statement(self) -> str:
        """The nft command, as the live change and the file both carry it."""
        if self.index is None:
            return f"add rule {self.family} {self.table} {self.chain} {self.text}"
        where = f" index {self.index}" if self.index else ""
        return f"insert rule {self.family} {self.table} {self.chain}{where} {self.text}"


@dataclass(frozen=True)
class State:
    """What the plan reads: the conf file, its declared tables and the live ruleset (nft -j)."""

    conf: Path
    declared: tuple[tuple[str, str], ...]
    ruleset: dict[str, Any]


def _word(value: str, what: str) -> str:
    if not _SAFE_WORD.match(value):
        raise BadInput(f"{what} {value!r}: not something nft can take here")
    return value


def rule_text(request: Request, family: str) -> str:
    """The statement for ``request`` (the interim renderer; see the module docstring)."""
    parts: list[str] = []
    if request.in_iface:
        parts.append(f'iifname "{_word(request.in_iface, "--in")}"')
    ip = {"ip": "ip", "ip6": "ip6"}.get(family)
    for flag, value in (("saddr", request.src), ("daddr", request.dst)):
        if value:
            value = _word(value, f"--{flag}")
            fam = ip or ("ip6" if ":" in value else "ip")
            parts.append(f"{fam} {flag} {value}")
    if request.proto and (request.dport or request.sport):
        proto = _word(request.proto, "--proto")
        for flag, value in (("sport", request.sport), ("dport", request.dport)):
            if value:
                value = _word(value, f"--{flag}").replace(":", "-")
                if "," in value:
                    value = "{ " + ", ".join(value.split(",")) + " }"
                parts.append(f"{proto} {flag} {value}")
    elif request.proto:
        parts.append(f"meta l4proto {_word(request.proto, '--proto')}")
    action = request.removes or "allow" if request.action == "delete" else request.action
    if action == "allow" and not request.state:
        # As the iptables planner does: opening a port never opens INVALID-state packets.
        parts.append("ct state != invalid")
    elif request.state:
        parts.append("ct state { " + ", ".join(_word(s.lower(), "--state")
                                               for s in request.state.split(",")) + " }")
    parts.append(_VERDICTS[action])
    tag = request.comment or (f"tw:{request.name}" if request.name else None)
    if tag:
        if '"' in tag or "\\" in tag or "\n" in tag:
            raise BadInput("an nft comment cannot hold quotes, backslashes or newlines")
        parts.append(f'comment "{tag}"')
    return " ".join(parts)


def read_state(root: str = "/") -> State:
    from trustwall.proc import run

    conf = detect.nftables_conf(root)
    if conf is None:
        raise ProblemFound("no nftables.conf on this host: nothing for nftables.service to "
                           "load at boot")
    declared = detect.declared_tables(detect.conf_files(conf, root))
    listed = run(["nft", "-j", "list", "ruleset"], timeout=60)
    return State(conf, declared, json.loads(listed.stdout or "{}"))


def _base_chains(state: State) -> list[dict[str, Any]]:
    return [item["chain"] for item in state.ruleset.get("nftables", [])
            if isinstance(item, dict) and "chain" in item and item["chain"].get("hook")]


def _rules(state: State, family: str, table: str, chain: str) -> list[dict[str, Any]]:
    return [item["rule"] for item in state.ruleset.get("nftables", [])
            if isinstance(item, dict) and "rule" in item
            and (item["rule"]["family"], item["rule"]["table"], item["rule"]["chain"])
            == (family, table, chain)]


def place(request: Request, state: State) -> NftRule:
    """Where the rule goes: the first filter-type input base chain of a table the conf file
    declares, at the top (interim: every packet the rule describes is decided by it in that
    chain; the IR planner will give the latest such position)."""
    hook = "input" if (request.chain or "INPUT").upper() == "INPUT" else \
        (request.chain or "").lower()
    for chain in _base_chains(state):
        if (chain["family"], chain["table"]) in state.declared and chain.get("hook") == hook \
                and chain.get("type", "filter") == "filter":
            return NftRule(chain["family"], chain["table"], chain["name"], 0,
                           rule_text(request, chain["family"]))
    raise ProblemFound(f"no {hook} base chain in the tables {state.conf} declares",
                       hint=f"add one to {state.conf}, or make the change with nft")


def plan(request: Request, state: State | None = None) -> OwnerPlan:
    """The plan: the live statement and the file line (a delete: the live rule's removal by
    handle and the file's trustwall line removed)."""
    state = state or read_state()
    if request.table != "filter" or request.out_iface or request.reject_with:
        raise BadInput("the nftables owner takes filter-input rules by protocol, ports, "
                       "addresses and input interface (--out/--reject-with/--table: use nft)")
    if request.duration:
        raise BadInput("--for is not supported on an nftables.conf host yet")
    if request.action == "delete":
        return _plan_delete(request, state)
    rule = place(request, state)
    return OwnerPlan(
        "nftables", (Command(("nft", *rule.statement.split(" ", 5)), runtime=True,
                             permanent=False),),
        persistent=True,
        effect=(f"{rule.family} {rule.table} {rule.chain}: packets matching "
                f"`{_core(rule.text)}` → {_verdict(rule)}",),
        notes=(f"the same statement is appended to {state.conf} (atomic, journaled): "
               f"`nft -f {state.conf}` at boot rebuilds it",
               "placement: top of the chain (the IR planner's position and the check across "
               "every base chain of the hook come with the nftables frontend)"),
        writes=(str(state.conf),), detail=(rule, state))


def _verdict(rule: NftRule) -> str:
    words = rule.text.split(" comment ")[0].split()
    return words[-1]


def _plan_delete(request: Request, state: State) -> OwnerPlan:
    wanted = rule_text(request, "inet")
    matches = []
    for chain in _base_chains(state):
        if (chain["family"], chain["table"]) not in state.declared:
            continue
        text = rule_text(request, chain["family"]) if chain["family"] != "inet" else wanted
        for rule in _listed(chain["family"], chain["table"], chain["name"]):
            if _same(rule[1], text):
                matches.append((chain["family"], chain["table"], chain["name"], rule[0],
                                rule[1]))
    if not matches:
        raise ProblemFound("no rule in the tables nftables.conf declares matches "
                           f"`{wanted}`")
    family, table, chain, handle, text = matches[0]
    cmd = ("nft", "delete", "rule", family, table, chain, "handle", str(handle))
    return OwnerPlan("nftables", (Command(cmd),), persistent=True,
                     effect=(f"{family} {table} {chain}: `{text}` removed",),
                     notes=(f"its line is removed from {state.conf} if it is there",),
                     writes=(str(state.conf),),
                     detail=(NftRule(family, table, chain, None, text), state, handle))


def _listed(family: str, table: str, chain: str) -> list[tuple[int, str]]:
    """(handle, text) of each rule as nft prints it."""
    from trustwall.proc import run

    out = run(["nft", "-a", "list", "chain", family, table, chain], timeout=60).stdout
    rules = []
    for line in out.splitlines():
        m = re.match(r"^\s+(.*\S)\s+# handle (\d+)$", line)
        if m and not m.group(1).startswith(("type ", "chain ")):
            rules.append((int(m.group(2)), m.group(1)))
    return rules


def _core(text: str) -> str:
    return re.sub(r'\s+comment ".*"$', "", text).strip()


def _same(listed: str, text: str) -> bool:
    """nft prints ``ct state != invalid`` etc. as written; compare word for word, the
    comment (a trustwall tag) aside."""
    return _core(listed) == _core(text)


_STATEMENT = re.compile(r"^\s*(?:add|insert) rule (\S+) (\S+) (\S+)(?: index \d+)? (.*\S)\s*$")


def without_rule(text: str, rule: NftRule) -> str:
    """``text`` (a conf file) without the statements that add ``rule`` to its chain, and
    without trustwall's marker line right before each."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    for line in lines:
        m = _STATEMENT.match(line)
        if m and m.group(1, 2, 3) == (rule.family, rule.table, rule.chain) \
                and _same(m.group(4), rule.text):
            if out and out[-1].startswith(MARK):
                out.pop()
                if out and out[-1] == "\n":
                    out.pop()
            continue
        out.append(line)
    return "".join(out)


def _block(rule: NftRule, request_name: str | None) -> str:
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (f"\n{MARK} {request_name or 'rule'} added {when} (`trustwall undo` removes it)\n"
            f"{rule.statement}\n")


def _check(text: str) -> None:
    """``nft -c``: the kernel's parser and a dry-run transaction, nothing committed."""
    from trustwall.proc import CommandFailed, run

    try:
        run(["nft", "-c", "-f", "-"], input=text, timeout=60)
    except CommandFailed as exc:
        raise BadInput(f"nft refuses the new nftables.conf: {exc}") from None


def apply(owner_plan: OwnerPlan, options: Any = None) -> dict[str, Any]:
    """Make the change: table before-image, live statement, file rewritten — one journaled
    transaction (any failure rolls all of it back; ``trustwall undo`` restores both)."""
    from trustwall.firewall.change.apply import Options, _session
    from trustwall.firewall.change.undo import where
    from trustwall.journal.transaction import Transaction

    options = options or Options()
    detail = owner_plan.detail
    if not isinstance(detail, tuple) or not isinstance(detail[0], NftRule):
        raise ProblemFound("this plan was not made by the nftables owner")
    rule, state = detail[0], detail[1]
    deleting = len(detail) == 3
    verdict = _verdict(rule)
    if not deleting and verdict in ("drop", "reject") and not options.force:
        session = _session(options)
        if session.peers or session.unknown:
            raise LockoutRisk("refusing: the lockout check cannot trace native nft rulesets "
                              "yet, and this runs over SSH", hint="--force (with care)")
    conf = state.conf
    before = conf.read_text()
    if deleting:
        after = without_rule(before, rule)
        live = f"delete rule {rule.family} {rule.table} {rule.chain} handle {detail[2]}\n"
    else:
        after = before + ("" if before.endswith("\n") else "\n") + _block(rule, None)
        live = rule.statement + "\n"
    _check(after)
    if options.dry_run:
        return {"applied": False, "dry_run": True, "statement": live.strip(),
                "file": str(conf)}
    mode = conf.stat().st_mode & 0o7777
    with Transaction("fw-rule", f"nftables: {live.strip()}", root=options.root,
                     state_dir=options.state_dir) as txn:
        from trustwall.journal.steps import kind

        data = {"family": rule.family, "table": rule.table, **where()}
        txn.record("nft-table", kind("nft-table").capture(data),
                   label=f"{rule.family} {rule.table}", data=data)
        txn.run(["nft", "-f", "-"], input=live)
        if after != before:
            txn.write_file(conf, after.encode(), mode=mode)
    return {"applied": True, "dry_run": False, "txn_id": txn.id, "statement": live.strip(),
            "file": str(conf)}
