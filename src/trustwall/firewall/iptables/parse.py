"""iptables-save text and iptables command lines -> the model.

Two entry points: :func:`parse_save` reads iptables-save / ip6tables-save output (with or
without ``-c`` counters, several dumps, CRLF, the old ``-d ! x`` negation of iptables 1.4) and
:func:`parse_command` reads what a user types (``-A INPUT -p tcp --dport 22 -j ACCEPT``).

Options are resolved the way iptables resolves them (getopt_long over one merged table): the
most recently loaded extension wins an exact name, a unique prefix is accepted (``--dport``
after ``-m multiport`` is multiport's ``--dports``), and an option no loaded extension knows
loads the match named after the protocol (``-p tcp --dport 22`` implies ``-m tcp``). Values are
brought to the spelling iptables-save prints, so rendering is a plain walk over the model.
Every failure is a :class:`~trustwall.errors.ParseError` naming the line and the token.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache

from trustwall.errors import ParseError
from trustwall.firewall.iptables import extensions as ext
from trustwall.firewall.iptables.model import (
    BUILTIN_CHAINS,
    MAX_CHAIN_NAME,
    MAX_IFACE_NAME,
    NO_IN_HOOKS,
    NO_OUT_HOOKS,
    Address,
    Chain,
    Counters,
    Interface,
    IPAddress,
    Match,
    Option,
    Protocol,
    Rule,
    Ruleset,
    Table,
    Target,
)
from trustwall.firewall.protocols import protocol_name, protocol_number

# Matches iptables loads by itself when -p names the protocol and an option needs it.
_PROTO_MATCH = {"tcp": "tcp", "udp": "udp", "udplite": "udplite", "sctp": "sctp",
                "dccp": "dccp", "icmp": "icmp", "ipv6-icmp": "icmp6", "esp": "esp",
                "ah": "ah", "mh": "mh"}

_GLOBAL_LONG = {
    "source": "s", "src": "s", "destination": "d", "dst": "d", "in-interface": "i",
    "out-interface": "o", "protocol": "p", "fragment": "f", "match": "m", "jump": "j",
    "goto": "g", "set-counters": "c", "ipv4": "4", "ipv6": "6",
}
_SHORT_WITH_ARG = set("sdiopmjgc")

_TARGET_NAME = re.compile(r"^[^\s!-][^\s]*$")


_BLANKS = re.compile("[ \t]+")


def split_words(text: str) -> list[str]:
    """Words separated by spaces and tabs only, as iptables-restore separates them: a ``\r``
    or a Unicode space inside a word stays part of it (str.split would cut there)."""
    if text.isprintable():  # no tab, control character or non-ASCII space: str.split agrees
        return text.split()
    return [w for w in _BLANKS.split(text) if w]


def split_lines(text: str) -> list[str]:
    """Lines as iptables-restore reads them: cut at ``\n`` only (str.splitlines also cuts at
    ``\r``, ``\v``, ``\f``, ``\x1c``-``\x1e``, ``\x85`` and ``\u2028``, which may sit inside a
    kernel rule's comment or interface name)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def tokenize(line: str) -> list[str]:
    """Split a restore line into words the way iptables-restore does (double quotes only)."""
    if '"' not in line:
        return split_words(line)
    words: list[str] = []
    cur: list[str] = []
    in_word = quoted = False
    i = 0
    while i < len(line):
        ch = line[i]
        if quoted:
            if ch == "\\" and i + 1 < len(line) and line[i + 1] in "\"\\'":
                cur.append(line[i + 1])
                i += 2
                continue
            if ch == '"':
                quoted = False
            else:
                cur.append(ch)
        elif ch == '"':
            quoted = in_word = True
        elif ch in " \t":
            if in_word:
                words.append("".join(cur))
                cur, in_word = [], False
        else:
            cur.append(ch)
            in_word = True
        i += 1
    if quoted:
        raise ValueError("unterminated quote")
    if in_word:
        words.append("".join(cur))
    return words


@lru_cache(maxsize=65536)
def _network(text: str, family: int
             ) -> ipaddress.IPv4Network | ipaddress.IPv6Network | tuple[IPAddress, IPAddress]:
    """The network of ``-s``/``-d``; (address, mask) for a non-contiguous mask."""
    addr, slash, mask = text.partition("/")
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        raise ext.BadValue(f"host/network {text!r} not found (trustwall reads numeric "
                           "addresses only)") from None
    if ip.version != family:
        raise ext.BadValue(f"{text!r} is not an IPv{family} address")
    if not slash:
        return ipaddress.ip_network(ip)
    if mask.isdigit():
        if int(mask) > ip.max_prefixlen:
            raise ext.BadValue(f"invalid mask {mask!r} specified")
        return ipaddress.ip_network(f"{ip}/{int(mask)}", strict=False)
    try:
        return ipaddress.ip_network(f"{ip}/{mask}", strict=False)
    except ValueError:
        pass
    try:
        bits = ipaddress.ip_address(mask)
    except ValueError:
        raise ext.BadValue(f"invalid mask {mask!r}") from None
    if bits.version != family:
        raise ext.BadValue(f"invalid mask {mask!r}")
    # a non-contiguous mask (255.0.255.0): the kernel keeps address & mask and the mask
    return ip, bits  # type: ignore[return-value]


@dataclass
class _Ext:
    """An extension being filled while a rule is read."""

    name: str
    spec: ext.ExtSpec | None
    options: list[Option] = field(default_factory=list)
    is_target: bool = False
    implicit: bool = False


_TAIL_CACHE: dict[tuple[object, ...], tuple[tuple[Match, ...], Target | None]] = {}
_TAIL_OPENERS = frozenset({"-m", "--match", "-j", "--jump", "-g", "--goto"})
_HEADER_WORDS = frozenset({"-s", "-d", "-i", "-o", "-p", "-f", "-c", "-4", "-6"})


def _tail_start(words: list[str]) -> int | None:
    """Index where the matches and target begin, when the rule is "header, then tail"."""
    for i, w in enumerate(words):
        if w in _TAIL_OPENERS:
            if i > 0 and words[i - 1] == "!":
                return None
            for t in words[i:]:
                if t[:2] in _HEADER_WORDS:
                    return None
            return i
        if _looks_like_option(w) and w not in _HEADER_WORDS:
            return None  # e.g. an implied match's --dport before the first -m/-j
    return None


@dataclass(frozen=True)
class Command:
    """A parsed iptables command: ``action`` is A, I, D or R; ``number`` the rule position."""

    action: str
    table: str
    chain: str
    rules: tuple[Rule, ...]
    number: int | None = None


def _looks_like_option(word: str) -> bool:
    return len(word) > 1 and word[0] == "-" and not word[1].isdigit()


class _RuleReader:
    """Reads one rule specification (everything after ``-A CHAIN``)."""

    def __init__(self, words: Sequence[str], chain: str, family: int, where: dict[str, object],
                 text: str, strict: bool = True) -> None:
        self.strict = strict
        self.words = list(words)
        self.chain = chain
        self.family = family
        self.where = where
        self.text = text
        self.pos = 0
        self.fields: dict[str, object] = {}
        self.exts: list[_Ext] = []
        self.target: _Ext | None = None
        self.counters: Counters | None = None

    def fail(self, message: str, token: str | None = None) -> ParseError:
        return ParseError(message, token=token, **self.where)  # type: ignore[arg-type]

    # -- token helpers --
    def take(self, opt: str) -> str:
        if self.pos >= len(self.words):
            raise self.fail(f"option {opt!r} requires an argument", opt)
        word = self.words[self.pos]
        self.pos += 1
        return word

    def old_negation(self) -> bool:
        """iptables 1.4 accepted ``-d ! x`` / ``--dport ! 22``; so do we."""
        if (self.pos + 1 < len(self.words) and self.words[self.pos] == "!"
                and not _looks_like_option(self.words[self.pos + 1])):
            self.pos += 1
            return True
        return False

    def read(self) -> Rule:
        """Parse the words; the matches and target come from a cache when seen before.

        Real rulesets repeat the same tail (``-m tcp --dport 22 -j ACCEPT``) under many
        addresses, and the tail's meaning depends only on itself, the protocol, the family,
        the chain and strictness: so a rule whose header (``-s -d -i -o -p -f``) comes before
        its first ``-m``/``-j``/``-g`` reuses the parsed tail.
        """
        split = _tail_start(self.words)
        if split is None:
            self._consume()
            return self.finish()
        tail = self.words[split:]
        self.words = self.words[:split]
        self._consume()
        key = (tuple(tail), self.family, self.strict, self.chain, self.fields.get("p"))
        cached = _TAIL_CACHE.get(key)
        if cached is not None:
            return self.finish(cached)
        before = (dict(self.fields), self.counters)
        self.words += tail
        self._consume()
        rule = self.finish()
        if (dict(self.fields), self.counters) == before and len(_TAIL_CACHE) < 50_000:
            _TAIL_CACHE[key] = (rule.matches, rule.target)
        return rule

    def _consume(self) -> None:
        negate = False
        while self.pos < len(self.words):
            word = self.words[self.pos]
            self.pos += 1
            if word == "!":
                if negate:
                    raise self.fail("multiple consecutive ! not allowed", word)
                negate = True
                continue
            if word.startswith("--") and len(word) > 2:
                name, eq, value = word[2:].partition("=")
                if eq:
                    self.words.insert(self.pos, value)
                self.long_option(name, word, negate)
            elif word.startswith("-") and len(word) > 1 and not word[1].isdigit():
                self.short_option(word, negate)
            else:
                raise self.fail("bad argument", word)
            negate = False
        if negate:
            raise self.fail("trailing ! without an option", "!")

    def short_option(self, word: str, negate: bool) -> None:
        letter, rest = word[1], word[2:]
        if letter in _SHORT_WITH_ARG and rest:
            self.words.insert(self.pos, rest)
        elif rest:
            raise self.fail("unknown option", word)
        self.global_option(letter, word, negate)

    def global_option(self, letter: str, word: str, negate: bool) -> None:
        if letter in "46":
            if int(letter) != self.family:
                raise self.fail(f"this is an IPv{self.family} rule", word)
            return
        if letter == "f":
            if self.family == 6:
                raise self.fail("-f is IPv4 only", word)
            self._set("f", not negate, word)
            return
        if letter == "c":
            self.set_counters(word, negate)
            return
        if letter not in "sdiopmjg":
            raise self.fail("unknown option", word)
        value = self.take(word)
        if self.old_negation() or (value == "!" and self.pos < len(self.words)):
            if value == "!":
                value = self.take(word)
            negate = True
        if letter == "m":
            if negate:
                raise self.fail("unexpected ! before -m", word)
            self.load_match(value, word)
        elif letter in "jg":
            if negate:
                raise self.fail("cannot invert -j/-g", word)
            self.set_target(value, letter == "g", word)
        else:
            self._set(letter, (value, negate), word)

    def _set(self, key: str, value: object, word: str) -> None:
        if key in self.fields:
            raise self.fail(f"multiple {word} flags not allowed", word)
        self.fields[key] = value

    def set_counters(self, word: str, negate: bool) -> None:
        if negate:
            raise self.fail("cannot invert -c", word)
        first = self.take(word)
        if "," in first:
            pkts, _, byts = first.partition(",")
        else:
            pkts, byts = first, self.take(word)
        if not (pkts.isdigit() and byts.isdigit()):
            raise self.fail("invalid counter values", first)
        self.counters = Counters(int(pkts), int(byts))

    def load_match(self, name: str, word: str) -> _Ext:
        spec = ext.MATCHES.get(name)
        if spec is not None and spec.family not in (0, self.family):
            if self.strict:
                raise self.fail(f"match {name!r} is IPv{spec.family} only", name)
            spec = None
        item = _Ext(name, spec)
        self.exts.append(item)
        return item

    def set_target(self, name: str, goto: bool, word: str) -> None:
        if self.target is not None:
            raise self.fail("multiple -j/-g flags not allowed", word)
        if not name or not _TARGET_NAME.match(name) or len(name) > MAX_CHAIN_NAME:
            raise self.fail(f"invalid target name {name!r} (at most {MAX_CHAIN_NAME} chars)",
                            name)
        self.target = _Ext(name, ext.TARGETS.get(name), is_target=True)
        self.target.implicit = goto  # reused as the goto flag for targets

    def candidates(self, name: str) -> list[tuple[_Ext | None, str]]:
        """(owner, canonical option name) for every option ``--name`` could mean."""
        owners: list[_Ext] = list(reversed(self.exts))
        if self.target is not None:
            owners.insert(0, self.target)
        if name in _GLOBAL_LONG:
            return [(None, _GLOBAL_LONG[name])]
        for owner in owners:  # fast path: an exact name, most recently loaded first
            if owner.spec is not None:
                hit = owner.spec.option(name)
                if hit is not None:
                    return [(owner, hit.name)]
        exact: list[tuple[_Ext | None, str]] = []
        prefix: list[tuple[_Ext | None, str]] = []
        for glob, letter in _GLOBAL_LONG.items():
            if glob == name:
                exact.append((None, letter))
            elif glob.startswith(name):
                prefix.append((None, letter))
        for owner in owners:
            if owner.spec is None:
                continue
            for o in owner.spec.options:
                for n in (o.name, *o.aliases):
                    if n == name:
                        exact.append((owner, o.name))
                    elif n.startswith(name):
                        prefix.append((owner, o.name))
        if exact:
            return exact[:1]
        unique = {(id(o), n): (o, n) for o, n in prefix}
        by_global = {n for o, n in unique.values() if o is None}
        if len(by_global) == 1 and len(unique) > 1 and all(o is None for o, _ in unique.values()):
            return [next(iter(unique.values()))]
        return list(unique.values())

    def long_option(self, name: str, word: str, negate: bool) -> None:
        found = self.candidates(name)
        if found and found[0][0] is None and self._generic_owner() is not None \
                and name not in _GLOBAL_LONG:
            # An unknown extension's own option (policy's --proto, recent's --set) must not
            # be taken for an abbreviated global option.
            found = []
        if not found:
            implicit = self.implicit_match(name)
            if implicit is not None:
                found = self.candidates(name)
        if len(found) > 1:
            raise self.fail(f"option {word!r} is ambiguous", word)
        if not found:
            generic = self._generic_owner()
            if generic is None and not self.strict and self.exts:
                generic = self.exts[-1]
            if generic is None:
                raise self.fail("unknown option", word)
            self.generic_option(generic, name, negate)
            return
        owner, canonical = found[0]
        if owner is None:
            self.global_option(canonical, word, negate)
            return
        assert owner.spec is not None
        self.known_option(owner, owner.spec.option(canonical), word, negate)  # type: ignore[arg-type]

    def _generic_owner(self) -> _Ext | None:
        """The latest loaded extension that trustwall has no table for, if any."""
        owners = [*self.exts, *([self.target] if self.target is not None else [])]
        return next((e for e in reversed(owners) if e.spec is None), None)

    def implicit_match(self, name: str) -> _Ext | None:
        proto = self.fields.get("p")
        if proto is None or any(e.implicit for e in self.exts):
            return None
        pname, negated = proto  # type: ignore[misc]
        try:
            canonical = protocol_name(protocol_number(pname))
        except ext.BadValue:
            return None
        module = _PROTO_MATCH.get(canonical)
        spec = ext.MATCHES.get(module or "")
        if spec is None or negated or spec.family not in (0, self.family):
            return None
        if not any(o.name.startswith(name) or any(a.startswith(name) for a in o.aliases)
                   for o in spec.options):
            return None
        if any(e.name == module for e in self.exts):
            return None
        item = self.load_match(module, name)  # type: ignore[arg-type]
        item.implicit = True
        return item

    def known_option(self, owner: _Ext, spec: ext.OptSpec, word: str, negate: bool) -> None:
        values: list[str] = []
        if spec.nargs == "?":
            if self.pos < len(self.words) and not _looks_like_option(self.words[self.pos]) \
                    and self.words[self.pos] != "!":
                values.append(self.take(word))
        else:
            if isinstance(spec.nargs, int) and spec.nargs > 0 and self.old_negation():
                negate = True
            for _ in range(int(spec.nargs)):
                values.append(self.take(word))
        if spec.name == "tcp-flags" and len(values) == 2 and values[0] == "!":
            raise self.fail("bad --tcp-flags", word)
        try:
            if spec.kind != "raw":
                values = [ext.canonical(spec.kind, v) for v in values]
        except ext.BadValue as exc:
            if self.strict:
                raise self.fail(str(exc), " ".join(values) or word) from None
            # A saved file is what some iptables once printed (anonymised MACs, reversed
            # port ranges of iptables 1.4): keep the value as written.
        if owner.spec is not None and any(o.name == spec.name for o in owner.options):
            raise self.fail(f"multiple --{spec.name} flags not allowed", word)
        owner.options.append(Option(spec.name, negate, tuple(values)))

    def generic_option(self, owner: _Ext, name: str, negate: bool) -> None:
        values: list[str] = []
        if self.old_negation():
            negate = True
        while self.pos < len(self.words):
            word = self.words[self.pos]
            if word == "!" or _looks_like_option(word):
                break
            values.append(word)
            self.pos += 1
        owner.options.append(Option(name, negate, tuple(values)))

    # -- building the rule --
    def finish(self, tail: tuple[tuple[Match, ...], Target | None] | None = None) -> Rule:
        proto = self._protocol()
        if tail is not None:
            matches, target = tail
        else:
            matches = tuple(self._finish_match(e, proto) for e in self.exts)
            target = self._finish_target(proto) if self.target is not None else None
        iface: dict[str, Interface | None] = {}
        for key in "io":
            iface[key] = None
            if key in self.fields:
                name, neg = self.fields[key]  # type: ignore[misc]
                if len(name) > MAX_IFACE_NAME or not name:
                    raise self.fail(f"interface name {name!r} must be shorter than "
                                    f"{MAX_IFACE_NAME + 1} chars", name)
                if name == "+" and not neg:
                    continue
                iface[key] = Interface(name, neg)
        addrs: dict[str, Address | None] = {}
        for key in "sd":
            addrs[key] = None
            if key in self.fields:
                text, neg = self.fields[key]  # type: ignore[misc]
                try:
                    net = _network(text, self.family)
                except ext.BadValue as exc:
                    raise self.fail(str(exc), text) from None
                if isinstance(net, tuple):
                    addrs[key] = Address.masked(*net, negated=neg)
                    continue
                if neg and net.prefixlen == 0:
                    # nft cannot express "not any address" (QUIRKS)
                    raise self.fail("cannot negate the whole address space", text)
                if net.prefixlen == 0 and not neg:
                    continue
                addrs[key] = Address(net, neg)
        frag = self.fields.get("f")
        return Rule(
            chain=self.chain, matches=matches, target=target, protocol=proto,
            source=addrs["s"], destination=addrs["d"], in_interface=iface["i"],
            out_interface=iface["o"], fragment=frag,  # type: ignore[arg-type]
            counters=self.counters, text=self.text,
        )

    def _protocol(self) -> Protocol | None:
        if "p" not in self.fields:
            return None
        text, neg = self.fields["p"]  # type: ignore[misc]
        try:
            number = protocol_number(text)
        except ext.BadValue as exc:
            raise self.fail(str(exc), text) from None
        if number == 0:
            if neg:
                raise self.fail("rule would never match protocol", text)
            return None
        name = protocol_name(number)
        if self.family == 6 and name == "icmp":
            pass
        return Protocol(name, neg)

    def _finish_match(self, item: _Ext, proto: Protocol | None) -> Match:
        spec = item.spec
        row = ext.MATCH_EXTENSIONS.get(item.name)
        if spec is None:
            if self.strict and not item.options and not (row is not None and row.bare):
                raise self.fail(f"match {item.name!r} needs an option", item.name)
            if self.strict and row is not None and row.check is not None:
                problem = row.check(list(item.options), ext.Context(self.family, self.chain,
                                                                    proto))
                if problem is not None:
                    raise self.fail(problem, item.name)
            return Match(item.name, tuple(item.options))
        assert row is not None
        given = {o.name for o in item.options}
        if spec.required and not given & set(spec.required):
            need = " or ".join("--" + r for r in spec.required[:3])
            raise self.fail(f"match {item.name!r} needs {need}", item.name)
        if spec.proto and (proto is None or proto.negated or proto.name not in spec.proto):
            raise self.fail(f"match {item.name!r} needs -p {'/'.join(spec.proto)}", item.name)
        options = [o for o in item.options
                   if o.negated or (item.name, o.name) not in ext.DROP_FULL
                   or o.values != (ext.DROP_FULL[item.name, o.name],)]
        ctx = ext.Context(self.family, self.chain, proto)
        try:
            if row.finish is not None:
                options = row.finish(options, ctx)
            problem = row.check(options, ctx) if self.strict and row.check else None
        except ext.Refused as exc:
            raise self.fail(str(exc), exc.word) from None
        if problem is not None:
            raise self.fail(problem, item.name)
        if len(options) > 1:
            order = ext.save_order(spec)
            options.sort(key=lambda o: order.get(o.name, len(order)))
        return Match(item.name, tuple(options))

    def _finish_target(self, proto: Protocol | None) -> Target:
        item = self.target
        assert item is not None
        options = list(item.options)
        row = ext.TARGET_EXTENSIONS.get(item.name)
        ctx = ext.Context(self.family, self.chain, proto)
        if self.strict and row is not None:
            if any(o.negated for o in options):
                raise self.fail(f"{item.name}: target options cannot be negated", item.name)
            problem = row.check(options, ctx) if row.check is not None else None
            if problem is not None:
                raise self.fail(problem, item.name)
            if not options and row.needs_option:
                raise self.fail(f"target {item.name} needs an option", item.name)
            if item.spec is not None and item.spec.required \
                    and not {o.name for o in options} & set(item.spec.required):
                raise self.fail(f"target {item.name} needs --{item.spec.required[0]}",
                                item.name)
        if row is not None and row.finish is not None:
            try:
                options = row.finish(options, ctx)
            except ext.Refused as exc:
                raise self.fail(str(exc), exc.word) from None
        if item.spec is not None:
            order = ext.save_order(item.spec)
            options.sort(key=lambda o: order.get(o.name, len(order)))
        return Target(item.name, tuple(options), goto=item.implicit)


def parse_rule_spec(words: Sequence[str] | str, *, chain: str, family: int = 4,
                    table: str | None = None, source: str | None = None,
                    line: int | None = None) -> Rule:
    """Read the part of a rule after ``-A CHAIN`` (a string is split like iptables-restore).

    With ``table``, a rule in a built-in chain is also checked against what the kernel allows
    at that hook (``-o`` in INPUT, DNAT outside nat PREROUTING/OUTPUT, ``-m owner`` in INPUT…).
    """
    where: dict[str, object] = {"source": source, "line": line}
    if isinstance(words, str):
        text = words
        try:
            words = tokenize(words)
        except ValueError as exc:
            raise ParseError(str(exc), token=text, source=source, line=line) from None
    else:
        text = " ".join(words)
    rule = _RuleReader(words, chain, family, where, text).read()
    if table is not None:
        problem = hook_problem(rule, table)
        if problem is not None:
            raise ParseError(problem, token=chain, source=source, line=line)
    return rule


def hook_problem(rule: Rule, table: str) -> str | None:
    """Why the kernel would refuse ``rule`` in its (built-in) chain of ``table``, or None."""
    chain = rule.chain
    if chain not in BUILTIN_CHAINS.get(table, ()):
        return None  # user chains are checked where they are jumped to, at load time
    if rule.in_interface is not None and chain in NO_IN_HOOKS:
        return f"can't use -i with {chain}"
    if rule.out_interface is not None and chain in NO_OUT_HOOKS:
        return f"can't use -o with {chain}"
    for m in rule.matches:  # where the kernel accepts it: xt_*.c .table / .hooks
        row = ext.MATCH_EXTENSIONS.get(m.module)
        if row is not None and row.hooks is not None and chain not in row.hooks:
            return f"match {m.module!r} is not valid in {chain}"
    row = ext.TARGET_EXTENSIONS.get(rule.target.name) if rule.target is not None else None
    if row is not None:
        if row.tables is not None and table not in row.tables:
            return f"target {row.name} is only valid in table(s) {', '.join(sorted(row.tables))}"
        if row.hooks is not None and chain not in row.hooks:
            return f"target {row.name} is not valid in {chain}"
    return None


def parse_command(argv: Sequence[str] | str, *, family: int = 4) -> Command:
    """Read an iptables command line (``-A``/``-I``/``-D``/``-R`` with an optional ``-t``)."""
    words = tokenize(argv) if isinstance(argv, str) else list(argv)
    if words and words[0] in ("iptables", "ip6tables"):
        family = 6 if words[0] == "ip6tables" else family
        words = words[1:]
    table = "filter"
    action = chain = None
    number: int | None = None
    rest: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w in ("-t", "--table") and i + 1 < len(words):
            table = words[i + 1]
            i += 2
            continue
        if w in ("-A", "--append", "-I", "--insert", "-D", "--delete", "-R", "--replace"):
            if action is not None or i + 1 >= len(words):
                raise ParseError("one of -A/-I/-D/-R with a chain is needed", token=w)
            action = {"-A": "A", "--append": "A", "-I": "I", "--insert": "I", "-D": "D",
                      "--delete": "D", "-R": "R", "--replace": "R"}[w]
            chain = words[i + 1]
            i += 2
            if i < len(words) and words[i].isdigit() and action in "IDR":
                number = int(words[i])
                if number < 1:
                    raise ParseError("rule numbers start at 1", token=words[i])
                i += 1
            continue
        rest.append(w)
        i += 1
    if action is None or chain is None:
        raise ParseError("no command: expected -A, -I, -D or -R CHAIN", token=" ".join(words))
    if table not in BUILTIN_CHAINS:
        raise ParseError(f"unknown table {table!r}", token=table)
    if action == "R" and number is None:
        raise ParseError("-R needs a rule number", token=chain)
    if action == "D" and number is not None and not rest:
        return Command(action, table, chain, (), number)
    rules = tuple(parse_rule_spec(words, chain=chain, family=family)
                  for words in _expand_address_lists(rest))
    return Command(action, table, chain, rules, number if action != "A" else None)


_ADDRESS_OPTIONS = frozenset({"-s", "--source", "--src", "-d", "--destination", "--dst"})


def _expand_address_lists(words: list[str]) -> list[list[str]]:
    """iptables turns ``-s a,b`` into one rule per address (and per -d address)."""
    lists = [i for i, w in enumerate(words[:-1])
             if w in _ADDRESS_OPTIONS and "," in words[i + 1]]
    if not lists:  # the usual case: a comma elsewhere (multiport, a comment)
        return [words]
    out = [list(words)]
    for i in lists:
        out = [[*v[:i + 1], addr, *v[i + 2:]] for v in out for addr in words[i + 1].split(",")]
    return out


# -- iptables-save files -------------------------------------------------------------------

_COUNTERS = re.compile(r"^\[(\d+):(\d+)\]$")


@dataclass
class _TableBuilder:
    name: str
    chains: dict[str, tuple[str | None, Counters | None]] = field(default_factory=dict)
    rules: dict[str, list[Rule]] = field(default_factory=dict)

    def build(self) -> Table:
        builtin = BUILTIN_CHAINS.get(self.name, ())
        for c in builtin:
            # iptables-restore creates every built-in chain of a table it loads
            self.chains.setdefault(c, ("ACCEPT", None))
        order = [*builtin, *(c for c in self.chains if c not in builtin)]
        return Table(self.name, tuple(
            Chain(name, self.chains[name][0], self.chains[name][1],
                  tuple(self.rules.get(name, ()))) for name in order))


def _guess_family(text: str) -> int:
    """ip6tables-save names itself in its header; else the addresses (or ICMPv6) tell."""
    head = text[:400]
    if "ip6tables" in head:
        return 6
    if "iptables-save" in head:
        return 4
    m = re.search(r" -[sd] (?:! )?([0-9a-fA-F.:]+)", text)
    if m is not None:
        return 6 if ":" in m.group(1) else 4
    return 6 if re.search(r"-p (?:ipv6-icmp|icmpv6)|--reject-with icmp6", text) else 4


_DUMP_HEADER = re.compile(r"^# Generated by (ip6?)tables-save", re.MULTILINE)


def parse_dumps(text: str, *, source: str | None = None, strict: bool = False
                ) -> dict[int, Ruleset]:
    """A file holding an iptables-save and an ip6tables-save dump (one after the other, as
    ``iptables-save; ip6tables-save > all.rules`` writes): one Ruleset per family.

    Dumps are told apart by their ``# Generated by ...`` header lines; text without such
    headers is one dump whose family is guessed. Line numbers in errors stay file-relative.
    """
    marks = [(m.start(), 6 if m.group(1) == "ip6" else 4) for m in _DUMP_HEADER.finditer(text)]
    if len({fam for _, fam in marks}) < 2:
        rs = parse_save(text, source=source, strict=strict)
        return {rs.family: rs}
    pieces: dict[int, list[str]] = {4: [], 6: []}
    bounds = [*marks, (len(text), 0)]
    head = text[:marks[0][0]]
    for (start, fam), (end, _) in itertools.pairwise(bounds):
        # keep line numbers: blank out the other family's lines instead of cutting them
        chunk = text[start:end]
        pieces[fam].append(chunk)
        pieces[6 if fam == 4 else 4].append("\n" * chunk.count("\n"))
    return {fam: parse_save(head + "".join(parts), family=fam, source=source, strict=strict)
            for fam, parts in pieces.items()}


def parse_save(text: str, *, family: int | None = None, source: str | None = None,
               strict: bool = False) -> Ruleset:
    """Parse iptables-save / ip6tables-save output into a Ruleset.

    A table that appears again (a file with several dumps) replaces the earlier one, as
    iptables-restore would do. ``family`` is guessed from the text when not given. Unless
    ``strict``, a value iptables 1.8 would refuse (an anonymised ``XX:XX:..`` MAC, a reversed
    port range from iptables 1.4) or an option no loaded match knows is kept as written.
    """
    fam = family or _guess_family(text)
    tables: dict[str, Table] = {}
    cur: _TableBuilder | None = None
    for lineno, raw in enumerate(split_lines(text), 1):
        raw = raw.rstrip(" \t\r")  # a CRLF file's \r, not one inside the last word
        line = raw.lstrip("\ufeff")
        if not line or line.lstrip(" \t").startswith("#"):
            continue
        where = {"source": source, "line": lineno}
        if line.startswith("*"):
            if cur is not None:
                raise ParseError("table without COMMIT before the next table", token=line,
                                 **where)  # type: ignore[arg-type]
            name = line[1:].strip(" \t")
            if name not in BUILTIN_CHAINS:
                raise ParseError(f"unknown table {name!r}", token=line, **where)  # type: ignore[arg-type]
            cur = _TableBuilder(name)
            continue
        if line == "COMMIT":
            if cur is None:
                raise ParseError("COMMIT outside a table", token=line, **where)  # type: ignore[arg-type]
            tables.pop(cur.name, None)
            tables[cur.name] = cur.build()
            cur = None
            continue
        if cur is None:
            raise ParseError("rule or chain outside a *table section",
                             token=split_words(line)[0], **where)  # type: ignore[arg-type]
        if line.startswith(":"):
            _chain_line(cur, line, where)
            continue
        counters = None
        if line.startswith("["):
            head, _, line = line.partition(" ")
            m = _COUNTERS.match(head)
            if not m:
                raise ParseError("bad counters", token=head, **where)  # type: ignore[arg-type]
            counters = Counters(int(m.group(1)), int(m.group(2)))
        words_text = line
        try:
            words = tokenize(words_text)
        except ValueError as exc:
            raise ParseError(str(exc), token=line, **where) from None  # type: ignore[arg-type]
        if words and words[0] in _RESTORE_COMMANDS:
            _restore_command(cur, words, fam, where)
            continue
        if len(words) < 2 or words[0] not in ("-A", "--append", "-I", "--insert"):
            raise ParseError("expected -A CHAIN, :CHAIN, *table or COMMIT",  # type: ignore[arg-type]
                             token=words[0] if words else line, **where)
        chain = words[1]
        if chain not in cur.chains and chain in BUILTIN_CHAINS[cur.name]:
            cur.chains[chain] = ("ACCEPT", None)  # restore creates a used built-in chain
        if chain not in cur.chains:
            raise ParseError(f"chain {chain!r} does not exist", token=chain, **where)  # type: ignore[arg-type]
        spec = words[2:]
        position = None
        if words[0] in ("-I", "--insert"):
            position = 0
            if spec and spec[0].isdigit():
                position = int(spec[0]) - 1
                spec = spec[1:]
        bucket = cur.rules.setdefault(chain, [])
        # iptables-restore turns ``-s a,b`` into one rule per address, as iptables does;
        # -I inserts each at the same place, so they end up in reverse order
        for one in _expand_address_lists(spec) if "," in line else (spec,):
            rule = _RuleReader(one, chain, fam, where, raw, strict).read()
            if counters is not None:
                rule = replace(rule, counters=counters)
            if position is None:
                bucket.append(rule)
            else:
                bucket.insert(position, rule)
    if cur is not None:
        raise ParseError(f"table {cur.name!r} has no COMMIT", source=source)
    return Ruleset(fam, tuple(tables.values()))


_RESTORE_COMMANDS = frozenset({"-N", "--new-chain", "-P", "--policy", "-F", "--flush", "-X",
                               "--delete-chain", "-D", "--delete"})


def _restore_command(cur: _TableBuilder, words: list[str], family: int,
                     where: dict[str, object]) -> None:
    """The other commands iptables-restore runs inside a table: -N, -P, -F, -X, -D CHAIN N."""
    def fail(message: str, token: str) -> ParseError:
        return ParseError(message, token=token, **where)  # type: ignore[arg-type]

    cmd, args = words[0], words[1:]
    if cmd in ("-N", "--new-chain"):
        if len(args) != 1:
            raise fail("-N takes one chain name", cmd)
        if args[0] in cur.chains or len(args[0]) > MAX_CHAIN_NAME:
            raise fail(f"cannot create chain {args[0]!r}", args[0])
        cur.chains[args[0]] = (None, None)
    elif cmd in ("-P", "--policy"):
        if len(args) != 2 or args[0] not in BUILTIN_CHAINS[cur.name] \
                or args[1] not in ("ACCEPT", "DROP"):
            raise fail("-P takes a built-in chain and ACCEPT or DROP", " ".join(args) or cmd)
        cur.chains[args[0]] = (args[1], cur.chains.get(args[0], (None, None))[1])
    elif cmd in ("-F", "--flush"):
        for name in args or list(cur.rules):
            cur.rules.pop(name, None)
    elif cmd in ("-X", "--delete-chain"):
        for name in args or [c for c, (policy, _) in cur.chains.items() if policy is None]:
            if cur.chains.get(name, ("ACCEPT", None))[0] is not None:
                raise fail(f"cannot delete chain {name!r}", name)
            del cur.chains[name]
            cur.rules.pop(name, None)
    else:  # -D CHAIN NUMBER (a rule spec to delete is matched by value)
        if not args or args[0] not in cur.chains:
            raise fail("-D needs an existing chain", args[0] if args else cmd)
        bucket = cur.rules.get(args[0], [])
        if len(args) == 2 and args[1].isdigit():
            index = int(args[1]) - 1
            if not 0 <= index < len(bucket):
                raise fail("no rule with that number", args[1])
            del bucket[index]
            return
        gone = _RuleReader(args[1:], args[0], family, where, " ".join(words)).read()
        if gone not in bucket:
            raise fail("no rule matches the one to delete", " ".join(args[1:]))
        bucket.remove(gone)


def _chain_line(cur: _TableBuilder, line: str, where: dict[str, object]) -> None:
    words = split_words(line[1:])
    if not words:
        raise ParseError("empty chain line", token=line, **where)  # type: ignore[arg-type]
    name = words[0]
    if len(name) > MAX_CHAIN_NAME:
        raise ParseError(f"chain name {name!r} too long (at most {MAX_CHAIN_NAME} chars)",
                         token=name, **where)  # type: ignore[arg-type]
    policy = words[1] if len(words) > 1 else "-"
    builtin = name in BUILTIN_CHAINS.get(cur.name, ())
    if builtin and policy not in ("ACCEPT", "DROP"):
        raise ParseError(f"bad policy {policy!r} for built-in chain", token=policy, **where)  # type: ignore[arg-type]
    if not builtin and policy != "-":
        raise ParseError(f"user chain {name!r} cannot have a policy", token=policy, **where)  # type: ignore[arg-type]
    counters = None
    if len(words) > 2:
        m = _COUNTERS.match(words[2])
        if not m:
            raise ParseError("bad chain counters", token=words[2], **where)  # type: ignore[arg-type]
        counters = Counters(int(m.group(1)), int(m.group(2)))
    cur.chains[name] = (policy if builtin else None, counters)
