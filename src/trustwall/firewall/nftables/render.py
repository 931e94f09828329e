""":mod:`model` → nft syntax, as ``nft list ruleset`` prints it (``fw show``, plans).

Statements are rendered from the JSON nft gave (libnftables-json(5)); a shape this module
does not know is written as a comment holding its JSON (``/* json: … */`` is not nft syntax,
so such a rule does not load back: :func:`render_rule` tells the caller with ``exact``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from trustwall.firewall.nftables.model import Chain, NamedSet, Other, Rule, Ruleset, Table
from trustwall.firewall.nftables.model import priority_text as _priority_text

_SAFE = re.compile(r"^[A-Za-z0-9_./:\-]+$")
#: Keys whose values are names nft prints quoted (interfaces, helpers, prefixes).
_QUOTED_KEYS = {"iifname", "oifname", "iif", "oif", "ibrname", "obrname", "ibriport",
                "obriport", "sdifname", "bri_iifname", "bri_oifname", "helper"}
#: meta keys nft prints without ``meta`` (meta.c ``meta_key_is_unqualified``).
_UNQUALIFIED_META = {"iif", "oif", "iifname", "oifname", "iifgroup", "oifgroup"}
_BINOPS = ("&", "|", "^", "<<", ">>")
_TERMINAL = ("accept", "drop", "continue", "return", "queue")


class _Unknown(Exception):
    """A shape this renderer does not know (the caller falls back to its JSON)."""


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=list).replace("*/", "*\\/")


def quote(text: str) -> str:
    return '"' + text.replace('"', "'") + '"'


def _str(value: str, key: str | None = None) -> str:
    if value.startswith("@") or value.startswith("$"):
        return value
    if (key in _QUOTED_KEYS) or not _SAFE.match(value):
        return quote(value)
    return value


def _time(seconds: Any) -> str:
    if not isinstance(seconds, int):
        raise _Unknown
    if seconds == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(out)


def _key_of(expr: Any) -> str | None:
    """The field name a left-hand expression tests (for quoting the right side)."""
    if isinstance(expr, dict):
        for kind in ("meta", "ct", "rt", "socket"):
            if kind in expr and isinstance(expr[kind], dict):
                return expr[kind].get("key")
        if "payload" in expr and isinstance(expr["payload"], dict):
            return expr["payload"].get("field")
    return None


def expr(value: Any, key: str | None = None, *, top: bool = True) -> str:
    """One expression (a value, a set, a payload field, …) in nft syntax."""
    if isinstance(value, bool):
        return "exists" if value else "missing"
    if isinstance(value, int):
        return f"0x{value:08x}" if key == "mark" and value >= 0 else str(value)
    if isinstance(value, str):
        return _str(value, key)
    if isinstance(value, (list, tuple)):
        # A bare list is a flag combination (ct state established,related; syn|ack in a binop).
        if top:
            return ",".join(expr(v, key) for v in value)
        return "(" + " | ".join(expr(v, key, top=False) for v in value) + ")"
    if not isinstance(value, dict) or len(value) != 1:
        raise _Unknown
    (kind, body), = value.items()
    if kind == "set":
        items = body if isinstance(body, (list, tuple)) else [body]
        return "{ " + ", ".join(_item(v, key) for v in items) + " }"
    if kind == "range":
        return f"{expr(body[0], key)}-{expr(body[1], key)}"
    if kind == "prefix":
        return f"{expr(body['addr'], key)}/{body['len']}"
    if kind == "concat":
        return " . ".join(expr(v, None, top=False) for v in body)
    if kind in _BINOPS:
        left, right = body
        text = f"{expr(left, top=False)} {kind} {expr(right, _key_of(left), top=False)}"
        return text if top else f"({text})"
    if kind == "payload":
        if "protocol" in body:
            return f"{body['protocol']} {body['field']}"
        return f"@{body['base']},{body['offset']},{body['len']}"
    if kind == "meta":
        k = body["key"]
        return k if k in _UNQUALIFIED_META else f"meta {k}"
    if kind == "ct":
        parts = ["ct"]
        if body.get("dir"):
            parts.append(body["dir"])
        if body.get("family"):
            parts.append(body["family"])
        parts.append(body["key"])
        return " ".join(parts)
    if kind == "rt":
        fam = f" {body['family']}" if body.get("family") else ""
        return f"rt{fam} {body['key']}"
    if kind == "socket":
        level = f" level {body['level']}" if "level" in body else ""
        return f"socket {body['key']}{level}"
    if kind == "osf":
        ttl = f" ttl {body['ttl']}" if body.get("ttl") else ""
        return f"osf{ttl} {body['key']}"
    if kind == "fib":
        flags = body.get("flags", [])
        flags = [flags] if isinstance(flags, str) else flags
        return f"fib {' . '.join(flags)} {body['result']}"
    if kind == "exthdr":
        if "field" in body:
            return f"{body['name']} {body['field']}"
        return f"exthdr {body['name']}"
    if kind in ("tcp option", "ip option", "sctp chunk", "dccp option"):
        if kind == "dccp option":
            return f"dccp option {body['type']}"
        base = f"{kind} {body['name']}"
        return f"{base} {body['field']}" if "field" in body else base
    if kind == "numgen":
        off = f" offset {body['offset']}" if body.get("offset") else ""
        return f"numgen {body['mode']} mod {body['mod']}{off}"
    if kind == "jhash":
        seed = f" seed 0x{body['seed']:x}" if "seed" in body else ""
        off = f" offset {body['offset']}" if body.get("offset") else ""
        return f"jhash {expr(body['expr'], top=False)} mod {body['mod']}{seed}{off}"
    if kind == "symhash":
        off = f" offset {body['offset']}" if body.get("offset") else ""
        return f"symhash mod {body['mod']}{off}"
    if kind == "map":
        return f"{expr(body['key'], top=False)} map {expr(body['data'], top=False)}"
    if kind == "elem":
        return _element(body, key)
    if kind == "ipsec":
        spnum = f" spnum {body['spnum']}" if body.get("spnum") else ""
        fam = f" {body['family']}" if body.get("family") else ""
        return f"ipsec {body['dir']}{spnum}{fam} {body['key']}"
    if kind in ("accept", "drop", "continue", "return"):
        return kind
    if kind in ("jump", "goto"):
        return f"{kind} {_str(body['target'])}"
    raise _Unknown


def _item(value: Any, key: str | None) -> str:
    """A set element, or a ``[key, data]`` pair of an anonymous map (``{ 22 : accept }``)."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return f"{_item(value[0], key)} : {expr(value[1], top=False)}"
    if value == "*":  # the catch-all element
        return "*"
    return expr(value, key)


