"""The plain-nftables owner: nftables.service loads /etc/nftables.conf (RHEL:
/etc/sysconfig/nftables.conf) and its includes at boot, so a change is made twice, in one
journaled transaction: the rule inserted into the live table, and the same statement appended
to that file, so that the boot (``nft -f /etc/nftables.conf``) rebuilds it.

Placement is the IR planner's (``analysis.plan.plan_hook_insert``): in the first filter base
chain of the hook in a table the file declares, directly before the first rule that would
decide some of the new rule's packets otherwise (else appended), with its effect through
every base chain of the hook; an accept that another base chain still drops is refused, naming
that rule. The rule is built as nft JSON, compiled by the nftables frontend and rendered by
its renderer. Live, it goes in as ``insert rule FAMILY TABLE CHAIN handle H …`` (before the
rule with that handle); in the file, after every table and include the file loads, inside a
marked block, as ``insert rule … index N`` (handles are given anew at boot; the file rebuilds
the chain in the same order). An allow gets ``ct state != invalid`` only where the chain
drops INVALID-state packets on purpose, as the iptables planner does. Before anything changes
the new file is checked with ``nft -c`` (the kernel's own parser, no commit). Undo restores
the table's before-image (``nft-table`` journal step) and the file's bytes.
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
    handle: int | None = None  # the live rule it goes before (``insert … handle H``)

    @property
    def statement(self) -> str:
        """The nft command the file carries: by position, as the file rebuilds the chain in
        the same order at boot (handles are given anew then)."""
        if self.index is None:
            return f"add rule {self.family} {self.table} {self.chain} {self.text}"
        where = f" index {self.index}" if self.index else ""
        return f"insert rule {self.family} {self.table} {self.chain}{where} {self.text}"

    @property
    def live(self) -> str:
        """The nft command for the running ruleset: before the rule with ``handle``."""
        if self.index is None or self.handle is None:
            return self.statement
        return (f"insert rule {self.family} {self.table} {self.chain} handle {self.handle} "
                f"{self.text}")


@dataclass(frozen=True)
class State:
    """What the plan reads: the conf file, its declared tables and the live ruleset (nft -j)."""

    conf: Path
    declared: tuple[tuple[str, str], ...]
    ruleset: dict[str, Any]
    #: everything the kernel evaluates (nftables.live.whole_picture), for the planner
    picture: Any = None


def _word(value: str, what: str) -> str:
    if not _SAFE_WORD.match(value):
        raise BadInput(f"{what} {value!r}: not something nft can take here")
    return value


def _value(text: str, what: str) -> object:
    """A port or port list in nft JSON (``22``, ``{"range": [1, 2]}``, ``{"set": [...]}``)."""
    def one(part: str) -> object:
        first, _, last = part.partition(":")
        if not first.isdigit() or (last and not last.isdigit()):
            raise BadInput(f"{what} {text!r}: not a port, range or list")
        return {"range": [int(first), int(last)]} if last else int(first)
    parts = [one(p) for p in _word(text, what).split(",")]
    return parts[0] if len(parts) == 1 else {"set": parts}


def _address(text: str, family: str) -> tuple[str, object]:
    import ipaddress

    try:
        net = ipaddress.ip_network(_word(text, "address"), strict=False)
    except ValueError:
        raise BadInput(f"{text!r}: not an address or prefix") from None
    fam = "ip6" if net.version == 6 else "ip"
    if family in ("ip", "ip6") and fam != family:
        raise BadInput(f"{text}: an IPv{net.version} address in an {family} table")
    if net.prefixlen == net.max_prefixlen:
        return fam, str(net.network_address)
    return fam, {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}


def _match(left: object, right: object, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def rule_expr(request: Request, family: str) -> list[dict[str, Any]]:
    """The request as nft JSON statements (what ``nft -j`` lists), validated: compiled to the
    IR by the nftables frontend and rendered to nft syntax by its renderer."""
    out: list[dict[str, Any]] = []
    if request.in_iface:
        out.append(_match({"meta": {"key": "iifname"}}, _word(request.in_iface, "--in")))
    for flag, value in (("saddr", request.src), ("daddr", request.dst)):
        if value:
            fam, right = _address(value, family)
            out.append(_match({"payload": {"protocol": fam, "field": flag}}, right))
    proto = _word(request.proto, "--proto") if request.proto else None
    if proto and (request.dport or request.sport):
        if proto not in ("tcp", "udp", "sctp", "dccp", "udplite"):
            raise BadInput(f"--proto {proto}: ports need tcp, udp, sctp, dccp or udplite")
        for flag, value in (("sport", request.sport), ("dport", request.dport)):
            if value:
                out.append(_match({"payload": {"protocol": proto, "field": flag}},
                                  _value(value, f"--{flag}")))
    elif proto:
        out.append(_match({"meta": {"key": "l4proto"}}, proto))
    action = request.removes or "allow" if request.action == "delete" else request.action
    if request.state:
        states = [_word(s.lower(), "--state") for s in request.state.split(",")]
        out.append(_match({"ct": {"key": "state"}}, states[0] if len(states) == 1
                          else {"set": states}, "in"))
    out.append({_VERDICTS[action]: None})
    return out


def _model_rule(request: Request, family: str, table: str, chain: str,
                with_invalid_guard: bool) -> Any:
    from trustwall.firewall.nftables.model import Rule

    expr = rule_expr(request, family)
    if with_invalid_guard:
        expr.insert(len(expr) - 1, _match({"ct": {"key": "state"}}, "invalid", "!="))
    tag = request.comment or (f"tw:{request.name}" if request.name else None)
    if tag is not None and ('"' in tag or "\\" in tag or "\n" in tag):
        raise BadInput("an nft comment cannot hold quotes, backslashes or newlines")
    return Rule(family, table, chain, None, 0, tuple(expr), tag)


def rule_text(request: Request, family: str, *, guard_invalid: bool | None = None) -> str:
    """The statement for ``request`` in nft syntax (rendered by nftables.render). An allow
    without ``--state`` gets ``ct state != invalid`` unless ``guard_invalid`` is False (the
    planner sets it: only when the chain drops INVALID packets on purpose)."""
    from trustwall.firewall.nftables import render

    action = request.removes or "allow" if request.action == "delete" else request.action
    if guard_invalid is None:
        guard_invalid = action == "allow" and not request.state
    return render.rule_text(_model_rule(request, family, "t", "c", guard_invalid))


def read_state(root: str = "/") -> State:
    from trustwall.proc import run

    conf = detect.nftables_conf(root)
    if conf is None:
        raise ProblemFound("no nftables.conf on this host: nothing for nftables.service to "
                           "load at boot")
    declared = detect.declared_tables(detect.conf_files(conf, root))
    from trustwall.firewall.nftables.live import whole_picture

    listed = run(["nft", "-j", "list", "ruleset"], timeout=60)
    return State(conf, declared, json.loads(listed.stdout or "{}"), whole_picture().ruleset)


def _base_chains(state: State) -> list[dict[str, Any]]:
    return [item["chain"] for item in state.ruleset.get("nftables", [])
            if isinstance(item, dict) and "chain" in item and item["chain"].get("hook")]


def _rules(state: State, family: str, table: str, chain: str) -> list[dict[str, Any]]:
    return [item["rule"] for item in state.ruleset.get("nftables", [])
            if isinstance(item, dict) and "rule" in item
            and (item["rule"]["family"], item["rule"]["table"], item["rule"]["chain"])
            == (family, table, chain)]


def _target(request: Request, state: State) -> tuple[str, str, str]:
    hook = "input" if (request.chain or "INPUT").upper() == "INPUT" else \
        (request.chain or "").lower()
    for chain in _base_chains(state):
        if (chain["family"], chain["table"]) in state.declared and chain.get("hook") == hook \
                and chain.get("type", "filter") == "filter":
            return chain["family"], chain["table"], chain["name"]
    raise ProblemFound(f"no {hook} base chain in the tables {state.conf} declares",
                       hint=f"add one to {state.conf}, or make the change with nft")


def place(request: Request, state: State) -> tuple[NftRule, Any]:
    """Where the rule goes, by the IR planner (analysis.plan.plan_hook_insert): in the first
    filter base chain of the hook in a table the conf file declares, directly before the
    first rule that would decide some of its packets otherwise (else appended), with its
    effect through every base chain of the hook. An allow gets ``ct state != invalid`` when
    the chain drops INVALID-state packets on purpose (unless ``--state`` says otherwise)."""
    from trustwall.firewall import ir
    from trustwall.firewall.analysis.plan import plan_hook_insert
    from trustwall.firewall.nftables import compile as nft_compile
    from trustwall.firewall.nftables import render

    family, table, chain = _target(request, state)
    picture = state.picture
    if picture is None:
        from trustwall.firewall.nftables import parse

        picture = nft_compile.compile_ruleset(parse.from_json(state.ruleset))
    irt = next((t for t in picture.tables if (t.backend, t.family, t.name)
                == ("nft", family, table)), None)
    if irt is None:
        raise ProblemFound(f"{family} {table} is not in the live ruleset",
                           hint=f"nft -f {state.conf}")
    from trustwall.firewall.nftables.model import Table

    model_table = Table(family, table)

    def build(guard: bool) -> tuple[Any, ir.Rule, Any]:
        model = _model_rule(request, family, table, chain, guard)
        conditions, action = nft_compile.compile_rule(model, model_table)[0]
        rule = ir.Rule(conditions, action, ir.Source("nft", family, table, chain, None))
        return model, rule, plan_hook_insert(picture, irt, chain, rule)

    model, _rule, hook_plan = build(False)
    if hook_plan.guarded_invalid and not request.state:
        model, _rule, hook_plan = build(True)
    text = render.rule_text(model)
    before = hook_plan.before
    if before is None:
        return NftRule(family, table, chain, None, text), hook_plan
    index = (before.source.position or 1) - 1
    return NftRule(family, table, chain, index, text, before.source.handle), hook_plan


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
    rule, hook_plan = place(request, state)
    if not hook_plan.needed:
        return OwnerPlan("nftables", (), persistent=True, effect=(),
                         notes=(hook_plan.explanation,), detail=None)
    notes = [hook_plan.explanation,
             f"the same rule is written to {state.conf} (atomic, journaled) as `"
             f"{rule.statement}`: `nft -f {state.conf}` at boot rebuilds it"]
    if hook_plan.more:
        notes.append(f"{hook_plan.more} more effect lines not shown")
    refused = None
    if hook_plan.in_the_way:
        refused = ("not a plan: other base chains of the hook still decide some of these "
                   "packets otherwise: " + " | ".join(hook_plan.in_the_way))
    return OwnerPlan(
        "nftables", (Command(("nft", *re.findall(r'"[^"]*"|\S+', rule.live)), runtime=True,
                             permanent=False),),
        persistent=True, effect=hook_plan.effect, refused=refused,
        next=("change those rules too (named above), then plan again" if refused else None),
        notes=tuple(notes), writes=(str(state.conf),), detail=(rule, state))


def _verdict(rule: NftRule) -> str:
    words = rule.text.split(" comment ")[0].split()
    return words[-1]


def _plan_delete(request: Request, state: State) -> OwnerPlan:
    wanted = rule_text(request, "inet")
    variants = {(fam, guard): rule_text(request, fam, guard_invalid=guard)
                for fam in ("ip", "ip6", "inet") for guard in (True, False)}
    matches = []
    for chain in _base_chains(state):
        if (chain["family"], chain["table"]) not in state.declared:
            continue
        texts = [variants[(chain["family"], g)] for g in (True, False)
                 if (chain["family"], g) in variants]
        for rule in _listed(chain["family"], chain["table"], chain["name"]):
            if any(_same(rule[1], text) for text in texts):
                matches.append((chain["family"], chain["table"], chain["name"], rule[0],
                                rule[1]))
    if not matches:
        raise ProblemFound("no rule in the tables nftables.conf declares matches "
                           f"`{wanted}`")
    family, table, chain, handle, text = matches[0]
    cmd = ("nft", "delete", "rule", family, table, chain, "handle", str(handle))
    effect: tuple[str, ...] = (f"{family} {table} {chain}: `{text}` removed",)
    irt = next((t for t in state.picture.tables if (t.backend, t.family, t.name)
                == ("nft", family, table)), None) if state.picture is not None else None
    if irt is not None:
        from trustwall.firewall.analysis.plan import plan_hook_delete

        effect = plan_hook_delete(state.picture, irt, chain, handle) or (
            f"{family} {table} {chain}: `{text}` removed; no packet changes verdict (the "
            "rule is shadowed or redundant)",)
    return OwnerPlan("nftables", (Command(cmd),), persistent=True, effect=effect,
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
    if not owner_plan.commands and detail is None:
        return {"applied": False, "dry_run": options.dry_run,
                "reason": owner_plan.notes[0] if owner_plan.notes else "no change needed"}
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
        live = rule.live + "\n"
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
