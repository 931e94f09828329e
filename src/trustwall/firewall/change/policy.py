"""The firewall policy file: a readable YAML that lives in git, compiled to iptables-restore.

A policy names every rule and says why it is there::

    version: 1
    include: [groups.yaml]            # optional; paths relative to this file
    groups:                           # reused values, referenced as @name in a rule
      admins: [198.18.0.0/24, 198.18.9.9]
      web: [80, 443]
    ipv4:                             # ipv4 and/or ipv6
      filter:
        unmanaged: [DOCKER, DOCKER-USER]   # chains other tools own: left exactly as they are
        INPUT:
          policy: ACCEPT
          rules:
            - name: established
              rule: -m state --state RELATED,ESTABLISHED -j ACCEPT
              reason: replies to connections we opened
              owner: netops
            - name: jmx
              rule: -p tcp -s @admins -m state --state NEW -m tcp --dport 18745 -j ACCEPT
              reason: JConsole from the admin network
              owner: app-team
              ticket: OPS-1234
              expires: 2026-12-01T00:00:00Z

``rule`` is what a user would type after ``iptables -A CHAIN``; it is parsed by the same parser
as iptables-save text, so every extension iptables knows is accepted. Compiling is
deterministic: the same policy always gives byte-identical iptables-restore text, in which
every managed rule carries ``-m comment --comment "tw:<name>[ expires=<ISO>]"`` so a live rule
maps back to its policy entry and ``fw expire`` can find temporary rules in the kernel.

Groups: ``@name`` in a list-valued option (``--dports``, ``--sports``, ``--ports``,
``--state``, ``--ctstate``) is joined with commas; anywhere else the rule is expanded into one
rule per member, in the group's order (iptables itself expands ``-s a,b`` the same way).
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from trustwall.errors import BadInput, ParseError
from trustwall.firewall.iptables.model import (
    BUILTIN_CHAINS,
    Chain,
    Match,
    Option,
    Rule,
    Ruleset,
    Table,
)

# libyaml's C parser is ~20x faster than PyYAML's pure-Python one on a 10k-rule policy.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$")
COMMENT_PREFIX = "tw:"
FAMILY_KEYS = {"ipv4": 4, "ipv6": 6}
RULE_KEYS = {"name", "rule", "reason", "owner", "ticket", "expires"}
LIST_OPTIONS = {"--dports", "--sports", "--ports", "--state", "--ctstate", "--destination-ports",
                "--source-ports"}
POLICIES = {"ACCEPT", "DROP"}


@dataclass(frozen=True)
class PolicyRule:
    """One named rule of the policy, as written (``spec`` before group expansion)."""

    name: str
    chain: str
    spec: str
    reason: str
    owner: str
    ticket: str | None = None
    expires: _dt.datetime | None = None
    line: int | None = None
    source: str | None = None

    def expired(self, now: _dt.datetime | None = None) -> bool:
        now = now or _dt.datetime.now(_dt.timezone.utc)
        return self.expires is not None and self.expires <= now

    @property
    def comment(self) -> str:
        """The comment that marks this rule in the kernel (``tw:<name> expires=<ISO>``)."""
        text = f"{COMMENT_PREFIX}{self.name}"
        if self.expires is not None:
            text += f" expires={format_time(self.expires)}"
        return text


@dataclass(frozen=True)
class PolicyChain:
    name: str
    policy: str | None  # None: a user-defined chain
    rules: tuple[PolicyRule, ...] = ()


@dataclass(frozen=True)
class PolicyTable:
    family: int
    name: str
    chains: tuple[PolicyChain, ...] = ()
    unmanaged: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    tables: tuple[PolicyTable, ...] = ()
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)
    source: str | None = None

    def families(self) -> tuple[int, ...]:
        return tuple(sorted({t.family for t in self.tables}))

    def rules(self) -> Iterable[tuple[PolicyTable, PolicyChain, PolicyRule]]:
        for table in self.tables:
            for chain in table.chains:
                for rule in chain.rules:
                    yield table, chain, rule


def format_time(moment: _dt.datetime) -> str:
    return moment.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> _dt.datetime:
    """ISO 8601; a time without zone is UTC (a policy must not change meaning with the TZ)."""
    value = _dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return value


# -- reading YAML with line numbers ---------------------------------------------------------


class _Doc:
    """A YAML node tree turned into values that remember their line (for error messages)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, node: yaml.Node | None, message: str, token: str | None = None
              ) -> ParseError:
        line = node.start_mark.line + 1 if node is not None else None
        return ParseError(message, source=self.source, line=line, token=token)

    def mapping(self, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, f"{what} must be a mapping")
        seen: set[str] = set()
        out = []
        for key_node, value_node in node.value:
            key = self.scalar(key_node, f"a key in {what}")
            if key in seen:
                raise self.error(key_node, f"duplicate key in {what}", key)
            seen.add(key)
            out.append((key, key_node, value_node))
        return out

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, f"{what} must be a list")
        return list(node.value)

    def scalar(self, node: yaml.Node, what: str) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, f"{what} must be a single value")
        return str(node.value)