def _element(body: dict[str, Any], key: str | None) -> str:
    parts = ["*" if body["val"] == "*" else expr(body["val"], key)]
    if isinstance(body.get("counter"), dict):
        counter = body["counter"]
        parts.append(f"counter packets {counter.get('packets', 0)} "
                     f"bytes {counter.get('bytes', 0)}")
    if "timeout" in body:
        parts.append(f"timeout {_time(body['timeout'])}")
    if "expires" in body:
        parts.append(f"expires {_time(body['expires'])}")
    if isinstance(body.get("comment"), str):
        parts.append(f"comment {quote(body['comment'])}")
    return " ".join(parts)


_MATCH_OPS = {"==": "", "in": "", "!=": "!= ", "!": "! ", "<": "< ", ">": "> ", "<=": "<= ",
              ">=": ">= "}


def _nat(kind: str, body: Any) -> str:
    if body is None:
        return kind
    words = [kind]
    addr, port = body.get("addr"), body.get("port")
    flags = body.get("flags")
    flags = [flags] if isinstance(flags, str) else list(flags or ())
    if body.get("family") and addr is not None:
        words.append(body["family"])
    if "netmap" in flags:  # nft 1.0.6 lists the netmap flag, and reads it as "prefix"
        words.append("prefix")
        flags.remove("netmap")
    target = ""
    if addr is not None:
        a = expr(addr, top=False)
        if isinstance(addr, str) and ":" in addr and port is not None:
            a = f"[{a}]"
        target = a
    if port is not None:
        target += f":{expr(port, top=False)}"
    if target:
        words += ["to", target]
    if flags:
        words.append(",".join(flags))
    return " ".join(words)


