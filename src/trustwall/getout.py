"""``trustwall verify URL`` and ``trustwall fix URL``: run the real clients, and the whole
getting-out story -- fetch the CA the endpoint (or the proxy in front of it) presents, install
it into every store, prove each client now connects, say how to undo.

Clients run with the environment a *new login shell* would get (pam_env's /etc/environment,
then ``bash -l``'s /etc/profile.d), plus the proxy variables of the caller, with the caller's
HOME: that is what the user's next terminal will see, not this process's environment (which
may carry CA variables that hide the problem).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from trustwall.clients import CLIENTS, PROXY_VARIABLES, login_environment, run_all
from trustwall.errors import ProblemFound
from trustwall.stores.base import Scope
from trustwall.stores.registry import CertSummary, ChangeResult


def login_session_environment() -> dict[str, str]:
    """What the user's next login shell gets, plus the caller's proxy variables (the clients
    must go the way the user goes)."""
    env = login_environment()
    for var in PROXY_VARIABLES:
        if var in os.environ and var not in env:
            env[var] = os.environ[var]
    return env


@dataclass(frozen=True)
class ClientVerdict:
    name: str
    ok: bool
    error: str
    seconds: float


@dataclass(frozen=True)
class VerifyResult:
    url: str
    clients: tuple[ClientVerdict, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.clients)


def verify(url: str, *, clients: Sequence[str] | None = None, timeout: float = 15,
           env: dict[str, str] | None = None) -> VerifyResult:
    """Run each real client against ``url`` as a new login session would."""
    environment = login_session_environment() if env is None else env
    results = run_all(url, clients=tuple(clients or CLIENTS), env=environment, timeout=timeout)
    return VerifyResult(url, tuple(ClientVerdict(r.name, r.ok, r.error, r.seconds)
                                   for r in results.values()))


@dataclass(frozen=True)
class FixResult:
    """``before`` is None with ``root`` (the clients run on this host, not in the tree);
    ``after`` is None for a dry run or a ``root`` tree; ``install`` None when every client
    already connected."""

    url: str
    anchors: tuple[CertSummary, ...]
    before: VerifyResult | None
    install: ChangeResult | None
    after: VerifyResult | None
    root: str | None = None


def fetch_anchors(url: str, *, timeout: float = 10) -> tuple[list, str]:
    """The certificates to trust for ``url`` (through the caller's proxy), and the message."""
    from trustwall.tls.fetch import fetch
    from trustwall.tls.probe import parse_target, proxy_from_env

    target = parse_target(url)
    fetched = fetch(target, proxy=proxy_from_env(target, os.environ), timeout=timeout)
    if not fetched.root_found:
        raise ProblemFound(fetched.message)
    return list(fetched.certs), fetched.message


def anchors_from_files(files: Sequence[str]) -> tuple[list, str]:
    """The CA(s) the user brings (exported from a browser, handed out by IT) for ``fix --ca``;
    a certificate that is not a CA, or has expired, is refused (BadInput)."""
    from trustwall.stores.registry import load_for_install

    certs = load_for_install(files)
    return certs, f"the CA given with --ca ({', '.join(files)})"


def fix(url: str, certs: Sequence, *, before: VerifyResult | None,
        clients: Sequence[str] | None = None, kinds: Sequence[str] | None = None,
        timeout: float = 15, state_dir: str | None = None,
        scope: Scope | None = None, root: str | None = None,
        dry_run: bool = False) -> FixResult:
    """Install ``certs`` (from :func:`fetch_anchors` or :func:`anchors_from_files`, after the
    user confirmed) into every store, then verify the clients again.

    ``dry_run``: plan the install, change nothing, run nothing. ``root``: the stores of the tree
    under that directory (an image, a chroot); the clients cannot be verified there.
    """
    from trustwall.stores.registry import install

    change = install(certs, root=root, kinds=kinds, state_dir=state_dir, scope=scope,
                     dry_run=dry_run)
    after = None
    if not dry_run and root is None:
        names = clients or ([c.name for c in before.clients] if before else None)
        after = verify(url, clients=names, timeout=timeout)
    return FixResult(url, tuple(CertSummary.of(c) for c in certs), before, change, after, root)
