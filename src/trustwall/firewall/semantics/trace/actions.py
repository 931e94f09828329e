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
        return _set_mark(rewrite, name)
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

        def dnat_snat(ctx: _Ctx) -> str:
            ctx.nat = ctx.nat | {nat.kind}  # conntrack's status bit (``ct status dnat``)
            return _rewrite(ctx, attr, nat.address, nat.port)
        return dnat_snat
    if nat.kind == "redirect":
        def redirect(ctx: _Ctx) -> str:
            ctx.nat = ctx.nat | {"dnat"}
            loop = "127.0.0.1" if ctx.family == 4 else "::1"
            addr = loop if ctx.hook == "output" else local.primary(ctx.iin, ctx.family)
            ctx.dst = int(ipaddress.ip_address(addr)) if addr is not None else None
            if nat.port is not None:
                ctx.dport = nat.port
            return f"REDIRECT to {addr or 'the input interface address'}:{ctx.dport}"
        return redirect
    if nat.kind == "masquerade":
        def masquerade(ctx: _Ctx) -> str:
            ctx.nat = ctx.nat | {"snat"}
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
            ctx.nat = ctx.nat | {"dnat" if attr == "dst" else "snat"}
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
    """``mark = (mark & ~mask) ^ value`` on the packet or (``ct``) its connection; unknown
    before unless the mask covers every bit."""
    value, mask = mark.value, mark.mask
    attr, what = ("ctmark", "connection mark") if mark.ct else ("mark", "mark")

    def set_mark(ctx: _Ctx) -> str:
        old = getattr(ctx, attr)
        if old is None and mask != _FULL:
            return f"{name} ({what} unknown)"
        new = ((old or 0) & ~mask) ^ value
        setattr(ctx, attr, new)
        return f"{name} set to {new:#x}"
    return set_mark


def _copy_mark(copy: MarkCopy, name: str) -> Callable[[_Ctx], str]:
    """save-mark: ``ctmark = (ctmark & ~ctmask) ^ (mark & nfmask)``; restore-mark the other
    way round. Unknown on either side leaves the result unknown."""
    if copy.to_ct:
        dst, src, keep, take, word = "ctmark", "mark", copy.ctmask, copy.nfmask, "save-mark"
    else:
        dst, src, keep, take, word = "mark", "ctmark", copy.nfmask, copy.ctmask, "restore-mark"

    def run(ctx: _Ctx) -> str:
        old, new = getattr(ctx, dst), getattr(ctx, src)
        setattr(ctx, dst, None if old is None or new is None else (old & ~keep) ^ (new & take))
        return f"{name} {word}"
    return run