def _rate(body: dict[str, Any]) -> str:
    words = ["limit rate"]
    if body.get("inv"):
        words.append("over")
    unit = body.get("rate_unit", "packets")
    rate = f"{body['rate']}/{body.get('per', 'second')}" if unit == "packets" else \
        f"{body['rate']} {unit}/{body.get('per', 'second')}"
    words.append(rate)
    if body.get("burst") and not (unit == "packets" and body["burst"] == 5):  # nft's default
        bunit = body.get("burst_unit", "packets" if unit == "packets" else "bytes")
        words.append(f"burst {body['burst']} {bunit}")
    return " ".join(words)


def _flag_mask(left: Any, right: Any, op: str) -> str | None:
    """nft lists ``tcp flags & (syn | ack) == syn`` as ``tcp flags syn / syn,ack``."""
    if op != "==" or not (isinstance(left, dict) and "&" in left):
        return None
    inner, mask = left["&"]
    if inner != {"payload": {"protocol": "tcp", "field": "flags"}} or \
            not isinstance(right, (str, list, tuple)) or not isinstance(mask, (str, list, tuple)):
        return None
    names = [right] if isinstance(right, str) else list(right)
    masks = [mask] if isinstance(mask, str) else list(mask)
    if not all(isinstance(n, str) for n in [*names, *masks]):
        return None
    return f"tcp flags {','.join(names)} / {','.join(masks)}"


