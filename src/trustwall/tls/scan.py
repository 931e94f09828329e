"""The probe's checks for many endpoints at once (asyncio, bounded concurrency).

Stores are discovered once and OpenSSL stores are cached across endpoints by one
:class:`Verifier`, so per-endpoint cost is the handshake plus a few X509_verify_cert calls.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustwall.errors import BadInput, ParseError
from trustwall.tls.clients import discover
from trustwall.tls.probe import (
    DEFAULT_TIMEOUT,
    Proxy,
    Target,
    client_context,
    parse_target,
    probe_async,
    proxy_from_env,
)
from trustwall.tls.report import ProbeReport, diagnose
from trustwall.tls.verify import Verifier


def read_targets(path: str | os.PathLike[str]) -> list[Target]:
    """One URL or HOST[:PORT] per line; blank lines and ``#`` comments are skipped."""
    targets = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            targets.append(parse_target(text))
        except BadInput as exc:
            raise ParseError(str(exc), source=str(path), line=number, token=text) from None
    return targets


@dataclass(frozen=True)
class ScanSummary:
    endpoints: int
    all_clients_ok: int
    trust_problems: int
    unreachable: int
    intercepted: int
    elapsed_s: float

    @property
    def endpoints_per_s(self) -> float:
        return round(self.endpoints / self.elapsed_s, 1) if self.elapsed_s else 0.0


async def scan_async(targets: Iterable[Target], *, concurrency: int = 50,
                     timeout: float = DEFAULT_TIMEOUT, proxy: Proxy | None = None,
                     use_env_proxy: bool = True, environ: Mapping[str, str] | None = None,
                     root: str = "/", java: bool = True, certifi_path: str | None = None
                     ) -> AsyncIterator[ProbeReport]:
    """Yield one report per target, in completion order."""
    env = os.environ if environ is None else environ
    environment = discover(env, root, java=java, certifi_path=certifi_path)
    verifier = Verifier()
    context = client_context()
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(target: Target) -> ProbeReport:
        via = proxy if proxy is not None else (proxy_from_env(target, env)
                                               if use_env_proxy else None)
        async with gate:
            handshake = await probe_async(target, proxy=via, timeout=timeout, context=context)
        return diagnose(handshake, environment, verifier=verifier)

    for next_done in asyncio.as_completed([one(t) for t in targets]):
        yield await next_done


def scan(targets: list[Target], *, on_report: Callable[[ProbeReport], None] | None = None,
         **kwargs: Any) -> tuple[list[ProbeReport], ScanSummary]:
    """Synchronous scan: all reports (completion order) and a summary."""
    import time

    started = time.monotonic()

    async def run() -> list[ProbeReport]:
        reports = []
        async for report in scan_async(targets, **kwargs):
            reports.append(report)
            if on_report is not None:
                on_report(report)
        return reports

    reports = asyncio.run(run())
    codes = [r.exit_code for r in reports]
    summary = ScanSummary(len(reports), codes.count(0), codes.count(1), codes.count(3),
                          sum(1 for r in reports if r.interception.detected),
                          round(time.monotonic() - started, 3))
    return reports, summary