def _compose(path: Path) -> yaml.Node | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParseError("no such policy file", source=str(path)) from None
    except IsADirectoryError:
        raise ParseError("is a directory, not a policy file", source=str(path)) from None
    except UnicodeDecodeError:
        raise ParseError("not UTF-8 text", source=str(path)) from None
    try:
        return yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ParseError(f"not valid YAML: {exc.problem}", source=str(path),
                         line=mark.line + 1 if mark else None) from None


def is_policy_file(path: str | Path) -> bool:
    """A policy (YAML) rather than iptables-save text: by suffix, else by its first line."""
    p = Path(path)
    if p.suffix in (".yaml", ".yml"):
        return True
    try:
        with p.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.strip() and not line.lstrip().startswith("#"):
                    return line.startswith(("version:", "ipv4:", "ipv6:", "groups:",
                                            "include:"))
    except OSError:
        return False
    return False


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file (and its includes). Errors name the file and line."""
    return _load(Path(path), stack=())


def _load(path: Path, stack: tuple[Path, ...]) -> Policy:
    resolved = path.resolve()
    if resolved in stack:
        raise ParseError("include loop", source=str(path))
    doc = _Doc(str(path))
    root = _compose(path)
    if root is None:
        raise ParseError("empty policy file", source=str(path))
    groups: dict[str, tuple[str, ...]] = {}
    tables: dict[tuple[int, str], PolicyTable] = {}
    includes: list[Policy] = []
    version_seen = False
    for key, key_node, value in doc.mapping(root, "the policy"):
        if key == "version":
            if doc.scalar(value, "version") != "1":
                raise doc.error(value, "unsupported policy version (this trustwall reads 1)",
                                value.value)
            version_seen = True
        elif key == "include":
            for item in doc.sequence(value, "include"):
                included = path.parent / doc.scalar(item, "an include")
                if not included.exists():
                    raise doc.error(item, "included file not found", str(included))
                includes.append(_load(included, (*stack, resolved)))
        elif key == "groups":
            for name, name_node, members in doc.mapping(value, "groups"):
                if not NAME_RE.match(name):
                    raise doc.error(name_node, "bad group name", name)
                groups[name] = tuple(doc.scalar(m, f"a member of group {name}")
                                     for m in doc.sequence(members, f"group {name}"))
                if not groups[name]:
                    raise doc.error(members, f"group {name} is empty", name)
        elif key in FAMILY_KEYS:
            for table_name, table_node, table_value in doc.mapping(value, key):
                if table_name not in BUILTIN_CHAINS:
                    raise doc.error(table_node, f"unknown table under {key}", table_name)
                tables[(FAMILY_KEYS[key], table_name)] = _table(
                    doc, FAMILY_KEYS[key], table_name, table_value)
        else:
            raise doc.error(key_node, "unknown key (expected version, include, groups, ipv4, "
                            "ipv6)", key)
    if not version_seen and not stack:
        raise ParseError("the policy must say `version: 1`", source=str(path), line=1)
    merged = Policy(tuple(tables.values()), groups, str(path))
    for inc in includes:
        merged = _merge(merged, inc, doc)
    _check_names_and_groups(merged)
    if not stack:
        _check_jumps(merged)
    return merged


def _table(doc: _Doc, family: int, name: str, node: yaml.Node) -> PolicyTable:
    chains = []
    unmanaged: tuple[str, ...] = ()
    for chain_name, chain_node, chain_value in doc.mapping(node, f"table {name}"):
        if chain_name == "unmanaged":
            items = doc.sequence(chain_value, "unmanaged")
            unmanaged = tuple(doc.scalar(c, "an unmanaged chain") for c in items)
            for item, unmanaged_name in zip(items, unmanaged, strict=True):
                _valid_chain_name(doc, item, unmanaged_name)
            continue
        _valid_chain_name(doc, chain_node, chain_name)
        chains.append(_chain(doc, name, chain_name, chain_node, chain_value))
    builtin = BUILTIN_CHAINS[name]
    clash = set(unmanaged) & {c.name for c in chains}
    if clash:
        raise doc.error(node, "a chain cannot be both managed and unmanaged", sorted(clash)[0])
    bad = [c for c in unmanaged if c in builtin]
    if bad:
        raise doc.error(node, "a built-in chain cannot be unmanaged", bad[0])
    return PolicyTable(family, name, tuple(chains), unmanaged)


def _valid_chain_name(doc: _Doc, node: yaml.Node, name: str) -> None:
    from trustwall.firewall.iptables.fields import FieldError, chain_name

    try:
        chain_name(name)
    except FieldError as exc:
        raise doc.error(node, str(exc)) from None


def _chain(doc: _Doc, table: str, name: str, name_node: yaml.Node, node: yaml.Node
           ) -> PolicyChain:
    builtin = name in BUILTIN_CHAINS[table]
    if name.isupper() and not builtin and name in {"PREROUTING", "INPUT", "FORWARD", "OUTPUT",
                                                   "POSTROUTING"}:
        raise doc.error(name_node, f"table {table} has no built-in chain {name}", name)
    policy: str | None = None
    rules: list[PolicyRule] = []
    for key, key_node, value in doc.mapping(node, f"chain {name}"):
        if key == "policy":
            policy = doc.scalar(value, "policy").upper()
            if not builtin:
                raise doc.error(value, "only built-in chains have a policy", name)
            if policy not in POLICIES:
                raise doc.error(value, "policy must be ACCEPT or DROP", policy)
        elif key == "rules":
            rules.extend(_rule(doc, name, item) for item in doc.sequence(value, "rules"))
        else:
            raise doc.error(key_node, f"unknown key in chain {name} (expected policy, rules)",
                            key)
    if builtin and policy is None:
        policy = "ACCEPT"
    return PolicyChain(name, policy, tuple(rules))


def _rule(doc: _Doc, chain: str, node: yaml.Node) -> PolicyRule:
    fields: dict[str, str] = {}
    for key, key_node, value in doc.mapping(node, "a rule"):
        if key not in RULE_KEYS:
            expected = ", ".join(sorted(RULE_KEYS))
            raise doc.error(key_node, f"unknown key in a rule (expected {expected})", key)
        fields[key] = doc.scalar(value, key)
    line = node.start_mark.line + 1
    for required in ("name", "reason", "owner"):
        if not fields.get(required, "").strip():
            raise ParseError(f"rule needs `{required}`", source=doc.source, line=line)
    if "rule" not in fields:  # may be empty: a rule with no match and no target only counts
        raise ParseError("rule needs `rule`", source=doc.source, line=line)
    name = fields["name"]
    if not NAME_RE.match(name):
        raise ParseError("bad rule name (letters, digits, _ . : -; at most 63)",
                         source=doc.source, line=line, token=name)
    expires = None
    if fields.get("expires"):
        try:
            expires = parse_time(fields["expires"])
        except ValueError:
            raise ParseError("expires must be an ISO 8601 time", source=doc.source, line=line,
                             token=fields["expires"]) from None
    return PolicyRule(name=name, chain=chain, spec=fields["rule"], reason=fields["reason"],
                      owner=fields["owner"], ticket=fields.get("ticket"), expires=expires,
                      line=line, source=doc.source)


def _merge(base: Policy, other: Policy, doc: _Doc) -> Policy:
    for name in set(base.groups) & set(other.groups):
        if base.groups[name] != other.groups[name]:
            raise ParseError(f"group {name} is defined differently in {other.source}",
                             source=doc.source)
    keys = {(t.family, t.name) for t in base.tables}
    clash = [t for t in other.tables if (t.family, t.name) in keys]
    if clash:
        raise ParseError(f"table {clash[0].name} is defined both here and in {other.source}",
                         source=doc.source)
    return Policy((*base.tables, *other.tables), {**other.groups, **base.groups}, base.source)


def _check_names_and_groups(policy: Policy) -> None:
    seen: dict[tuple[int, str, str], PolicyRule] = {}
    for table, _, rule in policy.rules():
        key = (table.family, table.name, rule.name)
        if key in seen:
            raise ParseError(f"rule name {rule.name!r} is used twice in table {table.name}",
                             source=rule.source, line=rule.line)
        seen[key] = rule
        for ref in re.findall(r"@([A-Za-z0-9][A-Za-z0-9_.:-]*)", rule.spec):
            if ref not in policy.groups:
                raise ParseError(f"unknown group @{ref}", source=rule.source, line=rule.line)


def _check_jumps(policy: Policy) -> None:
    """Every rule parses, and every -j/-g names a target extension or a chain of the same
    table (iptables-restore --test accepts a jump to a missing chain; only the real restore
    refuses it)."""
    from trustwall.firewall.iptables.extensions import TARGET_NAMES

    for ptable in policy.tables:
        chains = set(BUILTIN_CHAINS[ptable.name]) | {c.name for c in ptable.chains}
        chains |= set(ptable.unmanaged)
        for pchain in ptable.chains:
            for prule in pchain.rules:
                for rule in compile_rule(prule, policy.groups, ptable.family):
                    target = rule.target_name
                    if target is None or target in chains:
                        continue
                    if target not in TARGET_NAMES:
                        raise ParseError(f"rule {prule.name} jumps to {target!r}, which is "
                                         "neither a chain of this table nor a known target",
                                         source=prule.source, line=prule.line, token=target)


# -- compiling -------------------------------------------------------------------------------


def expand_groups(spec: str, groups: dict[str, tuple[str, ...]]) -> list[str]:
    """Replace @group references: joined for list options, else one spec per member."""
    if "@" not in spec:
        return [spec]
    from trustwall.firewall.iptables.parse import tokenize

    words = tokenize(spec)
    variants: list[list[str]] = [[]]
    for i, word in enumerate(words):
        refs = re.fullmatch(r"@([A-Za-z0-9][A-Za-z0-9_.:-]*)", word)
        if refs is None:
            for v in variants:
                v.append(word)
            continue
        members = groups[refs.group(1)]
        if i > 0 and words[i - 1] in LIST_OPTIONS:
            for v in variants:
                v.append(",".join(members))
        else:
            variants = [[*v, m] for v in variants for m in members]
    return [" ".join(_quote(w) for w in v) for v in variants]


def _quote(word: str) -> str:
    if word and re.fullmatch(r"[A-Za-z0-9_@%+=:,./!-]+", word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def compile_rule(rule: PolicyRule, groups: dict[str, tuple[str, ...]], family: int
                 ) -> tuple[Rule, ...]:
    """The model rules one policy rule stands for, each marked with the rule's comment."""
    return _compile_rule(rule, tuple(sorted(groups.items())), family)