def statement(stmt: Any) -> str:
    """One statement of a rule in nft syntax (raises for a shape not known)."""
    if not isinstance(stmt, dict) or len(stmt) != 1:
        raise _Unknown
    (kind, body), = stmt.items()
    if kind == "match":
        left, right, op = body["left"], body["right"], body.get("op", "==")
        if op not in _MATCH_OPS:
            raise _Unknown
        flags = _flag_mask(left, right, op)
        if flags is not None:
            return flags
        word = _MATCH_OPS[op] or ("== " if isinstance(left, dict) and
                                  any(b in left for b in _BINOPS) else "")
        return f"{expr(left)} {word}{expr(right, _key_of(left))}"
    if kind in ("accept", "drop", "continue", "return") and body is None:
        return kind
    if kind in ("jump", "goto"):
        return f"{kind} {_str(body['target'])}"
    if kind in ("counter", "limit", "quota", "synproxy") and isinstance(body, dict) and \
            "map" in body:
        return f"{kind} name {expr(body, top=False)}"
    if kind == "counter":
        if body is None:
            return "counter"
        if isinstance(body, str):
            return f"counter name {_str(body)}"
        return f"counter packets {body.get('packets', 0)} bytes {body.get('bytes', 0)}"
    if kind == "reject":
        if not body:
            return "reject"
        rtype, code = body.get("type"), body.get("expr")
        if rtype == "tcp reset":
            return "reject with tcp reset"
        if rtype in ("icmp", "icmpv6", "icmpx") and code is not None:
            return f"reject with {rtype} {expr(code)}"
        if rtype in ("icmp", "icmpv6", "icmpx"):
            return f"reject with {rtype} port-unreachable" if rtype != "icmpx" else \
                "reject with icmpx port-unreachable"
        raise _Unknown
    if kind == "log":
        if body is None:
            return "log"
        words = ["log"]
        if "prefix" in body:
            words.append(f"prefix {quote(body['prefix'])}")
        if "group" in body:
            words.append(f"group {body['group']}")
        if "snaplen" in body:
            words.append(f"snaplen {body['snaplen']}")
        if "queue-threshold" in body:
            words.append(f"queue-threshold {body['queue-threshold']}")
        if "level" in body:
            words.append(f"level {body['level']}")
        if body.get("flags"):
            flags = body["flags"]
            flags = [flags] if isinstance(flags, str) else list(flags)
            words.append("flags all" if set(flags) >= {"tcp sequence", "tcp options",
                                                          "ip options", "skuid", "ether"}
                         else " ".join(f"flags {f}" for f in flags))
        return " ".join(words)
    if kind == "limit":
        if isinstance(body, str):
            return f"limit name {_str(body)}"
        return _rate(body)
    if kind == "quota":
        if isinstance(body, str):
            return f"quota name {_str(body)}"
        words = ["quota"]
        if body.get("inv"):
            words.append("over")
        words.append(f"{body['val']} {body.get('val_unit', 'bytes')}")
        if body.get("used"):
            words.append(f"used {body['used']} {body.get('used_unit', 'bytes')}")
        return " ".join(words)
    if kind == "mangle":
        left = body["key"]
        return f"{expr(left)} set {expr(body['value'], _key_of(left), top=False)}"
    if kind in ("snat", "dnat", "masquerade", "redirect"):
        return _nat(kind, body)
    if kind == "vmap":
        return f"{expr(body['key'], top=False)} vmap {expr(body['data'])}"
    if kind == "notrack":
        return "notrack"
    if kind == "queue":
        words = ["queue"]
        flags = body.get("flags") if body else None
        if flags:
            words.append("flags " + ",".join([flags] if isinstance(flags, str) else flags))
        if body and "num" in body:
            words.append(f"to {expr(body['num'], top=False)}")
        return " ".join(words)
    if kind == "dup":
        words = ["dup"]
        if "addr" in body:
            words.append(f"to {expr(body['addr'], top=False)}")
        if "dev" in body:
            words.append(f"device {expr(body['dev'], 'iifname', top=False)}")
        return " ".join(words)
    if kind == "fwd":
        words = ["fwd"]
        if "addr" in body:
            words.append(f"{body.get('family', 'ip')} to {expr(body['addr'], top=False)}")
        words.append(f"device {expr(body['dev'], 'iifname', top=False)}")
        return " ".join(words)
    if kind in ("set", "map"):
        op = body["op"]
        inner = expr(body["elem"], top=False)
        if kind == "map" and "data" in body:
            inner += f" : {expr(body['data'], top=False)}"
        stmts = body.get("stmt") or ()
        if stmts:
            inner += " " + " ".join(statement(s) for s in stmts)
        return f"{op} {body['set']} {{ {inner} }}"
    if kind == "meter":
        inner = " ".join(statement(s) for s in ([body["stmt"]] if isinstance(body["stmt"], dict)
                                                 else body["stmt"]))
        size = f" size {body['size']}" if body.get("size") else ""
        return f"meter {_str(body['name'])}{size} {{ {expr(body['key'], top=False)} {inner} }}"
    if kind in ("ct helper", "ct timeout", "ct expectation"):
        return f"{kind} set {expr(body, 'helper', top=False)}"
    if kind == "ct count":
        over = "over " if body.get("inv") else ""
        return f"ct count {over}{body['val']}"
    if kind == "tproxy":
        words = ["tproxy"]
        if body.get("family"):
            words.append(body["family"])
        target = ""
        if "addr" in body:
            a = expr(body["addr"], top=False)
            target = f"[{a}]" if ":" in a and "port" in body else a
        if "port" in body:
            target += f":{expr(body['port'], top=False)}"
        words += ["to", target]
        return " ".join(words)
    if kind == "synproxy":
        if isinstance(body, str):
            return f"synproxy name {_str(body)}"
        words = ["synproxy"]
        for k in ("mss", "wscale"):
            if k in body:
                words.append(f"{k} {body[k]}")
        if body.get("flags"):
            flags = body["flags"]
            words += [flags] if isinstance(flags, str) else list(flags)
        return " ".join(words)
    if kind == "flow":
        return f"flow {body.get('op', 'add')} {body['flowtable']}"
    if kind == "secmark":
        return f"meta secmark set {_str(body)}"
    raise _Unknown


def render_rule(rule: Rule) -> tuple[str, bool]:
    """A rule's text (statements, then its comment) and whether every statement was known;
    an unknown one is kept as ``/* json: … */`` so a person still sees all of it."""
    words, exact = [], True
    for stmt in rule.expr:
        try:
            words.append(statement(stmt))
        except (_Unknown, KeyError, TypeError, ValueError, IndexError, AttributeError):
            words.append(f"/* json: {_json(stmt)} */")
            exact = False
    if rule.comment is not None:
        words.append(f"comment {quote(rule.comment)}")
    return " ".join(words), exact


def rule_text(rule: Rule) -> str:
    return render_rule(rule)[0]


