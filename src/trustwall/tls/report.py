"""The probe as a user sees it: chain, per-store and per-client verdicts, interception, diagnosis.

``diagnose(handshake, environment)`` is pure (no network): it turns a captured handshake and a
store/client map into a :class:`ProbeReport`. ``probe_report`` adds the connection.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from trustwall.certs import Cert
from trustwall.errors import EXIT_OK, EXIT_PROBLEM, EXIT_UNREACHABLE
from trustwall.tls.clients import Environment, discover
from trustwall.tls.explain import finding
from trustwall.tls.intercept import Interception, detect
from trustwall.tls.probe import (
    DEFAULT_TIMEOUT,
    Failure,
    Handshake,
    Proxy,
    Target,
    probe,
    proxy_from_env,
)
from trustwall.tls.verify import Anchors, Verdict, Verifier


@dataclass(frozen=True)
class ChainEntry:
    subject: str
    issuer: str
    sha256: str
    not_before: str
    not_after: str
    is_ca: bool


@dataclass(frozen=True)
class StoreVerdict:
    trusted: bool
    error: str | None
    detail: str | None = None  # OpenSSL's message, the depth, or why the store is unreadable


@dataclass(frozen=True)
class ClientVerdict:
    trusted: bool
    store: str
    error: str | None
    because: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Diagnosis:
    code: str
    summary: str
    next_command: str
    cause: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Connection:
    address: str | None
    proxy: str | None
    servername: str | None
    protocol: str | None
    cipher: str | None
    alpn: str | None
    failure: str | None
    failure_detail: str | None
    elapsed_ms: float


@dataclass(frozen=True)
class ProbeReport:
    target: str
    connection: Connection
    chain: tuple[ChainEntry, ...]
    interception: Interception
    stores: dict[str, StoreVerdict]
    clients: dict[str, ClientVerdict]
    diagnosis: Diagnosis

    def to_json(self) -> dict:
        """The JSON document (stable keys), built directly: a scan writes one per endpoint."""
        return {
            "target": self.target,
            "connection": dict(vars(self.connection)),
            "chain": [dict(vars(c)) for c in self.chain],
            "interception": {"detected": self.interception.detected,
                             "product": self.interception.product,
                             "evidence": list(self.interception.evidence),
                             "confidence": self.interception.confidence},
            "stores": {n: dict(vars(v)) for n, v in self.stores.items()},
            "clients": {n: dict(vars(v)) for n, v in self.clients.items()},
            "diagnosis": {**vars(self.diagnosis), "notes": list(self.diagnosis.notes)},
        }

    @property
    def exit_code(self) -> int:
        if not self.chain:
            return EXIT_UNREACHABLE
        ok = self.connection.failure is None and all(c.trusted for c in self.clients.values())
        return EXIT_OK if ok else EXIT_PROBLEM


@functools.lru_cache(maxsize=4096)
def _cert(der: bytes) -> Cert:
    """Parsed once per process: a scan meets the same CA certificates behind every site."""
    return Cert.from_der(der, source="presented")


@functools.lru_cache(maxsize=4096)
def _entry(cert: Cert) -> ChainEntry:
    return ChainEntry(cert.subject_str, cert.issuer_str, cert.sha256,
                      cert.not_before.isoformat(), cert.not_after.isoformat(), cert.is_ca)


def _store_verdict(v: Verdict) -> StoreVerdict:
    detail = v.message if v.trusted is False else f"anchor: {v.anchor}"
    if v.depth is not None and not v.trusted:
        detail = f"{v.message} (depth {v.depth})"
    return StoreVerdict(v.trusted, v.error, detail)


def diagnose(handshake: Handshake, environment: Environment, *,
             verifier: Verifier | None = None) -> ProbeReport:
    """Verdicts, interception and diagnosis for a captured handshake (no network)."""
    verifier = verifier or Verifier()
    target = handshake.target
    name = handshake.verify_name
    certs = tuple(_cert(der) for der in handshake.presented_chain)
    failure = handshake.failure
    connection = Connection(handshake.address, handshake.proxy, handshake.servername,
                            handshake.protocol, handshake.cipher, handshake.alpn,
                            failure.kind if failure else None,
                            (failure.message + (f" [{failure.detail}]" if failure.detail and
                                                failure.detail not in failure.message else ""))
                            if failure else None, handshake.elapsed_ms)
    if not certs:
        assert failure is not None
        f = finding(failure.kind, host=target.host, port=target.port, url=target.url)
        diagnosis = Diagnosis(failure.kind, f"{f.summary} {failure.message}", f.next_command,
                              f.cause)
        return ProbeReport(target.url, connection, (), Interception(False, None, (), "none"),
                           {}, {}, diagnosis)
    chain = handshake.presented_chain
    verdicts: dict[str, Verdict] = {
        store_name: verifier.verify(chain, anchors, name)
        for store_name, anchors in environment.stores.items()}
    stores = {n: _store_verdict(v) for n, v in verdicts.items()}
    clients: dict[str, ClientVerdict] = {}
    for client, use in environment.clients.items():
        anchors = environment.stores[use.store]
        v = verdicts[use.store]
        # Trusted without partial chains is trusted with them (they only shorten the path);
        # otherwise this client's own flags decide.
        if use.strict or (use.partial_chain and not v.trusted):
            v = verifier.verify(chain, anchors, name, partial_chain=use.partial_chain,
                                strict=use.strict)
        clients[client] = ClientVerdict(v.trusted, use.store, v.error, use.because, use.note)
    public = verdicts.get("certifi") or verifier.verify(chain, environment.stores["certifi"],
                                                        name)
    # Does the leaf name the host? Verify against the leaf itself (partial chain, no trust
    # question): only the name check can then fail.
    name_matches = _names_host(verifier, chain, name)
    interception = detect(certs, public_trusted=public.trusted, public_error=public.error,
                          name_matches=name_matches)
    diagnosis = _diagnosis(target, clients, stores, interception, environment, verifier,
                           chain, name, failure)
    return ProbeReport(target.url, connection, tuple(_entry(c) for c in certs), interception,
                       stores, clients, diagnosis)


def _names_host(verifier: Verifier, chain: tuple[bytes, ...], name: str) -> bool:
    v = verifier.verify(chain[:1], Anchors("leaf", certs=chain[:1]), name, partial_chain=True)
    return v.error not in ("X509_V_ERR_HOSTNAME_MISMATCH", "X509_V_ERR_IP_ADDRESS_MISMATCH")


def _diagnosis(target: Target, clients: dict[str, ClientVerdict],
               stores: dict[str, StoreVerdict], interception: Interception,
               environment: Environment, verifier: Verifier, chain: tuple[bytes, ...],
               name: str, failure: Failure | None) -> Diagnosis:
    notes: list[str] = []
    python = environment.clients.get("python")
    if python is not None and not python.strict and clients["python"].trusted:
        strict = verifier.verify(chain, environment.stores[python.store], name,
                                 partial_chain=True, strict=True)
        if not strict.trusted:
            notes.append(f"Python 3.13+ (VERIFY_X509_STRICT) would reject this chain: "
                         f"{strict.error}")
    for client, verdict in clients.items():
        if verdict.note:
            notes.append(f"{client}: {verdict.note}")
    failing = [c for c, v in clients.items() if not v.trusted]
    if failure is not None and not failing:
        # Trusted, but the handshake still failed after the certificates (a demanded client
        # certificate, no common cipher): that failure is the diagnosis.
        f = finding(failure.kind, host=target.host, port=target.port, url=target.url)
        return Diagnosis(failure.kind, f"{f.summary} {failure.message}", f.next_command,
                         f.cause, tuple(notes))
    if failure is not None:
        notes.append(f"the handshake itself failed: {failure.message}")
    if not failing:
        f = finding("ok", host=target.host, port=target.port, url=target.url)
        return Diagnosis("ok", f.summary, f.next_command, f.cause, tuple(notes))
    system_ok = stores.get("system-bundle", StoreVerdict(False, None)).trusted
    if system_ok:
        bundle = environment.stores["system-bundle"].files[0]
        exports = {"requests": f"REQUESTS_CA_BUNDLE={bundle}", "pip": f"PIP_CERT={bundle}",
                   "node": f"NODE_EXTRA_CA_CERTS={bundle}", "curl": f"CURL_CA_BUNDLE={bundle}",
                   "python": f"SSL_CERT_FILE={bundle}", "git": f"GIT_SSL_CAINFO={bundle}"}
        fix = " ".join(exports[c] for c in failing if c in exports)
        return Diagnosis(
            "clients_use_other_stores",
            f"The system store trusts this chain, but {', '.join(failing)} read another store.",
            f"export {fix}" if fix else f"sudo trustwall fix {target.url}",
            "Clients with their own CA bundle (certifi, node's built-in roots, Java cacerts) "
            "do not see certificates added to the system store.", tuple(notes))
    errors = Counter(clients[c].error for c in failing)
    code = errors.most_common(1)[0][0] or "untrusted"
    f = finding(code, host=target.host, port=target.port, url=target.url)
    summary = f"{f.summary} Fails: {', '.join(failing)}."
    if interception.detected:
        by = f" by {interception.product}" if interception.product else ""
        summary = f"TLS inspection{by}: {summary}"
    return Diagnosis(code, summary, f.next_command, f.cause, tuple(notes))


def probe_report(target: Target, *, proxy: Proxy | None = None, use_env_proxy: bool = True,
                 servername: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 environ: Mapping[str, str] | None = None, root: str = "/",
                 java: bool = True, at: dt.datetime | None = None,
                 certifi_path: str | None = None) -> ProbeReport:
    """Probe ``target`` and judge the presented chain for every store and client.

    ``environ`` defaults to ``os.environ``; tests pass their own, with ``root`` pointing at a
    directory tree holding the system stores.
    """
    env = os.environ if environ is None else environ
    if proxy is None and use_env_proxy:
        proxy = proxy_from_env(target, env)
    handshake = probe(target, proxy=proxy, servername=servername, timeout=timeout)
    environment = discover(env, root, java=java, certifi_path=certifi_path)
    return diagnose(handshake, environment, verifier=Verifier(at=at))
