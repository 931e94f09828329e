"""Is this chain from a TLS-inspection box rather than the site? By whom? How sure are we?

Two kinds of evidence:
  * the issuer (or another certificate in the chain) names a known inspection product - the
    maintained table below, matched against subject/issuer names (CN, O, OU);
  * the chain does not lead to any root of the public Mozilla set (certifi) although the leaf
    names the site: a private CA is answering for a public name.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from trustwall.certs import Cert

# (product, pattern over a certificate's subject or issuer, case-insensitive). Patterns are
# the names these products put in their default CA certificates; keep one line per product.
INSPECTION_PRODUCTS: tuple[tuple[str, str], ...] = (
    ("Zscaler", r"zscaler"),
    ("Fortinet FortiGate", r"fortinet|fortigate|fortiproxy|fortinet_ca_ssl"),
    ("Palo Alto Networks", r"palo ?alto|paloaltonetworks|pan-os"),
    ("Blue Coat / Symantec ProxySG", r"blue ?coat|proxysg|symantec.*(proxy|web gateway)"),
    ("Cisco Umbrella", r"cisco umbrella|opendns"),
    ("Cisco IronPort / Secure Web Appliance", r"ironport|cisco.*(wsa|web security|secure web)"),
    ("F5 BIG-IP / SSL Orchestrator", r"\bf5\b|big-?ip|ssl orchestrator"),
    ("Netskope", r"netskope"),
    ("Forcepoint / Websense", r"forcepoint|websense"),
    ("Sophos", r"sophos"),
    ("Check Point", r"check ?point"),
    ("Kaspersky (AV scanning)", r"kaspersky"),
    ("Avast / AVG (AV scanning)", r"avast|\bavg\b"),
    ("ESET (AV scanning)", r"\beset\b"),
    ("Bitdefender (AV scanning)", r"bitdefender"),
    ("McAfee / Skyhigh", r"mcafee|skyhigh"),
    ("Barracuda", r"barracuda"),
    ("WatchGuard", r"watchguard"),
    ("SonicWall", r"sonicwall"),
    ("Cloudflare Gateway", r"cloudflare.*gateway|gateway ca - cloudflare"),
    ("iboss", r"\biboss\b"),
    ("Menlo Security", r"menlo security"),
    ("Squid ssl-bump", r"\bsquid\b"),
    ("mitmproxy", r"mitmproxy"),
    ("Fiddler", r"fiddler"),
    ("Burp Suite", r"portswigger|\bburp\b"),
    ("Charles Proxy", r"charles proxy|charlesproxy"),
)

_COMPILED = tuple((product, re.compile(pattern, re.IGNORECASE))
                  for product, pattern in INSPECTION_PRODUCTS)


@dataclass(frozen=True)
class Interception:
    detected: bool
    product: str | None
    evidence: tuple[str, ...]
    confidence: str  # none | low | medium | high


@functools.lru_cache(maxsize=4096)
def match_product(name: str) -> str | None:
    """The inspection product a subject/issuer string names, if any."""
    for product, regex in _COMPILED:
        if regex.search(name):
            return product
    return None


def detect(chain: Sequence[Cert], *, public_trusted: bool, public_error: str | None,
           name_matches: bool) -> Interception:
    """Judge interception from the presented chain and its verdict against the public roots.

    ``public_trusted``/``public_error``: the verdict against certifi (Mozilla's set) for the
    host name; ``name_matches``: the leaf names the host (an inspection box mints the site's
    name, a captive portal usually does not).
    """
    if not chain:
        return Interception(False, None, (), "none")
    evidence: list[str] = []
    product = None
    for position, cert in enumerate(chain):
        for role, text in (("issuer", cert.issuer_str), ("subject", cert.subject_str)):
            if role == "subject" and position == 0:
                continue  # the leaf's subject is the site's name, not the box's
            found = match_product(text)
            if found and product is None:
                product = found
                evidence.append(f"{role} of certificate {position} names {found}: {text}")
    if public_trusted:
        if product is None:
            return Interception(False, None, ("the chain leads to a public (Mozilla) root",),
                                "none")
        evidence.append("yet the chain leads to a public root (product CA publicly trusted?)")
        return Interception(True, product, tuple(evidence), "low")
    chain_error = public_error not in (None, "X509_V_ERR_HOSTNAME_MISMATCH",
                                       "X509_V_ERR_IP_ADDRESS_MISMATCH",
                                       "X509_V_ERR_CERT_HAS_EXPIRED",
                                       "X509_V_ERR_CERT_NOT_YET_VALID")
    if chain_error:
        evidence.append(f"the chain does not lead to a public root ({public_error})")
    leaf = chain[0]
    if name_matches and chain_error:
        evidence.append(f"the leaf names the site ({leaf.subject_str}) but is issued by "
                        f"{leaf.issuer_str}")
    if product is not None:
        return Interception(True, product, tuple(evidence), "high" if chain_error else "medium")
    if chain_error and name_matches and not leaf.is_self_issued:
        return Interception(True, None, tuple(evidence), "medium")
    if chain_error:
        return Interception(False, None, tuple(evidence), "low")
    return Interception(False, None, tuple(evidence), "none")