@lru_cache(maxsize=65536)
def _compile_rule(rule: PolicyRule, groups_items: tuple[tuple[str, tuple[str, ...]], ...],
                  family: int) -> tuple[Rule, ...]:
    # Cached: validation (load_policy) and compile_policy parse the same rules.
    from trustwall.firewall.iptables.fields import FieldError, check_rule
    from trustwall.firewall.iptables.parse import parse_rule_spec

    groups = dict(groups_items)
    out = []
    tag = Match("comment", (Option("comment", False, (rule.comment,)),))
    for spec in expand_groups(rule.spec, groups):
        parsed = parse_rule_spec(spec, chain=rule.chain, family=family, source=rule.source,
                                 line=rule.line)
        compiled = replace(parsed, matches=(*parsed.matches, tag), text="")
        try:
            check_rule(compiled)
        except FieldError as exc:
            raise ParseError(f"rule {rule.name}: {exc}", source=rule.source,
                             line=rule.line) from None
        out.append(compiled)
    return tuple(out)


def compile_policy(policy: Policy) -> dict[int, Ruleset]:
    """Policy -> one Ruleset per family (tables and chains in iptables-save order).

    Unmanaged chains appear empty here; :func:`merge_unmanaged` fills them from the live
    ruleset before applying, so the tools that own them keep their rules.
    """
    out: dict[int, Ruleset] = {}
    for family in policy.families():
        tables = []
        for ptable in sorted((t for t in policy.tables if t.family == family),
                             key=lambda t: list(BUILTIN_CHAINS).index(t.name)):
            chains = []
            builtin = BUILTIN_CHAINS[ptable.name]
            by_name = {c.name: c for c in ptable.chains}
            for name in builtin:
                pc = by_name.get(name, PolicyChain(name, "ACCEPT"))
                chains.append(_compile_chain(pc, policy, family))
            chains.extend(_compile_chain(c, policy, family) for c in ptable.chains
                          if c.name not in builtin)
            chains.extend(Chain(name) for name in ptable.unmanaged)
            tables.append(Table(ptable.name, tuple(chains)))
        out[family] = Ruleset(family, tuple(tables))
    return out


