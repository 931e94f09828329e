"""``nft -j list ruleset`` JSON → :mod:`model`.

The JSON is hostile input: a saved file may come from anywhere, and even the kernel's own
listing holds names and comments that anyone with CAP_NET_ADMIN chose. So the reader checks
types, names (nft's 256-byte limit, no control characters), sizes and nesting, and keeps
what it does not understand as it came (statements are interpreted later, opaquely when
unknown) instead of failing: one strange object never hides the rest of the ruleset.
"""

from __future__ import annotations

import json
from typing import Any

from trustwall.errors import BadInput
from trustwall.firewall.nftables.model import (
    FAMILIES,
    Chain,
    NamedSet,
    Other,
    Rule,
    Ruleset,
    Table,
    resolve_priority,
)

#: nft's NFT_NAME_MAXLEN (table, chain, set names) and NFT_USERDATA_MAXLEN (comments).
NAME_MAX = 256
COMMENT_MAX = 1024
#: Guards against a crafted file: objects, statements per rule, and expression depth.
MAX_OBJECTS = 2_000_000
MAX_STATEMENTS = 4096
MAX_DEPTH = 64
MAX_BYTES = 512 * 1024 * 1024

IPTABLES_TABLES = ("filter", "nat", "mangle", "raw", "security")
_OTHER_KINDS = ("flowtable", "counter", "quota", "ct helper", "limit", "ct timeout",
                "ct expectation", "secmark", "synproxy", "element")


def valid_name(value: object) -> str | None:
    """``value`` when it can be an nft name (a non-empty string of at most 256 bytes
    without control characters), else None."""
    if not isinstance(value, str) or not value or len(value.encode("utf-8", "replace")) > NAME_MAX:
        return None
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return None
    return value


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _depth_ok(value: Any, limit: int = MAX_DEPTH) -> bool:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


def _freeze(value: Any) -> Any:
    """Lists become tuples so a statement cannot be changed after parsing (dicts stay)."""
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return {k: _freeze(v) for k, v in value.items()}
    return value


def loads(text: str | bytes, *, source: str = "") -> Ruleset:
    """Parse ``nft -j list ruleset`` output (or a saved copy of it)."""
    if len(text) > MAX_BYTES:
        raise BadInput(f"{source or 'nft JSON'}: larger than {MAX_BYTES} bytes")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadInput(f"{source or 'nft JSON'}: not JSON ({str(exc)[:80]})") from None
    return from_json(data, source=source)


