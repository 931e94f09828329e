"""The doctor's chapters of ``trustwall lab demo``: ``why`` finds the interception and hands over
to ``fix``; ``why-in`` finds the REJECT and hands over to ``fw allow``. Each runs the real CLI
inside the lab namespace, as a user on that host would."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

_BASE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "HOME": "/root", "LANG": "C.UTF-8"}
_VERDICT = {"ok": "OK", "broken": "FAIL", "warning": "INFO", "skipped": "INFO"}


def _ladder(ns: Any, argv: list[str], env: dict[str, str]) -> dict:
    proc = ns.run([sys.executable, "-m", "trustwall", *argv, "--json"], env=env, check=False,
                  timeout=120)
    return json.loads(proc.stdout)


def _rows(ladder: dict) -> tuple[Any, ...]:
    from trustwall.lab.demo import Row

    rows = [Row(r["name"], _VERDICT[r["status"]], r["found"])
            for r in ladder["rungs"] if r["status"] != "skipped"]
    broken = next((r for r in ladder["rungs"] if r["name"] == ladder["broken"]), None)
    if broken is not None and broken["next_command"]:
        rows.append(Row("next", "INFO", broken["next_command"]))
    return tuple(rows)


def why_step(lab: Any, url: str) -> Any:
    """``trustwall why URL`` on the client, through the lab's proxy, with the host's stores."""
    from trustwall.lab.demo import Step

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


def why_in_step(lab: Any, port: int) -> Any:
    """``trustwall why-in PORT`` on the server: the REJECT and the planned ACCEPT."""
    from trustwall.lab.demo import Step

    t = time.perf_counter()
    ladder = _ladder(lab.server, ["why-in", str(port)], dict(_BASE_ENV))
    return Step(
        "Letting in", f"The doctor on the server: why-in {port}",
        "Something listens on every address, so the host is not the problem; a NEW packet "
        "from any remote address is rejected by INPUT rule 10. The doctor plans the ACCEPT "
        "the way trustwall fw allow --plan does: at position 10, before the REJECT.",
        f"trustwall why-in {port}", _rows(ladder), time.perf_counter() - t)