def _compile_chain(pc: PolicyChain, policy: Policy, family: int) -> Chain:
    rules: list[Rule] = []
    for prule in pc.rules:
        rules.extend(compile_rule(prule, policy.groups, family))
    return Chain(pc.name, pc.policy, None, tuple(rules))


def merge_unmanaged(compiled: Ruleset, live: Ruleset, policy: Policy) -> Ruleset:
    """Copy the live contents of the chains the policy leaves alone into ``compiled``.

    Jumps into those chains from built-in chains are the other tool's business too (Docker
    inserts ``-j DOCKER-USER`` in FORWARD): a live rule in a managed chain that jumps to an
    unmanaged chain and carries no ``tw:`` comment is kept, at the top, in live order.
    """
    tables = []
    for table in compiled.tables:
        ptable = next((t for t in policy.tables
                       if t.family == compiled.family and t.name == table.name), None)
        live_table = live.table(table.name)
        if ptable is None or not ptable.unmanaged or live_table is None:
            tables.append(table)
            continue
        chains = []
        for chain in table.chains:
            live_chain = live_table.chain(chain.name)
            if chain.name in ptable.unmanaged:
                chains.append(live_chain if live_chain is not None else chain)
                continue
            foreign = tuple(r for r in (live_chain.rules if live_chain else ())
                            if r.target_name in ptable.unmanaged and not _managed(r))
            chains.append(replace(chain, rules=foreign + chain.rules) if foreign else chain)
        tables.append(replace(table, chains=tuple(chains)))
    return replace(compiled, tables=tuple(tables))