def _set_lines(named: NamedSet, handles: bool = False) -> tuple[list[str], bool]:
    exact = True
    lines = [f"{named.kind} {_str(named.name)} {{" + (
        f" # handle {named.handle}" if handles and named.handle is not None else "")]
    if named.typeof is not None:
        try:
            key = expr(named.typeof, top=False)
            if named.kind == "map" and isinstance(named.extra.get("_typeof_data"), dict):
                key += " : " + expr(named.extra["_typeof_data"], top=False)
        except (_Unknown, KeyError, TypeError):
            key, exact = " . ".join(named.key), False
        lines.append(f"\ttypeof {key}" + (f" : {named.data}" if named.kind == "map"
                                           and named.data else ""))
    else:
        key = " . ".join(named.key)
        data = named.data
        if named.kind == "map" and data and any(
                isinstance(e, (list, tuple)) and len(e) == 2 and _has_interval(e[1])
                for e in named.elements):
            data = f"interval {data}"  # nft's JSON drops it; the ranges say so
        lines.append(f"\ttype {key}" + (f" : {data}" if named.kind == "map"
                                         and data else ""))
    if named.extra.get("policy"):
        lines.append(f"\tpolicy {named.extra['policy']}")
    if named.flags:
        lines.append(f"\tflags {','.join(named.flags)}")
    if isinstance(named.extra.get("timeout"), int):
        lines.append(f"\ttimeout {_time(named.extra['timeout'])}")
    if isinstance(named.extra.get("gc-interval"), int):
        lines.append(f"\tgc-interval {_time(named.extra['gc-interval'])}")
    if isinstance(named.extra.get("size"), int):
        lines.append(f"\tsize {named.extra['size']}")
    if not named.extra.get("stmt") and any(_has_counter(e) for e in named.elements):
        lines.append("\tcounter")  # elements with counters need it; the JSON omits it
    for stmt in named.extra.get("stmt") or ():
        try:
            lines.append(f"\t{statement(stmt)}")
        except (_Unknown, KeyError, TypeError):
            exact = False
    if isinstance(named.extra.get("comment"), str):
        lines.append(f"\tcomment {quote(named.extra['comment'])}")
    if named.elements:
        items = []
        for element in named.elements:
            try:
                items.append(_item(element, None))
            except (_Unknown, KeyError, TypeError, IndexError, ValueError):
                items.append(f"/* json: {_json(element)} */")
                exact = False
        lines.append("\telements = { " + ",\n\t\t     ".join(items) + " }")
    lines.append("}")
    return lines, exact


def _has_interval(value: Any) -> bool:
    if isinstance(value, dict):
        if "range" in value or "prefix" in value:
            return True
        return any(_has_interval(v) for v in value.get("concat", ()))
    return False


def _has_counter(element: Any) -> bool:
    if isinstance(element, (list, tuple)) and element:
        element = element[0]
    return isinstance(element, dict) and isinstance(element.get("elem"), dict) and \
        "counter" in element["elem"]


def _chain_lines(chain: Chain, handles: bool) -> tuple[list[str], bool]:
    exact = True
    head = f"chain {_str(chain.name)} {{"
    lines = [head + (f" # handle {chain.handle}" if handles and chain.handle is not None
                     else "")]
    if chain.is_base:
        device = ""
        if len(chain.device) == 1:
            device = f" device {quote(chain.device[0])}"
        elif chain.device:
            device = " devices = { " + ", ".join(quote(d) for d in chain.device) + " }"
        prio = "0" if chain.priority is None else _priority_text(chain.family, chain.hook,
                                                                  chain.priority)
        lines.append(f"\ttype {chain.type or 'filter'} hook {chain.hook}{device} priority "
                     f"{prio}; policy {chain.policy or 'accept'};")
    for rule in chain.rules:
        text, ok = render_rule(rule)
        exact = exact and ok
        lines.append("\t" + text + (f" # handle {rule.handle}" if handles
                                    and rule.handle is not None else ""))
    lines.append("}")
    return lines, exact


def _comment_line(body: dict[str, Any]) -> list[str]:
    return [f"\tcomment {quote(body['comment'])}"] if isinstance(body.get("comment"), str) \
        else []


