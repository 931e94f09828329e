"""The model -> text: iptables-save, the ``iptables -L -n -v --line-numbers`` table, commands.

``render_save`` prints what the kernel's iptables-save (1.8.9, nft backend) prints for the same
rules, apart from the two ``#`` comment lines with a date; the parser has already brought every
value to its save spelling, so this is a walk over the model plus the quoting rules of
xtables_save_string.
"""

from __future__ import annotations

import shlex

from trustwall.firewall import extensions as ext
from trustwall.firewall.model import Match, Option, Rule, Ruleset, Target

_NO_QUOTE = frozenset("_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def save_string(value: str) -> str:
    """Quote like libxtables' xtables_save_string: plain words bare, the rest in quotes."""
    if value and all(c in _NO_QUOTE for c in value):
        return value
    escaped = "".join("\\" + c if c in "\"\\'" else c for c in value)
    return f'"{escaped}"'


def _plain(value: str) -> str:
    """A value iptables prints with printf: quoted only if it would not survive restore."""
    if value and not any(c in value for c in " \t\"'\\"):
        return value
    return save_string(value)


def _always_quoted(value: str) -> str:
    escaped = "".join("\\" + c if c in "\"\\" else c for c in value)
    return f'"{escaped}"'


def _option_words(opt: Option, string_opts: frozenset[str],
                  quoted_opts: frozenset[str] = frozenset()) -> list[str]:
    words = ["!"] if opt.negated else []
    words.append("--" + opt.name)
    quote = save_string if opt.name in string_opts else _plain
    if opt.name in quoted_opts:
        quote = _always_quoted
    words.extend(quote(v) for v in opt.values)
    return words


def _string_options(spec: ext.ExtSpec | None,
                    kinds: frozenset[str] = ext.STRING_KINDS) -> frozenset[str]:
    if spec is None:
        return frozenset()
    return frozenset(o.name for o in spec.options if o.kind in kinds)


def match_words(match: Match) -> list[str]:
    words = ["-m", match.module]
    spec = ext.MATCHES.get(match.module)
    strings = _string_options(spec)
    quoted = _string_options(spec, ext.QUOTED_KINDS)
    for opt in match.options:
        words += _option_words(opt, strings, quoted)
    return words


def target_words(target: Target) -> list[str]:
    words = ["-g" if target.goto else "-j", target.name]
    spec = ext.TARGETS.get(target.name)
    strings = _string_options(spec)
    quoted = _string_options(spec, ext.QUOTED_KINDS)
    for opt in target.options:
        words += _option_words(opt, strings, quoted)
    return words


def rule_words(rule: Rule) -> list[str]:
    """The words after ``-A CHAIN`` in iptables-save order."""
    words: list[str] = []

    def neg(flag: bool) -> None:
        if flag:
            words.append("!")

    if rule.source is not None:
        neg(rule.source.negated)
        words += ["-s", rule.source.text]
    if rule.destination is not None:
        neg(rule.destination.negated)
        words += ["-d", rule.destination.text]
    if rule.in_interface is not None:
        neg(rule.in_interface.negated)
        words += ["-i", rule.in_interface.name]
    if rule.out_interface is not None:
        neg(rule.out_interface.negated)
        words += ["-o", rule.out_interface.name]
    if rule.protocol is not None:
        neg(rule.protocol.negated)
        words += ["-p", rule.protocol.name]
    if rule.fragment is not None:
        neg(not rule.fragment)
        words.append("-f")
    for m in rule.matches:
        words += match_words(m)
    if rule.target is not None:
        words += target_words(rule.target)
    return words


def rule_spec(rule: Rule) -> str:
    """``-p tcp -m tcp --dport 22 -j ACCEPT`` (no chain)."""
    return " ".join(rule_words(rule))


def render_rule(rule: Rule, *, counters: bool = False) -> str:
    """One iptables-save line: ``-A CHAIN ...`` (with ``[p:b]`` first when ``counters``)."""
    line = " ".join(["-A", rule.chain, *rule_words(rule)])
    if counters:
        c = rule.counters
        line = f"[{c.packets if c else 0}:{c.bytes if c else 0}] {line}"
    return line


def render_command(rule: Rule, *, table: str = "filter", family: int = 4, action: str = "-A",
                   number: int | None = None) -> str:
    """The shell command that adds ``rule`` (``iptables -t nat -I PREROUTING 3 ...``)."""
    argv = ["ip6tables" if family == 6 else "iptables"]
    if table != "filter":
        argv += ["-t", table]
    argv += [action, rule.chain]
    if number is not None:
        argv.append(str(number))
    return " ".join([*argv, *(shlex.quote(w) if w != "!" else w for w in
                              _unquoted_words(rule))])


def _unquoted_words(rule: Rule) -> list[str]:
    """Rule words for argv use: values raw, not restore-quoted."""
    return [w[1:-1].replace('\\"', '"').replace("\\\\", "\\").replace("\\'", "'")
            if len(w) >= 2 and w[0] == '"' and w[-1] == '"' else w for w in rule_words(rule)]


def render_save(ruleset: Ruleset, *, table: str | None = None, counters: bool = False) -> str:
    """iptables-save text (without the dated ``#`` comment lines)."""
    out: list[str] = []
    for t in ruleset.tables:
        if table is not None and t.name != table:
            continue
        out.append(f"*{t.name}")
        for c in t.chains:
            cc = c.counters
            ctr = f"[{cc.packets if cc else 0}:{cc.bytes if cc else 0}]"
            out.append(f":{c.name} {c.policy or '-'} {ctr}")
        for c in t.chains:
            out.extend(render_rule(r, counters=counters) for r in c.rules)
        out.append("COMMIT")
    return "\n".join(out) + "\n" if out else ""