def _managed(rule: Rule) -> bool:
    return any((m.comment or "").startswith(COMMENT_PREFIX) for m in rule.matches
               if m.module == "comment")


def rule_name(rule: Rule) -> str | None:
    """The policy name a live rule carries (``tw:<name>``), or None for an unmanaged rule."""
    for m in rule.matches:
        if m.module == "comment" and (m.comment or "").startswith(COMMENT_PREFIX):
            return (m.comment or "")[len(COMMENT_PREFIX):].split(" ")[0] or None
    return None


def rule_expiry(rule: Rule) -> _dt.datetime | None:
    """The ``expires=`` time a live rule's trustwall comment carries, if any."""
    for m in rule.matches:
        text = m.comment or "" if m.module == "comment" else ""
        if text.startswith(COMMENT_PREFIX):
            found = re.search(r"\bexpires=(\S+)", text)
            if found:
                try:
                    return parse_time(found.group(1))
                except ValueError:
                    return None
    return None


def rule_changes(before: Ruleset, after: Ruleset) -> list[str]:
    """Named rules added, removed or changed between two rulesets (``+ jmx (filter INPUT)``).

    Rules are matched by their ``tw:`` name; unnamed rules are counted per chain.
    """
    def named(ruleset: Ruleset) -> dict[tuple[str, str, str], list[Rule]]:
        out: dict[tuple[str, str, str], list[Rule]] = {}
        for table in ruleset.tables:
            for chain in table.chains:
                for rule in chain.rules:
                    out.setdefault((table.name, chain.name, rule_name(rule) or ""), []
                                   ).append(rule)
        return out

    a, b = named(before), named(after)
    unnamed = {(t, c): set(rules) for (t, c, n), rules in a.items() if not n}
    lines = []
    adopted: dict[tuple[str, str], int] = {}
    for key in sorted(set(a) | set(b)):
        table, chain, name = key
        old, new = a.get(key, []), b.get(key, [])
        where = f"({table} {chain})"
        if name and not old:
            # A rule that ran unnamed and now carries its policy name is adopted, not new.
            was = unnamed.get((table, chain), set())
            if all(strip_names(r) in was for r in new):
                adopted[(table, chain)] = adopted.get((table, chain), 0) + len(new)
                continue
            lines.append(f"+ {name} {where}")
        elif name and not new:
            lines.append(f"- {name} {where}")
        elif name and old != new:
            lines.append(f"~ {name} {where}")
    for (table, chain), count in sorted(adopted.items()):
        lines.append(f"= {count} running rule(s) now named by the policy ({table} {chain})")
    for table, chain in sorted({(t, c) for t, c, n in set(a) | set(b) if not n}):
        left = len(b.get((table, chain, ""), []))
        gone = len(a.get((table, chain, ""), [])) - adopted.get((table, chain), 0) - left
        if gone > 0:
            lines.append(f"- {gone} unnamed rule(s) ({table} {chain})")
    return lines