def from_json(data: Any, *, source: str = "") -> Ruleset:
    """Build the model from the decoded JSON (``{"nftables": [...]}``)."""
    where = source or "nft JSON"
    if not isinstance(data, dict) or not isinstance(data.get("nftables"), list):
        raise BadInput(f"{where}: not an nft -j listing (no \"nftables\" array)")
    objects = data["nftables"]
    if len(objects) > MAX_OBJECTS:
        raise BadInput(f"{where}: more than {MAX_OBJECTS} objects")
    skipped: list[str] = []
    version = None
    tables: dict[tuple[str, str], dict[str, Any]] = {}
    chains: dict[tuple[str, str, str], dict[str, Any]] = {}
    rules: dict[tuple[str, str, str], list[Rule]] = {}
    sets: dict[tuple[str, str], list[NamedSet]] = {}
    others: dict[tuple[str, str], list[Other]] = {}

    def table_of(body: dict[str, Any], what: str) -> tuple[str, str] | None:
        family, name = body.get("family"), valid_name(body.get("table", body.get("name")))
        if family not in FAMILIES or name is None:
            skipped.append(f"{what}: bad family or table name")
            return None
        key = (family, name)
        tables.setdefault(key, {"family": family, "name": name})
        return key

    for index, obj in enumerate(objects):
        if not isinstance(obj, dict) or len(obj) != 1:
            skipped.append(f"object {index}: not a single-key object")
            continue
        (kind, body), = obj.items()
        if not isinstance(body, dict):
            skipped.append(f"object {index} ({str(kind)[:20]}): body is not an object")
            continue
        if kind == "metainfo":
            version = body.get("version") if isinstance(body.get("version"), str) else None
        elif kind == "table":
            family, name = body.get("family"), valid_name(body.get("name"))
            if family not in FAMILIES or name is None:
                skipped.append(f"table {index}: bad family or name")
                continue
            entry = tables.setdefault((family, name), {"family": family, "name": name})
            entry["handle"] = _int(body.get("handle"))
            flags = body.get("flags")
            if isinstance(flags, str):
                flags = [flags]
            if isinstance(flags, list):
                entry["flags"] = tuple(f for f in flags if isinstance(f, str))
        elif kind == "chain":
            key = table_of(body, f"chain {index}")
            name = valid_name(body.get("name"))
            if key is None or name is None:
                if key is not None:
                    skipped.append(f"chain {index}: bad name")
                continue
            chains[(*key, name)] = body
        elif kind == "rule":
            key = table_of(body, f"rule {index}")
            chain = valid_name(body.get("chain"))
            expr = body.get("expr", [])
            if key is None or chain is None or not isinstance(expr, list):
                skipped.append(f"rule {index}: bad chain or statements")
                continue
            if len(expr) > MAX_STATEMENTS or not _depth_ok(expr):
                skipped.append(f"rule {index}: too many statements or nested too deep")
                continue
            comment = body.get("comment")
            comment = comment[:COMMENT_MAX] if isinstance(comment, str) else None
            bucket = rules.setdefault((*key, chain), [])
            bucket.append(Rule(key[0], key[1], chain, _int(body.get("handle")),
                               len(bucket) + 1, tuple(_freeze(e) for e in expr), comment))
        elif kind in ("set", "map"):
            key = table_of(body, f"{kind} {index}")
            if key is None:
                continue
            named = _named_set(kind, key, body)
            if named is None:
                skipped.append(f"{kind} {index}: bad name or elements")
                continue
            sets.setdefault(key, []).append(named)
        elif kind in _OTHER_KINDS:
            key = table_of(body, f"{kind} {index}")
            if key is None:
                continue
            name = valid_name(body.get("name")) or ""
            if _depth_ok(body):
                others.setdefault(key, []).append(Other(kind, key[0], key[1], name, body))
        else:
            skipped.append(f"object {index}: unknown kind {str(kind)[:40]!r}")

    out = []
    for key, entry in tables.items():
        table_chains = tuple(_chain(body, rules.pop((*key, name), []))
                             for (f, t, name), body in chains.items() if (f, t) == key)
        known = {c.name for c in table_chains}
        for (f, t, name), orphan in list(rules.items()):
            if (f, t) == key and name not in known:  # rules listed without their chain
                skipped.append(f"{len(orphan)} rule(s) of unknown chain {name!r}")
                rules.pop((f, t, name))
        table = Table(entry["family"], entry["name"], entry.get("handle"),
                      entry.get("flags", ()), table_chains, tuple(sets.get(key, ())),
                      tuple(others.get(key, ())))
        out.append(_mark_iptables_nft(table))
    return Ruleset(tuple(out), version, source, tuple(skipped))


def _chain(body: dict[str, Any], rules: list[Rule]) -> Chain:
    family, table, name = body["family"], body["table"], body["name"]
    hook = body.get("hook") if isinstance(body.get("hook"), str) else None
    ctype = body.get("type") if isinstance(body.get("type"), str) else None
    priority = resolve_priority(family, hook or "", body.get("prio")) if hook else None
    policy = body.get("policy") if body.get("policy") in ("accept", "drop") else None
    if hook is not None and policy is None:
        policy = "accept"
    dev = body.get("dev", body.get("device"))
    devices = tuple(d for d in ([dev] if isinstance(dev, str) else dev or [])
                    if valid_name(d)) if isinstance(dev, (str, list)) else ()
    return Chain(family, table, name, _int(body.get("handle")), ctype if hook else None,
                 hook, priority, policy, devices, tuple(rules))


def _elements(value: Any) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return (_freeze(value),)


