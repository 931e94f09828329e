"""What targets do to a traced packet: which verdicts end it, which continue, and the
rewrites of NAT, MARK and CONNMARK that change what later rules see."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence

from trustwall.firewall.semantics.routing import LocalAddresses
from trustwall.firewall.semantics.trace.index import _addr_obj, _Ctx

# --- targets that change the packet -------------------------------------------------------------


def _opt(options: Sequence[object], name: str) -> str | None:
    for o in options:
        if o.name == name:  # type: ignore[attr-defined]
            return o.values[0] if o.values else ""  # type: ignore[attr-defined]
    return None


def _value_mask(text: str) -> tuple[int, int]:
    value, _, mask = text.partition("/")
    return int(value, 0), int(mask, 0) if mask else 0xFFFFFFFF


def _split_nat(text: str) -> tuple[str | None, int | None]:
    """``1.2.3.4-1.2.3.9:80-90`` -> ("1.2.3.4", 80); ``[::1]:80``; ``:80``."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    elif ":" in text:  # a bare IPv6 address
        host, port = text, ""
    else:
        host, port = text, ""
    host = host.split("-")[0] or None
    first = port.split("-")[0]
    return host, int(first) if first else None


def _compile_action(name: str, options: Sequence[object], local: LocalAddresses, table: str
                    ) -> Callable[[_Ctx], str]:
    """What a MARK/CONNMARK/CT/NAT target does to the travelling packet (returns a note)."""
    if name == "MARK":
        return _mark_action(options)
    if name == "CONNMARK":
        return _connmark_action(options)
    if name in ("CT", "NOTRACK"):
        if name == "NOTRACK" or _opt(options, "notrack") is not None:
            def notrack(ctx: _Ctx) -> str:
                ctx.notrack = True
                return f"{name}: the packet becomes UNTRACKED"
            return notrack
        return lambda ctx: name
    if name == "DNAT":
        host, port = _split_nat(_opt(options, "to-destination") or "")
        return lambda ctx: _rewrite(ctx, "dst", host, port)
    if name == "SNAT":
        host, port = _split_nat(_opt(options, "to-source") or "")
        return lambda ctx: _rewrite(ctx, "src", host, port)
    if name == "REDIRECT":
        ports = _opt(options, "to-ports")
        port = int(ports.split("-")[0]) if ports else None

        def redirect(ctx: _Ctx) -> str:
            loop = "127.0.0.1" if ctx.family == 4 else "::1"
            addr = loop if ctx.hook == "OUTPUT" else local.primary(ctx.iin, ctx.family)
            ctx.dst = int(ipaddress.ip_address(addr)) if addr is not None else None
            if port is not None:
                ctx.dport = port
            return f"REDIRECT to {addr or 'the input interface address'}:{ctx.dport}"
        return redirect
    if name == "MASQUERADE":
        ports = _opt(options, "to-ports")
        port = int(ports.split("-")[0]) if ports else None

        def masquerade(ctx: _Ctx) -> str:
            addr = local.primary(ctx.iout, ctx.family)
            ctx.src = int(addr) if addr is not None else None
            if port is not None:
                ctx.sport = port
            return f"MASQUERADE to {addr or 'the output interface address'}"
        return masquerade
    if name == "NETMAP":
        net = ipaddress.ip_network(_opt(options, "to") or "0.0.0.0/0", strict=False)
        base, mask = int(net.network_address), int(net.netmask)

        def netmap(ctx: _Ctx) -> str:
            attr = "dst" if ctx.hook in ("PREROUTING", "OUTPUT") else "src"
            value = getattr(ctx, attr)
            if value is not None:
                setattr(ctx, attr, (value & ~mask) | base)
            return f"NETMAP {attr} into {net}"
        return netmap
    return lambda ctx: name


def _rewrite(ctx: _Ctx, attr: str, host: str | None, port: int | None) -> str:
    port_attr = "dport" if attr == "dst" else "sport"
    if host is not None:
        setattr(ctx, attr, int(ipaddress.ip_address(host)))
    if port is not None:
        setattr(ctx, port_attr, port)
    value = getattr(ctx, attr)
    shown = _addr_obj(value, ctx.family) if value is not None else "?"
    kind = "DNAT" if attr == "dst" else "SNAT"
    return f"{kind} to {shown}:{getattr(ctx, port_attr)}"


def _mark_action(options: Sequence[object]) -> Callable[[_Ctx], str]:
    op, value, mask = "", 0, 0xFFFFFFFF
    for name in ("set-xmark", "set-mark", "and-mark", "or-mark", "xor-mark"):
        text = _opt(options, name)
        if text is not None:
            op = name
            value, mask = _value_mask(text)
            break

    def mark(ctx: _Ctx) -> str:
        old = ctx.mark
        if old is None and not (op in ("set-xmark", "set-mark") and mask == 0xFFFFFFFF):
            return "MARK (mark unknown)"
        old = old or 0
        ctx.mark = {"set-xmark": (old & ~mask) ^ value, "set-mark": (old & ~mask) | value,
                    "and-mark": old & value, "or-mark": old | value,
                    "xor-mark": old ^ value}.get(op, old)
        return f"MARK set to {ctx.mark:#x}"
    return mark


def _connmark_set(value: int, mask: int, *, xor: bool) -> Callable[[_Ctx], str]:
    def set_ct(ctx: _Ctx) -> str:
        if ctx.ctmark is None and mask != 0xFFFFFFFF:
            return "CONNMARK (connection mark unknown)"
        old = ctx.ctmark or 0
        ctx.ctmark = (old & ~mask) ^ value if xor else (old & ~mask) | value
        return f"CONNMARK set to {ctx.ctmark:#x}"
    return set_ct


def _connmark_action(options: Sequence[object]) -> Callable[[_Ctx], str]:
    nfmask = int(_opt(options, "nfmask") or "0xffffffff", 0)
    ctmask = int(_opt(options, "ctmask") or "0xffffffff", 0)
    for name in ("set-xmark", "set-mark"):
        text = _opt(options, name)
        if text is not None:
            return _connmark_set(*_value_mask(text), xor=name == "set-xmark")
    if _opt(options, "save-mark") is not None:
        def save(ctx: _Ctx) -> str:
            if ctx.mark is None or ctx.ctmark is None:
                ctx.ctmark = None
            else:
                ctx.ctmark = (ctx.ctmark & ~ctmask) ^ (ctx.mark & nfmask)
            return "CONNMARK save-mark"
        return save
    if _opt(options, "restore-mark") is not None:
        def restore(ctx: _Ctx) -> str:
            if ctx.ctmark is None or ctx.mark is None:
                ctx.mark = None
            else:
                ctx.mark = (ctx.mark & ~nfmask) ^ (ctx.ctmark & ctmask)
            return "CONNMARK restore-mark"
        return restore
    return lambda ctx: "CONNMARK"
