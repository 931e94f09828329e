"""``ca fetch``: the certificate(s) a user must trust to accept what an endpoint presents.

* the root, when the endpoint sends it (a self-issued CA at the end of the chain);
* otherwise the top certificate sent plus its issuer(s) fetched from the AIA caIssuers URL,
  through the same proxy, up to a self-issued root;
* otherwise the top certificate sent if it is a CA (an intermediate: clients that accept a
  trusted intermediate will do), with a plain statement that the root was not sent and could
  not be fetched (and how to export it from a browser);
* never a certificate that is not a CA: when the endpoint (typically an inspection proxy)
  presents only its leaf and no AIA URL leads to the issuer, nothing is returned to trust,
  and the message says where the CA can come from instead.
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID

from trustwall.certs import Cert, load_certs
from trustwall.errors import BadInput, Unreachable
from trustwall.tls.probe import DEFAULT_TIMEOUT, Handshake, Proxy, Target, probe

_MAX_AIA_HOPS = 4
_MAX_AIA_BYTES = 1 << 20

BROWSER_EXPORT_HINT = (
    "Export it from a browser on a machine that trusts it: open the site, click the padlock, "
    "view the certificate, select the top of the chain and export it as PEM (Base64); or ask "
    "the proxy team for the inspection CA.")


@dataclass(frozen=True)
class Fetched:
    """What to trust, where each certificate came from, and whether a root was reached."""

    certs: tuple[Cert, ...]
    sources: tuple[str, ...]  # "presented" or the AIA URL, one per cert
    root_found: bool
    message: str


def aia_ca_issuers(cert: Cert) -> list[str]:
    """The caIssuers URLs of ``cert`` (http only: that is how AIA is published)."""
    try:
        aia = cert.x509.extensions.get_extension_for_oid(
            ExtensionOID.AUTHORITY_INFORMATION_ACCESS).value
    except x509.ExtensionNotFound:
        return []
    return [d.access_location.value for d in aia
            if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS
            and isinstance(d.access_location, x509.UniformResourceIdentifier)
            and d.access_location.value.lower().startswith("http://")]


def download(url: str, *, proxy: Proxy | None, timeout: float) -> bytes:
    """GET ``url`` (directly or through the HTTP proxy, with its Basic credentials)."""
    handlers: list[urllib.request.BaseHandler] = []
    if proxy is not None:
        cred = f"{proxy.username}:{proxy.password or ''}@" if proxy.username else ""
        handlers.append(urllib.request.ProxyHandler(
            {"http": f"http://{cred}{proxy.host}:{proxy.port}"}))
    else:
        handlers.append(urllib.request.ProxyHandler({}))  # ignore the environment: explicit
    opener = urllib.request.build_opener(*handlers)
    with opener.open(url, timeout=timeout) as response:
        return response.read(_MAX_AIA_BYTES)


def anchors_to_trust(handshake: Handshake, *, proxy: Proxy | None = None,
                     timeout: float = DEFAULT_TIMEOUT) -> Fetched:
    """Pick the certificate(s) to trust from a captured handshake (see module doc)."""
    if not handshake.presented_chain:
        failure = handshake.failure
        raise Unreachable(f"no certificate presented by {handshake.target.url}"
                          + (f": {failure.message}" if failure else ""))
    presented = [Cert.from_der(d, source="presented") for d in handshake.presented_chain]
    top = presented[-1]
    if top.is_self_issued and (top.is_ca or len(presented) == 1):
        return Fetched((top,), ("presented",), True,
                       f"the endpoint sends its root: {top.subject_str}")
    certs = [top]
    sources = ["presented"]
    problems: list[str] = []
    current = top
    for _ in range(_MAX_AIA_HOPS):
        urls = aia_ca_issuers(current)
        if not urls:
            problems.append(f"{current.subject_str} has no AIA caIssuers URL")
            break
        issuer = None
        for url in urls:
            try:
                fetched = load_certs(download(url, proxy=proxy, timeout=timeout), source=url)
            except (OSError, BadInput) as exc:
                problems.append(f"{url}: {exc}")
                continue
            issuer = next((c for c in fetched if c.subject_der == current.issuer_der), None)
            if issuer is None:
                problems.append(f"{url}: no certificate there is the issuer of "
                                f"{current.subject_str}")
                continue
            certs.append(issuer)
            sources.append(url)
            break
        if issuer is None:
            break
        if issuer.is_self_issued:
            keep = [i for i, c in enumerate(certs) if c.is_ca]  # never the leaf itself
            return Fetched(tuple(certs[i] for i in keep), tuple(sources[i] for i in keep), True,
                           f"root {issuer.subject_str} fetched from {sources[-1]}")
        current = issuer
    detail = "; ".join(problems) or "no root within 4 AIA hops"
    # A leaf is never "the CA to trust": keep only the CAs found on the way up.
    found = [(c, s) for c, s in zip(certs, sources, strict=True) if c.is_ca]
    if not found:
        return Fetched((), (), False,
                       f"only the server's own certificate ({top.subject_str}, not a CA) was "
                       f"presented, and its issuer {top.issuer_str} could not be fetched "
                       f"({detail}); there is no CA here to trust. " + BROWSER_EXPORT_HINT
                       + f" Then: sudo trustwall fix {handshake.target.url} --ca FILE")
    return Fetched(tuple(c for c, _ in found), tuple(s for _, s in found), False,
                   f"the root was not sent and could not be fetched ({detail}). "
                   + BROWSER_EXPORT_HINT)


def fetch(target: Target, *, proxy: Proxy | None = None, servername: str | None = None,
          timeout: float = DEFAULT_TIMEOUT) -> Fetched:
    """Probe ``target`` and return what to trust."""
    handshake = probe(target, proxy=proxy, servername=servername, timeout=timeout)
    return anchors_to_trust(handshake, proxy=proxy, timeout=timeout)