def _named_set(kind: str, key: tuple[str, str], body: dict[str, Any]) -> NamedSet | None:
    name = valid_name(body.get("name"))
    elements = body.get("elem")
    if name is None or not _depth_ok(body):
        return None
    ktype = body.get("type")
    if isinstance(ktype, str):
        key_type: tuple[str, ...] = (ktype,)
    elif isinstance(ktype, list) and all(isinstance(k, str) for k in ktype):
        key_type = tuple(ktype)
    else:
        key_type = ()
    data = body.get("map")
    if not isinstance(data, str):
        data = None if kind == "set" else (str(data) if data is not None else None)
    flags = body.get("flags", [])
    if isinstance(flags, str):
        flags = [flags]
    flags = tuple(f for f in flags if isinstance(f, str)) if isinstance(flags, list) else ()
    extra = {k: v for k, v in body.items()
             if k in ("timeout", "gc-interval", "size", "policy", "auto-merge", "comment",
                      "stmt")}
    return NamedSet(key[0], key[1], name, kind, _int(body.get("handle")), key_type,
                    _freeze(body.get("typeof")), data, flags, _elements(elements), extra)


#: iptables-nft's built-in chains per table (their names are the hooks, upper-cased).
_IPTABLES_CHAINS = {
    "filter": {"INPUT", "FORWARD", "OUTPUT"},
    "nat": {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
    "mangle": {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
    "raw": {"PREROUTING", "OUTPUT"},
    "security": {"INPUT", "FORWARD", "OUTPUT"},
}


#: What iptables-nft never writes natively (ipset, multiport … go through ``xt``).
_NATIVE_ONLY_KEYS = frozenset({"set", "vmap", "concat", "map", "fib", "numgen", "jhash",
                               "symhash", "socket", "osf", "meter", "elem"})


def _native_only(value: Any) -> bool:
    """Whether a rule's JSON uses nft-only syntax: a set or map lookup, a concatenation, a
    ``th`` field … (iptables-nft-save misreads such a rule: ``ip saddr @s drop`` saves as
    ``-A INPUT -j DROP``, nft 1.0.6 / iptables 1.8.9)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if _NATIVE_ONLY_KEYS & item.keys():
                return True
            payload = item.get("payload")
            if isinstance(payload, dict) and payload.get("protocol") == "th":
                return True
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, str) and item.startswith("@"):
            return True
    return False


def iptables_shaped(table: Table) -> bool:
    """An ip/ip6 table named like an iptables table whose base chains are exactly iptables'
    built-in ones: iptables-nft-save reads it as its own."""
    if table.family not in ("ip", "ip6") or table.name not in _IPTABLES_CHAINS:
        return False
    base = [c for c in table.chains if c.is_base]
    return bool(base) and all(c.name in _IPTABLES_CHAINS[table.name]
                              and c.hook == c.name.lower() for c in base)


def _mark_iptables_nft(table: Table) -> Table:
    """Say when a table is iptables-nft's: a rule holds an ``xt`` expression (an iptables
    extension nft cannot show), or it is iptables-shaped and every rule looks written by
    iptables-nft (it counts every rule, and uses no nft-only syntax). An iptables-shaped
    table holding nft-only rules stays native: nft's listing is the faithful reading."""
    rules = [r for c in table.chains for r in c.rules]
    why = ""
    if any(r.has_xt for r in rules):
        why = "rules hold xt expressions (written by iptables-nft)"
    elif iptables_shaped(table) and all(
            any(isinstance(s, dict) and "counter" in s for s in r.expr)
            and not _native_only(r.expr) for r in rules):
        why = "an iptables table with iptables' built-in chains (iptables-nft)"
    if not why:
        return table
    return Table(table.family, table.name, table.handle, table.flags, table.chains,
                 table.sets, table.others, why)


def statements(text: str | bytes, *, source: str = "") -> list[Any]:
    """One rule's statement list (a ``.t.json`` entry, the ``expr`` of a rule) parsed
    with the same limits."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadInput(f"{source or 'statements'}: not JSON ({str(exc)[:80]})") from None
    if not isinstance(data, list) or len(data) > MAX_STATEMENTS or not _depth_ok(data):
        raise BadInput(f"{source or 'statements'}: not a statement list")
    return [_freeze(e) for e in data]
