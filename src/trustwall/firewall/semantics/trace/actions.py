"""What an IR rewrite does to a traced packet: NAT, marks and notrack change what later rules
(and the routing decision) see. The frontend read the rewrite from its syntax once, at compile
time (``ir.Action.rewrite``); here it only runs."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from trustwall.firewall.ir import MarkCopy, Nat, Notrack, Rewrite, SetMark
from trustwall.firewall.semantics.routing import LocalAddresses
from trustwall.firewall.semantics.trace.index import _addr_obj, _Ctx

_FULL = 0xFFFFFFFF


def compile_rewrite(rewrite: Rewrite | None, name: str, local: LocalAddresses
                    ) -> Callable[[_Ctx], str]:
    """The change ``rewrite`` makes to the travelling packet; returns a note for the path
    (``name``: the frontend's word for the action, MARK, DNAT, …)."""
    if isinstance(rewrite, SetMark):
        return _set_ct_mark(rewrite, name) if rewrite.ct else _set_mark(rewrite, name)
    if isinstance(rewrite, MarkCopy):
        return _copy_mark(rewrite, name)
    if isinstance(rewrite, Notrack):
        def notrack(ctx: _Ctx) -> str:
            ctx.notrack = True
            return f"{name}: the packet becomes UNTRACKED"
        return notrack
    if isinstance(rewrite, Nat):
        return _nat(rewrite, local)
    return lambda ctx: name


def _nat(nat: Nat, local: LocalAddresses) -> Callable[[_Ctx], str]:
    if nat.kind in ("dnat", "snat"):
        attr = "dst" if nat.kind == "dnat" else "src"
        return lambda ctx: _rewrite(ctx, attr, nat.address, nat.port)
    if nat.kind == "redirect":
        def redirect(ctx: _Ctx) -> str:
            loop = "127.0.0.1" if ctx.family == 4 else "::1"
            addr = loop if ctx.hook == "output" else local.primary(ctx.iin, ctx.family)
            ctx.dst = int(ipaddress.ip_address(addr)) if addr is not None else None
            if nat.port is not None:
                ctx.dport = nat.port
            return f"REDIRECT to {addr or 'the input interface address'}:{ctx.dport}"
        return redirect
    if nat.kind == "masquerade":
        def masquerade(ctx: _Ctx) -> str:
            addr = local.primary(ctx.iout, ctx.family)
            ctx.src = int(addr) if addr is not None else None
            if nat.port is not None:
                ctx.sport = nat.port
            return f"MASQUERADE to {addr or 'the output interface address'}"
        return masquerade
    if nat.kind == "netmap":
        net = ipaddress.ip_network(nat.address or "0.0.0.0/0", strict=False)
        base, mask = int(net.network_address), int(net.netmask)

        def netmap(ctx: _Ctx) -> str:
            attr = "dst" if ctx.hook in ("prerouting", "output") else "src"
            value = getattr(ctx, attr)
            if value is not None:
                setattr(ctx, attr, (value & ~mask) | base)
            return f"NETMAP {attr} into {net}"
        return netmap
    return lambda ctx: nat.kind.upper()


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


def _set_mark(mark: SetMark, name: str) -> Callable[[_Ctx], str]:
    value, mask = mark.value, mark.mask

    def set_mark(ctx: _Ctx) -> str:
        if ctx.mark is None and mask != _FULL:
            return f"{name} (mark unknown)"
        ctx.mark = ((ctx.mark or 0) & ~mask) ^ value
        return f"{name} set to {ctx.mark:#x}"
    return set_mark


def _set_ct_mark(mark: SetMark, name: str) -> Callable[[_Ctx], str]:
    value, mask = mark.value, mark.mask

    def set_ct(ctx: _Ctx) -> str:
        if ctx.ctmark is None and mask != _FULL:
            return f"{name} (connection mark unknown)"
        ctx.ctmark = ((ctx.ctmark or 0) & ~mask) ^ value
        return f"{name} set to {ctx.ctmark:#x}"
    return set_ct


def _copy_mark(copy: MarkCopy, name: str) -> Callable[[_Ctx], str]:
    nfmask, ctmask = copy.nfmask, copy.ctmask
    if copy.to_ct:
        def save(ctx: _Ctx) -> str:
            if ctx.mark is None or ctx.ctmark is None:
                ctx.ctmark = None
            else:
                ctx.ctmark = (ctx.ctmark & ~ctmask) ^ (ctx.mark & nfmask)
            return f"{name} save-mark"
        return save

    def restore(ctx: _Ctx) -> str:
        if ctx.ctmark is None or ctx.mark is None:
            ctx.mark = None
        else:
            ctx.mark = (ctx.mark & ~nfmask) ^ (ctx.ctmark & ctmask)
        return f"{name} restore-mark"
    return restore
