"""The model -> text: iptables-save, the ``iptables -L -n -v --line-numbers`` table, commands.

``render_save`` prints what the kernel's iptables-save (1.8.9, nft backend) prints for the same
rules, apart from the two ``#`` comment lines with a date; the parser has already brought every
value to its save spelling, so this is a walk over the model plus the quoting rules of
xtables_save_string.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from trustwall.errors import BadInput
from trustwall.firewall import extensions as ext
from trustwall.firewall.model import HOOKS, Address, Chain, Match, Option, Rule, Ruleset, Target
from trustwall.firewall.protocols import protocol_number

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


def save_order(chains: tuple[Chain, ...]) -> list[Chain]:
    """Built-in chains in hook order, then user chains sorted by name, as iptables-save does."""
    builtin = [c for c in chains if c.builtin]
    hooks = {name: i for i, name in enumerate(HOOKS)}
    builtin.sort(key=lambda c: hooks.get(c.name, len(hooks)))
    return builtin + sorted((c for c in chains if not c.builtin), key=lambda c: c.name)


def render_save(ruleset: Ruleset, *, table: str | None = None, counters: bool = False) -> str:
    """iptables-save text (without the dated ``#`` comment lines)."""
    out: list[str] = []
    for t in ruleset.tables:
        if table is not None and t.name != table:
            continue
        out.append(f"*{t.name}")
        chains = save_order(t.chains)
        for c in chains:
            cc = c.counters
            ctr = f"[{cc.packets if cc else 0}:{cc.bytes if cc else 0}]"
            out.append(f":{c.name} {c.policy or '-'} {ctr}")
        for c in chains:
            out.extend(render_rule(r, counters=counters) for r in c.rules)
        out.append("COMMIT")
    return "\n".join(out) + "\n" if out else ""


# -- iptables -L -n [-v] [-x] --line-numbers ---------------------------------------------------

_TCP_FLAG_BITS = {"FIN": 0x01, "SYN": 0x02, "RST": 0x04, "PSH": 0x08, "ACK": 0x10, "URG": 0x20,
                  "ECE": 0x40, "CWR": 0x80}


def _num(n: int, exact: bool, width: int = 5) -> str:
    """xtables_print_num: exact ``%8llu`` or K/M/G/T with rounding in 5 columns."""
    if exact:
        return f"{n:8d} "
    if n <= 99999:
        return f"{n:{width}d} "
    for unit in "KMGT":
        n = (n + 500) // 1000
        if n <= 9999 or unit == "T":
            return f"{n:{width - 1}d}{unit} "
    raise AssertionError("unreachable")


def _policy_num(n: int, exact: bool) -> str:
    if exact or n <= 99999:
        return f"{n} "
    for unit in "KMGT":
        n = (n + 500) // 1000
        if n <= 9999 or unit == "T":
            return f"{n}{unit} "
    raise AssertionError("unreachable")


def _ports_l(name: str, opt: Option | None, full: str = "0:65535") -> str:
    """libxt_tcp's print_ports: ``spt:22``, ``dpts:1:1023``, ``spt:!5``; nothing for all."""
    if opt is None or not opt.values or (opt.values[0] == full and not opt.negated):
        return ""
    lo, _, hi = opt.values[0].partition(":")
    bang = "!" if opt.negated else ""
    if not hi or lo == hi:
        return f" {name}:{bang}{lo}"
    return f" {name}s:{bang}{lo}:{hi}"


_SCTP_CHUNKS = {"DATA": 0, "INIT": 1, "INIT_ACK": 2, "SACK": 3, "HEARTBEAT": 4,
                "HEARTBEAT_ACK": 5, "ABORT": 6, "SHUTDOWN": 7, "SHUTDOWN_ACK": 8, "ERROR": 9,
                "COOKIE_ECHO": 10, "COOKIE_ACK": 11, "ECN_ECNE": 12, "ECN_CWR": 13,
                "SHUTDOWN_COMPLETE": 14, "I_DATA": 0x40, "ASCONF_ACK": 0x80, "RE_CONFIG": 0x82,
                "PAD": 0x84, "FORWARD_TSN": 0xC0, "ASCONF": 0xC1, "I_FORWARD_TSN": 0xC2}


def _range_l(opt: Option | None, full: str) -> str:
    """``1``, ``4:123``, ``!0:255``: the plain range style of mh and length."""
    if opt is None or not opt.values or (opt.values[0] == full and not opt.negated):
        return ""
    return ("!" if opt.negated else "") + opt.values[0]


def _flags_l(opt: Option | None) -> str:
    if opt is None or len(opt.values) != 2:
        return ""
    mask, comp = (sum(_TCP_FLAG_BITS.get(f, 0) for f in v.split(",")) for v in opt.values)
    return f" flags:{'!' if opt.negated else ''}0x{mask:02X}/0x{comp:02X}"


def _match_l(m: Match, family: int = 4) -> str:
    """The trailing text ``iptables -L -n`` prints for one match (libxt_*.c print functions)."""
    o = m.option
    bang = lambda opt: "!" if opt is not None and opt.negated else ""  # noqa: E731
    if m.module in ("tcp", "udp", "udplite"):
        text = f" {m.module}" + _ports_l("spt", o("sport")) + _ports_l("dpt", o("dport"))
        if m.module == "tcp":
            opt = o("tcp-option")
            if opt is not None:
                text += f" option={bang(opt)}{opt.value}"
            text += _flags_l(o("tcp-flags"))
        return text
    if m.module in ("sctp", "dccp"):
        text = f" {m.module}" + _ports_l("spt", o("sport")) + _ports_l("dpt", o("dport"))
        chunks = o("chunk-types")
        if chunks is not None and len(chunks.values) == 2:
            names = chunks.values[1].split(",")
            if all(n.upper() in _SCTP_CHUNKS for n in names):
                codes = sorted(_SCTP_CHUNKS[n.upper()] for n in names)
                text += (f" {'!' if chunks.negated else ''}{chunks.values[0]} "
                         + ",".join(f"0x{c:04X}" for c in codes))
        opt = o("dccp-option")
        if opt is not None:
            text += f" option={bang(opt)}{opt.value}"
        return text
    if m.module in ("esp", "ah", "ipcomp"):
        key = {"esp": "espspi", "ah": "ahspi", "ipcomp": "ipcompspi"}[m.module]
        word = "comp" if m.module == "ipcomp" else m.module
        spis = _ports_l("spi", o(key), "0:4294967295")
        if m.module == "ipcomp":
            return " comp " + spis.lstrip()
        if m.module == "ah":  # libip*t_ah: " ah " then its fields
            text = " ah " + spis.lstrip()
            opt = o("ahlen")
            if opt is not None:
                text += f" length:{bang(opt)}{opt.value}"
            return text + (" reserved" if o("ahres") is not None else "")
        return f" {word}" + spis
    if m.module == "mh":
        rng = _range_l(o("mh-type"), "0:255")
        return " mh" + (f" {rng}" if rng else "")
    if m.module == "length":
        return f" length {_range_l(o('length'), '')}"
    if m.module == "quota":
        opt = o("quota")
        return f" quota: {opt.value if opt else 0} bytes"
    if m.module == "dscp":
        opt = o("dscp")
        return f" DSCP match {bang(opt)}{opt.value if opt else ''}"
    if m.module == "tos":
        opt = o("tos")
        return f" tos match{bang(opt)}{opt.value if opt else ''}"
    if m.module == "connbytes":
        count, mode, direction = o("connbytes"), o("connbytes-mode"), o("connbytes-dir")
        return (f" connbytes {bang(count)}{count.value if count else ''}"
                f" connbytes mode {mode.value if mode else ''}"
                f" connbytes direction {direction.value if direction else ''}")
    if m.module == "string":
        text = f" STRING match {bang(o('string') or o('hex-string'))}"
        for key in ("string", "hex-string"):
            opt = o(key)
            if opt is not None:
                text += f' "{opt.value}"'
        algo = o("algo")
        text += f" ALGO name {algo.value}" if algo else ""
        for key, word in (("from", "FROM"), ("to", "TO")):
            opt = o(key)
            text += f" {word} {opt.value}" if opt is not None else ""
        return text + (" ICASE" if o("icase") is not None else "")
    if m.module == "realm":
        opt = o("realm")
        return f" realm {bang(opt)}{opt.value if opt else ''}"
    if m.module == "cluster":
        mask, total, seed = o("cluster-local-nodemask"), o("cluster-total-nodes"), \
            o("cluster-hash-seed")
        return (f" cluster {bang(mask)}node_mask={mask.value if mask else ''}"
                f" total_nodes={total.value if total else ''}"
                f" hash_seed={seed.value if seed else ''}")
    if m.module in ("helper", "u32"):
        opt = o(m.module)
        value = f'"{opt.value}"' if opt and opt.value is not None else ""
        return f" {m.module}{' match' if m.module == 'helper' else ''} {bang(opt)}{value}"
    if m.module == "tcpmss":
        opt = o("mss")
        return f" tcpmss match {bang(opt)}{opt.value if opt else ''}"
    if m.module == "frag":
        text = " frag " + _ports_l("id", o("fragid"), "0:4294967295").lstrip()
        opt = o("fraglen")
        if opt is not None:
            text += f" length:{bang(opt)}{opt.value}"
        for key, word in (("fragres", "reserved"), ("fragfirst", "first"),
                          ("fragmore", "more"), ("fraglast", "last")):
            text += f" {word}" if o(key) is not None else ""
        return text
    if m.module in ("dst", "hbh"):
        text = f" {m.module}"
        length, opts = o(f"{m.module}-len"), o(f"{m.module}-opts")
        if length is not None:
            text += f" length:{bang(length)}{length.value}"
        if opts is not None:
            text += f" opts {opts.value}"
        return text
    if m.module == "srh":
        text = " srh"
        for opt in m.options:
            word = opt.name.removeprefix("srh-")
            if word in ("psid", "nsid", "lsid"):
                text += f" {word} {'!' if opt.negated else ''} {opt.value}"
            else:
                text += f" {word}:{bang(opt)}{opt.value}"
        return text
    if m.module in ("cgroup", "connlabel", "cpu"):
        text = f" {m.module}"
        for opt in m.options:
            text += " set" if opt.name == "set" else f"{' !' if opt.negated else ''} {opt.value}"
        return text
    if m.module == "ecn":
        words = {"ecn-tcp-cwr": "CWR", "ecn-tcp-ece": "ECE"}
        return " ECN match" + "".join(
            f" {'!' if opt.negated else ''}{words.get(opt.name, f'ECT={opt.value}')}"
            for opt in m.options)
    if m.module == "socket":
        return " socket" + "".join(f" --{opt.name}" for opt in m.options)
    if m.module == "multiport":
        for key in ("sports", "dports", "ports"):
            opt = o(key)
            if opt is not None:
                return f" multiport {key} {' !' if opt.negated else ''}{opt.value}"
    if m.module == "comment":
        return f" /* {m.comment} */"
    if m.module in ("state", "conntrack"):
        return "".join(f" {'! ' if opt.negated else ''}{opt.name} {' '.join(opt.values)}".rstrip()
                       for opt in m.options)
    if m.module in ("icmp", "icmp6"):
        opt = o("icmp-type") or o("icmpv6-type")
        if opt is None or opt.value is None:
            return ""
        # libipt_icmp: " icmp" [" !"] "type N" [" code C" | " codes A-B"]; any is type 255
        text = " icmp" if m.module == "icmp" else " ipv6-icmp"
        text += " !" if opt.negated else ""
        if opt.value == "any":
            return text + "type 255"
        itype, _, code = opt.value.partition("/")
        text += f"type {itype}"
        if code:
            lo, _, hi = code.partition(":")
            text += f" code {lo}" if not hi else f" codes {lo}-{hi}"
        return text
    if m.module == "limit":
        lim = m.limit
        if lim is None:
            return ""
        return f" limit: avg {lim.rate} burst {lim.burst}"
    if m.module == "mark":
        opt = o("mark")
        return f" mark match {'! ' if opt and opt.negated else ''}{opt.value if opt else ''}"
    if m.module == "mac":
        opt = o("mac-source")
        if opt is None or opt.value is None:
            return ""
        return f" MAC {'! ' if opt.negated else ''}{opt.value}"
    if m.module == "iprange":
        text = ""
        for key, word in (("src-range", "source"), ("dst-range", "destination")):
            opt = o(key)
            if opt is not None:
                text += f" {word} IP range {'! ' if opt.negated else ''}{opt.value}"
        return text
    if m.module == "connmark":
        opt = o("mark")
        return f" connmark match {' !' if opt and opt.negated else ''} {opt.value if opt else ''}"
    if m.module == "owner":
        text = ""
        for key, label in (("socket-exists", "owner socket exists"),
                           ("uid-owner", "owner UID match"), ("gid-owner", "owner GID match")):
            opt = o(key)
            if opt is not None:
                text += (" !" if opt.negated else "") + f" {label}"
                text += f" {opt.value}" if opt.value else ""
        if o("suppl-groups") is not None:
            text += " incl. suppl. groups"
        return text
    if m.module == "addrtype":
        text = " ADDRTYPE match"
        for key, label in (("src-type", "src-type"), ("dst-type", "dst-type")):
            opt = o(key)
            if opt is not None:
                text += f" {label} {'!' if opt.negated else ''}{opt.value}"
        text += " limit-in" if o("limit-iface-in") is not None else ""
        text += " limit-out" if o("limit-iface-out") is not None else ""
        return text
    if m.module == "physdev":
        return " PHYSDEV match" + "".join(
            (" !" if opt.negated else "") + f" --{opt.name}" + "".join(f" {v}" for v in opt.values)
            for opt in m.options)
    if m.module == "recent":
        return _recent_l(m)
    if m.module == "hashlimit":
        return _hashlimit_l(m)
    if m.module == "pkttype":
        opt = o("pkt-type")
        return f" PKTTYPE {'!=' if opt and opt.negated else '='} {opt.value if opt else ''}"
    if m.module == "connlimit":
        above, upto, mask = o("connlimit-above"), o("connlimit-upto"), o("connlimit-mask")
        side = "dst" if o("connlimit-daddr") is not None else "src"
        limit = above or upto
        op = ">" if above is not None else "<="
        if limit is not None and limit.negated:
            op = "<=" if op == ">" else ">"
        return (f" #conn {side}/{mask.value if mask else ''} {op} "
                f"{limit.value if limit else ''}")
    if m.module in ("ttl", "hl"):
        word = m.module.upper()
        for opt in m.options:
            op = {"eq": "!=" if opt.negated else "==", "lt": "<", "gt": ">"}.get(opt.name[-2:])
            if op is not None:
                return f" {word} match {word} {op} {opt.value}"
    if m.module == "rt":
        text = " rt"
        for key, label in (("rt-type", "type"), ("rt-segsleft", "segsleft"), ("rt-len", "length")):
            opt = o(key)
            if opt is not None and opt.value is not None:
                lo, _, hi = opt.value.partition(":")
                text += f" {label}s:{bang(opt)}{lo}:{hi}" if hi else f" {label}:{bang(opt)}{lo}"
        return text + (" reserved" if o("rt-0-res") is not None else "")
    if m.module == "policy":
        return " policy match" + _dashless(m.options)
    return f" {m.module}" + _dashless(m.options)


def _dashless(options: tuple[Option, ...]) -> str:
    """The common -L style of extensions without their own: ``name value`` per option."""
    return "".join((" !" if opt.negated else "") + f" {opt.name}"
                   + "".join(f" {save_string(v) if ' ' in v else v}" for v in opt.values)
                   for opt in options)


def _hashlimit_l(m: Match) -> str:
    o = m.option
    above = o("hashlimit-above")
    rate = above or o("hashlimit-upto")
    text = " limit: above " if above is not None else " limit: up to "
    text += rate.value if rate and rate.value else ""
    burst = o("hashlimit-burst")
    if burst is not None:
        text += f" burst {burst.value}"
    mode = o("hashlimit-mode")
    if mode is not None and mode.value:
        text += " mode " + mode.value.replace(",", "-")
    for key in ("htable-size", "htable-max", "htable-gcinterval", "htable-expire", "srcmask",
                "dstmask", "rate-match", "rate-interval"):
        opt = o("hashlimit-" + key)
        if opt is not None:
            text += f" {key}" + (f" {opt.value}" if opt.value else "")
    return text


def _recent_l(m: Match) -> str:
    o = m.option
    action = next((k for k in ("set", "rcheck", "update", "remove") if o(k) is not None), None)
    neg = any(opt.negated for opt in m.options)
    text = (" !" if neg else "") + " recent:"
    text += {"set": " SET", "rcheck": " CHECK", "update": " UPDATE", "remove": " REMOVE",
             None: ""}[action]
    for key, label in (("seconds", "seconds: "), ("reap", "reap"), ("hitcount", "hit_count: "),
                       ("rttl", "TTL-Match")):
        opt = o(key)
        if opt is not None:
            text += f" {label}{opt.value or ''}"
    name, mask = o("name"), o("mask")
    text += f" name: {name.value if name else 'DEFAULT'}"
    text += " side: dest" if o("rdest") is not None else " side: source"
    if mask is not None:
        text += f" mask: {mask.value}"
    return text


def _target_l(t: Target) -> str:
    o = t.option
    if t.name == "REJECT":
        opt = o("reject-with")
        return f" reject-with {opt.value}" if opt else ""
    if t.name == "LOG":
        level = o("log-level")
        flags = 0
        for bit, key in ((1, "log-tcp-sequence"), (2, "log-tcp-options"),
                         (4, "log-ip-options"), (8, "log-uid"), (0x20, "log-macdecode")):
            if o(key) is not None:
                flags |= bit
        text = f" LOG flags {flags} level {level.value if level else '4'}"  # XT_LOG_* bits
        prefix = o("log-prefix")
        if prefix is not None:
            text += f' prefix "{prefix.value}"'
        return text
    if t.name in ("DNAT", "SNAT"):
        opt = o("to-destination") or o("to-source")
        text = f" to:{opt.value}" if opt else ""
        for flag in ("random", "random-fully", "persistent"):
            if o(flag) is not None:
                text += f" {flag}"
        return text
    if t.name == "MASQUERADE":
        opt = o("to-ports")
        text = f" masq ports: {opt.value}" if opt else ""
        return text + "".join(f" {f}" for f in ("random", "random-fully") if o(f) is not None)
    if t.name == "REDIRECT":
        opt = o("to-ports")
        return (f" redir ports {opt.value}" if opt else "") + (
            " random" if o("random") is not None else "")
    if t.name in ("MARK", "CONNMARK"):
        opt = o("set-xmark")
        if opt is not None and opt.value is not None:
            return f" {t.name} " + _xmark_l(opt.value)
        if t.name == "CONNMARK":
            return _connmark_save_l(t)
    if t.name in ("TTL", "HL"):
        for key, words in (("set", "set to"), ("inc", "increment by"), ("dec", "decrement by")):
            opt = o(f"{t.name.lower()}-{key}")
            if opt is not None:
                return f" {t.name} {words} {opt.value}"
    if t.name == "TEE":
        opt = o("gateway")
        return f" TEE gw:{opt.value}" if opt else ""
    if t.name in ("DNPT", "SNPT"):
        return f" {t.name}" + _dashless(t.options)
    if t.name == "ECN":
        return " ECN" + ("".join(" TCP remove" if opt.name == "ecn-tcp-remove" else
                                 f" {opt.name} {opt.value}" for opt in t.options))
    if t.name == "TCPOPTSTRIP":
        opt = o("strip-options")
        return f" TCPOPTSTRIP options {opt.value if opt else ''}"
    if t.name == "CLASSIFY":
        opt = o("set-class")
        if opt is not None and opt.value and ":" in opt.value:
            major, minor = (int(x, 16) for x in opt.value.split(":", 1))
            return f" CLASSIFY set {major:x}:{minor:x}"
    if t.name == "TPROXY":
        port, ip, mark = o("on-port"), o("on-ip"), o("tproxy-mark")
        text = f" TPROXY redirect {ip.value if ip else '0.0.0.0'}:{port.value if port else 0}"
        return text + (f" mark {mark.value}" if mark else "")
    if t.name == "SYNPROXY":
        return " SYNPROXY" + "".join(f" {opt.name}" + (f" {opt.value}" if opt.value else "")
                                     for opt in t.options) + " "
    if t.name == "RATEEST":
        return "".join(f" {opt.name.removeprefix('rateest-')} {opt.value}"
                       for opt in t.options)
    if t.name in ("AUDIT", "CONNSECMARK"):
        return f" {t.name}" + "".join(f" {opt.value or opt.name}" for opt in t.options)
    if t.name == "IDLETIMER":
        return "".join(f" {opt.name}:{opt.value}" if opt.value else f" {opt.name}"
                       for opt in t.options)
    if t.name == "NFQUEUE":
        num, balance = o("queue-num"), o("queue-balance")
        text = f" NFQUEUE balance {balance.value}" if balance else \
            f" NFQUEUE num {num.value if num else 0}"
        text += " bypass" if o("queue-bypass") is not None else ""
        return text + (" cpu-fanout" if o("queue-cpu-fanout") is not None else "")
    if t.name in ("DSCP", "TOS"):
        opt = o("set-dscp") or o("set-tos")
        return f" {t.name} set {opt.value}" if opt else ""
    if t.name == "NETMAP":
        opt = o("to")
        return f" to:{opt.value}" if opt else ""
    if t.name == "CT":
        return " CT" + _dashless(t.options).replace(" notrack", " notrack")
    if t.name == "NOTRACK":
        return " NOTRACK"
    if t.name == "TCPMSS":
        opt = o("set-mss")
        return f" TCPMSS set {opt.value}" if opt else " TCPMSS clamp to PMTU"
    if t.name == "CHECKSUM":
        return " CHECKSUM fill"
    return _dashless(t.options)


def _xmark_l(xmark: str) -> str:
    """libxt_MARK's -L words for --set-xmark value/mask."""
    v_text, _, m_text = xmark.partition("/")
    value, mask = int(v_text, 16), int(m_text or "0xffffffff", 16)
    if value == 0 and mask != 0:
        return f"and {(~mask) & 0xFFFFFFFF:#x}"
    if value == mask:
        return f"or {value:#x}"
    if mask == 0:
        return f"xor {value:#x}"
    if mask == 0xFFFFFFFF:
        return f"set {value:#x}"
    return f"xset {value:#x}/{mask:#x}"


def _connmark_save_l(t: Target) -> str:
    o = t.option
    verb = "save" if o("save-mark") is not None else "restore"
    nf, ct = o("nfmask"), o("ctmask")
    nfv = nf.value if nf and nf.value else "0xffffffff"
    ctv = ct.value if ct and ct.value else "0xffffffff"
    if nfv == ctv == "0xffffffff":
        return f" CONNMARK {verb}"
    if nfv == ctv:
        return f" CONNMARK {verb} mask {nfv}"
    if verb == "save":
        return f" CONNMARK save nfmask {nfv} ctmask ~{ctv}"
    return f" CONNMARK restore ctmask {ctv} nfmask ~{nfv}"


def _addr_l(addr: Address | None, family: int) -> str:
    if addr is None:
        return "0.0.0.0/0" if family == 4 else "::/0"
    return addr.short


def listing_line(rule: Rule, number: int, *, family: int = 4, verbose: bool = False,
                 exact: bool = False) -> str:
    """One rule as ``iptables -L -n [-v] [-x] --line-numbers`` prints it (nft backend)."""
    out = [f"{number:<4d} "]
    if verbose:
        c = rule.counters
        out.append(_num(c.packets if c else 0, exact) + _num(c.bytes if c else 0, exact))
    target = rule.target.name if rule.target is not None else ""
    if target == "NOTRACK":
        target = "CT"  # nft stores -j NOTRACK as a CT expression and lists it so
    out.append(f"{target:<9} ")
    proto = rule.protocol
    out.append("!" if proto is not None and proto.negated else " ")
    number_of = protocol_number(proto.name) if proto is not None else 0
    out.append(f"{number_of:<5d}")
    frag = rule.fragment
    out.append(("!" if frag is False else "-") + ("f" if frag is not None else "-") + " ")
    if verbose:
        for lead, iface in ((" ", rule.in_interface), ("", rule.out_interface)):
            name = "*" if iface is None else ("!" if iface.negated else "") + iface.name
            out.append(f"{lead}{name:<6} ")
    for addr in (rule.source, rule.destination):
        out.append("!" if addr is not None and addr.negated else " ")
        out.append(f"{_addr_l(addr, family):<19} ")
    if rule.target is not None and rule.target.goto:
        out.append("[goto] ")
    for m in rule.matches:
        out.append(_match_l(m, family))
    if rule.target is not None:
        out.append(_target_l(rule.target))
    return "".join(out)


@dataclass(frozen=True)
class ListedRule:
    """One row of ``fw show --json``."""

    number: int
    packets: int | None
    bytes: int | None
    target: str | None
    rule: str  # the save form after -A CHAIN
    text: str  # the line iptables -L prints


@dataclass(frozen=True)
class ListedChain:
    name: str
    policy: str | None
    references: int
    rules: tuple[ListedRule, ...]


@dataclass(frozen=True)
class Listing:
    """What ``fw show`` shows: one table (and optionally one chain) of one family."""

    family: int
    table: str
    chains: tuple[ListedChain, ...]


def _references(ruleset: Ruleset, table: str) -> dict[str, int]:
    refs: dict[str, int] = {}
    t = ruleset.table(table)
    if t is None:
        return refs
    for r in t.rules:
        if r.target is not None:
            refs[r.target.name] = refs.get(r.target.name, 0) + 1
    return refs


def _chains_to_list(ruleset: Ruleset, table: str, chain: str | None) -> list[Chain]:
    t = ruleset.table(table)
    if t is None:
        raise BadInput(f"table {table!r} is not in this ruleset",
                       hint="tables here: " + (", ".join(x.name for x in ruleset.tables) or
                                               "none"))
    if chain is None:
        return save_order(t.chains)
    c = t.chain(chain)
    if c is None:
        raise BadInput(f"no chain {chain!r} in table {table}")
    return [c]


def listing_view(ruleset: Ruleset, table: str = "filter", chain: str | None = None) -> Listing:
    """The typed result behind ``fw show`` (also its --json)."""
    refs = _references(ruleset, table)
    chains = []
    for c in _chains_to_list(ruleset, table, chain):
        rows = tuple(ListedRule(
            i, r.counters.packets if r.counters else None, r.counters.bytes if r.counters else None,
            r.target_name, rule_spec(r),
            listing_line(r, i, family=ruleset.family, verbose=True, exact=True))
            for i, r in enumerate(c.rules, 1))
        chains.append(ListedChain(c.name, c.policy, refs.get(c.name, 0), rows))
    return Listing(ruleset.family, table, tuple(chains))


def render_listing(ruleset: Ruleset, table: str = "filter", chain: str | None = None, *,
                   verbose: bool = False, exact: bool = False) -> str:
    """``iptables [-t T] -L [CHAIN] -n [-v] [-x] --line-numbers``, as the nft backend prints."""
    refs = _references(ruleset, table)
    blocks = []
    for c in _chains_to_list(ruleset, table, chain):
        if c.builtin:
            head = f"Chain {c.name} (policy {c.policy}"
            if verbose:
                cc = c.counters
                head += (f" {_policy_num(cc.packets if cc else 0, exact)}packets, "
                         f"{_policy_num(cc.bytes if cc else 0, exact)}bytes")
            head += ")"
        else:
            head = f"Chain {c.name} ({refs.get(c.name, 0)} references)"
        cols = "num  "
        if verbose:
            cols += f"{'pkts':>8} {'bytes':>10} " if exact else f"{'pkts':>5} {'bytes':>5} "
        cols += f"{'target':<9}  prot opt"
        if verbose:
            cols += f" {'in':<6} {'out':<6} "
        cols += f" {'source':<19}  {'destination':<19} "
        lines = [head, cols]
        lines += [listing_line(r, i, family=ruleset.family, verbose=verbose, exact=exact)
                  for i, r in enumerate(c.rules, 1)]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)
