"""What the story of ``trustwall lab demo`` is made of (a :class:`Step` of :class:`Row`
observations), and the doctor's chapters: ``why`` finds the interception and hands over to
``fix``; ``why-in`` finds the REJECT and hands over to ``fw allow``. Each runs the real CLI inside
the lab namespace, as a user on that host would."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from trustwall.clients.login import base_environment
from trustwall.lab.netns import Netns

if TYPE_CHECKING:
    from trustwall.lab.managed import ManagedHost
    from trustwall.lab.topology import Lab


@dataclass(frozen=True)
class Row:
    """One observation: who/what, the verdict (OK, FAIL or INFO) and the exact detail."""

    subject: str
    verdict: str
    detail: str


@dataclass(frozen=True)
class Step:
    chapter: str
    title: str
    story: str
    command: str
    rows: tuple[Row, ...]
    seconds: float


_BASE_ENV = base_environment("/root")
_VERDICT = {"ok": "OK", "broken": "FAIL", "warning": "INFO", "skipped": "INFO"}


def _ladder(ns: Netns | ManagedHost, argv: list[str], env: dict[str, str]) -> dict:
    proc = ns.run([sys.executable, "-m", "trustwall", *argv, "--json"], env=env, check=False,
                  timeout=120)
    return json.loads(proc.stdout)


def _rows(ladder: dict) -> tuple[Row, ...]:
    rows = [Row(r["name"], _VERDICT[r["status"]], r["found"])
            for r in ladder["rungs"] if r["status"] != "skipped"]
    broken = next((r for r in ladder["rungs"] if r["name"] == ladder["broken"]), None)
    if broken is not None and broken["next_command"]:
        rows.append(Row("next", "INFO", broken["next_command"]))
    return tuple(rows)


def why_step(lab: Lab, url: str) -> Step:
    """``trustwall why URL`` on the client, through the lab's proxy, with the host's stores."""
    t = time.perf_counter()
    env = {**_BASE_ENV, "https_proxy": lab.proxy_url}
    ladder = _ladder(lab.client, ["why", url, "--timeout", "5"], env)
    return Step(
        "Getting out", "The doctor climbs the ladder to the broken rung",
        "DNS, route, TCP, the proxy's CONNECT and the TLS handshake all pass; the trust rung "
        "breaks: the chain is issued by the inspection CA, which curl's store lacks. The "
        "doctor hands over to trustwall fix.",
        f"https_proxy={lab.proxy_url} trustwall why {url}", _rows(ladder),
        time.perf_counter() - t)


def why_in_step(lab: Lab, port: int) -> Step:
    """``trustwall why-in PORT`` on the server: the REJECT and the planned ACCEPT."""
    t = time.perf_counter()
    ladder = _ladder(lab.server, ["why-in", str(port)], dict(_BASE_ENV))
    return Step(
        "Letting in", f"The doctor on the server: why-in {port}",
        "Something listens on every address, so the host is not the problem; a NEW packet "
        "from any remote address is rejected by INPUT rule 10. The doctor plans the ACCEPT "
        "the way trustwall fw allow --plan does: at position 10, before the REJECT, and "
        "names the command that applies it, journaled.",
        f"trustwall why-in {port}", _rows(ladder), time.perf_counter() - t)


def why_in_owner_step(host: ManagedHost, port: int) -> Step:
    """``trustwall why-in PORT`` inside a managed lab host (firewalld's): the owner's reject
    and the owner's own command as next."""
    t = time.perf_counter()
    # --from the client, as the user who saw JConsole fail would ask: without it the doctor
    # does not know the interface the packet arrives on, and firewalld's loopback accept
    # makes the answer honestly "ACCEPT or REJECT"
    ladder = _ladder(host, ["why-in", str(port), "--from", host.client_ip], dict(_BASE_ENV))
    return Step(
        "Letting in, firewalld", f"The doctor on the firewalld server: why-in {port}",
        "The trace walks every base chain the kernel runs, firewalld's own nft table "
        "included: the packet lands in firewalld's zone (as firewalld dispatches it: source, "
        "interface, default zone), whose final reject is what the client saw. The doctor "
        "names firewalld and gives firewalld's own command, which persists the change where "
        "firewall-cmd --list-all shows it.",
        f"trustwall why-in {port} --from {host.client_ip}", _rows(ladder),
        time.perf_counter() - t)