def strip_names(rule: Rule) -> Rule:
    """The rule without its ``tw:`` comment match (what it was before the policy named it)."""
    return replace(rule, matches=tuple(
        m for m in rule.matches
        if not (m.module == "comment" and (m.comment or "").startswith(COMMENT_PREFIX))))


# -- importing -------------------------------------------------------------------------------


def import_policy(rulesets: Iterable[Ruleset], *, owner: str = "unknown",
                  reason: str = "imported from the running firewall") -> str:
    """A policy (YAML text) that compiles back to exactly these rulesets."""
    from trustwall.firewall.iptables.render import rule_spec

    doc: dict[str, Any] = {"version": 1}
    for ruleset in sorted(rulesets, key=lambda r: r.family):
        fam: dict[str, Any] = {}
        for table in ruleset.tables:
            tdoc: dict[str, Any] = {}
            used: dict[str, int] = {}
            for chain in table.chains:
                cdoc: dict[str, Any] = {}
                if chain.policy is not None:
                    cdoc["policy"] = chain.policy
                rules = []
                for number, rule in enumerate(chain.rules, 1):
                    name, expires, stripped = _import_name(rule, chain.name, number, used)
                    spec = rule_spec(stripped)
                    if any("\udc80" <= c <= "\udcff" for c in spec):  # surrogateescape'd
                        raise BadInput(f"{table.name} {chain.name} rule {number} holds bytes "
                                       f"that are not UTF-8: {spec!a}",
                                       hint="a policy file is UTF-8 text: change that rule's "
                                            "comment first")
                    entry: dict[str, Any] = {"name": name, "rule": spec,
                                             "reason": reason, "owner": owner}
                    if expires is not None:
                        entry["expires"] = format_time(expires)
                    rules.append(entry)
                if rules:
                    cdoc["rules"] = rules
                tdoc[chain.name] = cdoc
            fam[table.name] = tdoc
        doc["ipv4" if ruleset.family == 4 else "ipv6"] = fam
    header = ("# trustwall firewall policy — edit, review in git, then:\n"
              "#   trustwall fw diff policy.yaml    (the packets whose verdict changes)\n"
              "#   trustwall fw apply policy.yaml   (shows the change, asks, applies)\n")
    return header + yaml.dump(doc, Dumper=_DUMPER, sort_keys=False, allow_unicode=True,
                              width=1000)


def _import_name(rule: Rule, chain: str, number: int, used: dict[str, int]
                 ) -> tuple[str, _dt.datetime | None, Rule]:
    """Name for an imported rule: its tw: comment, else its comment, else chain-number."""
    name = rule_name(rule)
    expires = rule_expiry(rule)
    stripped = rule
    if name is not None:
        stripped = strip_names(rule)
    else:
        slug = _slug(rule.comment or "")
        # a chain name may hold any character but blanks (good~stuff): slug it too
        prefix = _slug(chain.lower()).lstrip("_.:") or "rule"
        name = slug if slug and NAME_RE.match(slug) else f"{prefix}-{number}"
    # ``used`` maps each name taken to the next suffix to try (linear, not quadratic, when
    # thousands of rules share one comment).
    base = name
    while name in used:
        used[base] += 1
        name = f"{base}-{used[base]}"
    used.setdefault(base, 1)
    used[name] = used.get(name, 1)
    return name, expires, stripped


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.:-]+", "-", text).strip("-")[:40]


def policy_ruleset(path: str | Path, *, family: int | None = None,
                   live: Ruleset | None = None) -> Ruleset:
    """The ruleset a policy file compiles to for one family (``live``'s, else the given one,
    else the lowest it has); with ``live``, unmanaged chains are filled from it as apply does."""
    policy = load_policy(path)
    compiled = compile_policy(policy)
    family = live.family if live is not None else family or min(compiled, default=4)
    if family not in compiled:
        raise BadInput(f"{path}: the policy has no ipv{family} part")
    if live is None:
        return compiled[family]
    return merge_unmanaged(compiled[family], live, policy)


def compile_text(policy: Policy) -> dict[int, str]:
    """iptables-restore text per family: what the kernel's iptables-save will print back."""
    from trustwall.firewall.iptables.render import render_save

    return {family: render_save(ruleset) for family, ruleset in compile_policy(policy).items()}