def _other_lines(other: Other) -> list[str] | None:
    body = other.body
    name = _str(other.name)
    try:
        if other.kind == "counter":
            return [f"counter {name} {{", f"\tpackets {body.get('packets', 0)} bytes "
                    f"{body.get('bytes', 0)}", *_comment_line(body), "}"]
        if other.kind == "quota":
            over = "over " if body.get("inv") else ""
            used = f" used {body['used']} {body.get('used_unit', 'bytes')}" \
                if body.get("used") else ""
            return [f"quota {name} {{", f"\t{over}{body['bytes']} bytes{used}",
                    *_comment_line(body), "}"]
        if other.kind == "ct timeout":
            policy = ", ".join(f"{k} : {v}" for k, v in body.get("policy", {}).items())
            return [f"ct timeout {name} {{", f"\tprotocol {body['protocol']}",
                    f"\tl3proto {body.get('l3proto', 'ip')}", f"\tpolicy = {{ {policy} }}",
                    *_comment_line(body), "}"]
        if other.kind == "flowtable":
            devs = body.get("dev", [])
            devs = [devs] if isinstance(devs, str) else list(devs)
            lines = [f"flowtable {name} {{",
                     f"\thook {body['hook']} priority {body.get('prio', 0)}"]
            if devs:
                lines.append("\tdevices = { " + ", ".join(quote(d) for d in devs) + " }")
            return [*lines, "}"]
        if other.kind == "ct helper":
            return [f"ct helper {name} {{",
                    f"\ttype {quote(body['type'])} protocol {body['protocol']}",
                    f"\tl3proto {body.get('l3proto', 'ip')}", *_comment_line(body), "}"]
        if other.kind == "limit":
            return [f"limit {name} {{", "\t" + _rate(body).removeprefix("limit "),
                    *_comment_line(body), "}"]
        if other.kind == "ct expectation":
            return [f"ct expectation {name} {{", f"\tprotocol {body['protocol']}",
                    f"\tdport {body['dport']}", f"\ttimeout {body['timeout']}ms",
                    f"\tsize {body['size']}", f"\tl3proto {body.get('l3proto', 'ip')}",
                    *_comment_line(body), "}"]
        if other.kind == "synproxy":
            lines = [f"synproxy {name} {{"]
            lines += [f"\t{k} {body[k]}" for k in ("mss", "wscale") if k in body]
            flags = body.get("flags")
            if flags:
                lines.append("\t" + " ".join([flags] if isinstance(flags, str) else flags))
            return [*lines, *_comment_line(body), "}"]
    except (_Unknown, KeyError, TypeError):
        return None
    return None


def render_table(table: Table, *, handles: bool = False) -> tuple[str, bool]:
    """One table as ``nft list table`` prints it, and whether all of it was known."""
    exact = True
    head = f"table {table.family} {_str(table.name)} {{"
    out = [head + (f" # handle {table.handle}" if handles and table.handle is not None
                   else "")]
    if table.iptables_nft and handles:
        out.append(f"\t# iptables-nft: {table.iptables_nft}")
    flags = [f for f in table.flags if f in ("dormant", "owner", "persist")]
    if flags:  # nft 1.0.6's JSON can list the table's name as its flags: known words only
        out.append(f"\tflags {','.join(flags)}")
    blocks: list[list[str]] = []
    for other in table.others:
        lines = _other_lines(other)
        if lines is None:
            lines = [f"# {other.kind} {other.name}: {_json(other.body)}"]
            exact = False
        blocks.append(lines)
    for named in table.sets:
        lines, ok = _set_lines(named, handles)
        exact = exact and ok
        blocks.append(lines)
    for chain in table.chains:
        lines, ok = _chain_lines(chain, handles)
        exact = exact and ok
        blocks.append(lines)
    for i, block in enumerate(blocks):
        if i:
            out.append("")
        out += ["\t" + line for line in block]
    out.append("}")
    return "\n".join(out) + "\n", exact


def render_ruleset(ruleset: Ruleset, *, handles: bool = False,
                   tables: tuple[Table, ...] | None = None) -> str:
    """The whole ruleset (or the given tables of it) in nft syntax."""
    return "".join(render_table(t, handles=handles)[0]
                   for t in (ruleset.tables if tables is None else tables))
