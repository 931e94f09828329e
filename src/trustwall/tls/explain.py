"""The knowledge base: what an error a user pasted (or a probe found) means, and what to run next.

Three sources of text feed the same entries:
  * OpenSSL verify codes (number, ``X509_V_ERR_*`` name, or the message OpenSSL prints, which is
    what curl, Python, git and pip quote verbatim);
  * client-specific texts (Java PKIX, Node's bare code names, wget/GnuTLS wording);
  * connection failures (DNS, refused, timeout, no route, reset, proxy refusals).
The probe reports its findings with the same ``code`` keys, so ``explain`` and ``probe`` agree.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

# OpenSSL 3.0 x509_vfy.h: code -> (name, X509_verify_cert_error_string). Generated from the
# header and the library of this host; the messages are what clients quote.
VERIFY_CODES: dict[int, tuple[str, str]] = {
    0: ("X509_V_OK", "ok"),
    1: ("X509_V_ERR_UNSPECIFIED", "unspecified certificate verification error"),
    2: ("X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT", "unable to get issuer certificate"),
    3: ("X509_V_ERR_UNABLE_TO_GET_CRL", "unable to get certificate CRL"),
    4: ("X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE", "unable to decrypt certificate's signature"),
    5: ("X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE", "unable to decrypt CRL's signature"),
    6: ("X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY", "unable to decode issuer public key"),
    7: ("X509_V_ERR_CERT_SIGNATURE_FAILURE", "certificate signature failure"),
    8: ("X509_V_ERR_CRL_SIGNATURE_FAILURE", "CRL signature failure"),
    9: ("X509_V_ERR_CERT_NOT_YET_VALID",
         "certificate is not yet valid or the system clock is incorrect"),
    10: ("X509_V_ERR_CERT_HAS_EXPIRED", "certificate has expired"),
    11: ("X509_V_ERR_CRL_NOT_YET_VALID", "CRL is not yet valid"),
    12: ("X509_V_ERR_CRL_HAS_EXPIRED", "CRL has expired"),
    13: ("X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD",
         "format error in certificate's notBefore field"),
    14: ("X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD",
         "format error in certificate's notAfter field"),
    15: ("X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD", "format error in CRL's lastUpdate field"),
    16: ("X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD", "format error in CRL's nextUpdate field"),
    17: ("X509_V_ERR_OUT_OF_MEM", "out of memory"),
    18: ("X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT", "self-signed certificate"),
    19: ("X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN", "self-signed certificate in certificate chain"),
    20: ("X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "unable to get local issuer certificate"),
    21: ("X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE", "unable to verify the first certificate"),
    22: ("X509_V_ERR_CERT_CHAIN_TOO_LONG", "certificate chain too long"),
    23: ("X509_V_ERR_CERT_REVOKED", "certificate revoked"),
    24: ("X509_V_ERR_NO_ISSUER_PUBLIC_KEY", "issuer certificate doesn't have a public key"),
    25: ("X509_V_ERR_PATH_LENGTH_EXCEEDED", "path length constraint exceeded"),
    26: ("X509_V_ERR_INVALID_PURPOSE", "unsuitable certificate purpose"),
    27: ("X509_V_ERR_CERT_UNTRUSTED", "certificate not trusted"),
    28: ("X509_V_ERR_CERT_REJECTED", "certificate rejected"),
    29: ("X509_V_ERR_SUBJECT_ISSUER_MISMATCH", "subject issuer mismatch"),
    30: ("X509_V_ERR_AKID_SKID_MISMATCH", "authority and subject key identifier mismatch"),
    31: ("X509_V_ERR_AKID_ISSUER_SERIAL_MISMATCH", "authority and issuer serial number mismatch"),
    32: ("X509_V_ERR_KEYUSAGE_NO_CERTSIGN", "key usage does not include certificate signing"),
    33: ("X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER", "unable to get CRL issuer certificate"),
    34: ("X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION", "unhandled critical extension"),
    35: ("X509_V_ERR_KEYUSAGE_NO_CRL_SIGN", "key usage does not include CRL signing"),
    36: ("X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION", "unhandled critical CRL extension"),
    37: ("X509_V_ERR_INVALID_NON_CA", "invalid non-CA certificate (has CA markings)"),
    38: ("X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED", "proxy path length constraint exceeded"),
    39: ("X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE",
         "key usage does not include digital signature"),
    40: ("X509_V_ERR_PROXY_CERTIFICATES_NOT_ALLOWED",
         "proxy certificates not allowed, please set the appropriate flag"),
    41: ("X509_V_ERR_INVALID_EXTENSION", "invalid or inconsistent certificate extension"),
    42: ("X509_V_ERR_INVALID_POLICY_EXTENSION",
         "invalid or inconsistent certificate policy extension"),
    43: ("X509_V_ERR_NO_EXPLICIT_POLICY", "no explicit policy"),
    44: ("X509_V_ERR_DIFFERENT_CRL_SCOPE", "different CRL scope"),
    45: ("X509_V_ERR_UNSUPPORTED_EXTENSION_FEATURE", "unsupported extension feature"),
    46: ("X509_V_ERR_UNNESTED_RESOURCE", "RFC 3779 resource not subset of parent's resources"),
    47: ("X509_V_ERR_PERMITTED_VIOLATION", "permitted subtree violation"),
    48: ("X509_V_ERR_EXCLUDED_VIOLATION", "excluded subtree violation"),
    49: ("X509_V_ERR_SUBTREE_MINMAX", "name constraints minimum and maximum not supported"),
    50: ("X509_V_ERR_APPLICATION_VERIFICATION", "application verification failure"),
    51: ("X509_V_ERR_UNSUPPORTED_CONSTRAINT_TYPE", "unsupported name constraint type"),
    52: ("X509_V_ERR_UNSUPPORTED_CONSTRAINT_SYNTAX",
         "unsupported or invalid name constraint syntax"),
    53: ("X509_V_ERR_UNSUPPORTED_NAME_SYNTAX", "unsupported or invalid name syntax"),
    54: ("X509_V_ERR_CRL_PATH_VALIDATION_ERROR", "CRL path validation error"),
    55: ("X509_V_ERR_PATH_LOOP", "path loop"),
    56: ("X509_V_ERR_SUITE_B_INVALID_VERSION", "Suite B: certificate version invalid"),
    57: ("X509_V_ERR_SUITE_B_INVALID_ALGORITHM", "Suite B: invalid public key algorithm"),
    58: ("X509_V_ERR_SUITE_B_INVALID_CURVE", "Suite B: invalid ECC curve"),
    59: ("X509_V_ERR_SUITE_B_INVALID_SIGNATURE_ALGORITHM", "Suite B: invalid signature algorithm"),
    60: ("X509_V_ERR_SUITE_B_LOS_NOT_ALLOWED", "Suite B: curve not allowed for this LOS"),
    61: ("X509_V_ERR_SUITE_B_CANNOT_SIGN_P_384_WITH_P_256",
         "Suite B: cannot sign P-384 with P-256"),
    62: ("X509_V_ERR_HOSTNAME_MISMATCH", "hostname mismatch"),
    63: ("X509_V_ERR_EMAIL_MISMATCH", "email address mismatch"),
    64: ("X509_V_ERR_IP_ADDRESS_MISMATCH", "IP address mismatch"),
    65: ("X509_V_ERR_DANE_NO_MATCH", "no matching DANE TLSA records"),
    66: ("X509_V_ERR_EE_KEY_TOO_SMALL", "EE certificate key too weak"),
    67: ("X509_V_ERR_CA_KEY_TOO_SMALL", "CA certificate key too weak"),
    68: ("X509_V_ERR_CA_MD_TOO_WEAK", "CA signature digest algorithm too weak"),
    69: ("X509_V_ERR_INVALID_CALL", "invalid certificate verification context"),
    70: ("X509_V_ERR_STORE_LOOKUP", "issuer certificate lookup error"),
    71: ("X509_V_ERR_NO_VALID_SCTS", "Certificate Transparency required, but no valid SCTs found"),
    72: ("X509_V_ERR_PROXY_SUBJECT_NAME_VIOLATION", "proxy subject name violation"),
    73: ("X509_V_ERR_OCSP_VERIFY_NEEDED", "OCSP verification needed"),
    74: ("X509_V_ERR_OCSP_VERIFY_FAILED", "OCSP verification failed"),
    75: ("X509_V_ERR_OCSP_CERT_UNKNOWN", "OCSP unknown cert"),
    76: ("X509_V_ERR_UNSUPPORTED_SIGNATURE_ALGORITHM",
         "Cannot find certificate signature algorithm"),
    77: ("X509_V_ERR_SIGNATURE_ALGORITHM_MISMATCH",
         "subject signature algorithm and issuer public key algorithm mismatch"),
    78: ("X509_V_ERR_SIGNATURE_ALGORITHM_INCONSISTENCY",
         "cert info signature and signature algorithm mismatch"),
    79: ("X509_V_ERR_INVALID_CA", "invalid CA certificate"),
    80: ("X509_V_ERR_PATHLEN_INVALID_FOR_NON_CA", "Path length invalid for non-CA cert"),
    81: ("X509_V_ERR_PATHLEN_WITHOUT_KU_KEY_CERT_SIGN",
         "Path length given without key usage keyCertSign"),
    82: ("X509_V_ERR_KU_KEY_CERT_SIGN_INVALID_FOR_NON_CA",
         "Key usage keyCertSign invalid for non-CA cert"),
    83: ("X509_V_ERR_ISSUER_NAME_EMPTY", "Issuer name empty"),
    84: ("X509_V_ERR_SUBJECT_NAME_EMPTY", "Subject name empty"),
    85: ("X509_V_ERR_MISSING_AUTHORITY_KEY_IDENTIFIER", "Missing Authority Key Identifier"),
    86: ("X509_V_ERR_MISSING_SUBJECT_KEY_IDENTIFIER", "Missing Subject Key Identifier"),
    87: ("X509_V_ERR_EMPTY_SUBJECT_ALT_NAME", "Empty Subject Alternative Name extension"),
    88: ("X509_V_ERR_EMPTY_SUBJECT_SAN_NOT_CRITICAL",
         "Subject empty and Subject Alt Name extension not critical"),
    89: ("X509_V_ERR_CA_BCONS_NOT_CRITICAL", "Basic Constraints of CA cert not marked critical"),
    90: ("X509_V_ERR_AUTHORITY_KEY_IDENTIFIER_CRITICAL",
         "Authority Key Identifier marked critical"),
    91: ("X509_V_ERR_SUBJECT_KEY_IDENTIFIER_CRITICAL", "Subject Key Identifier marked critical"),
    92: ("X509_V_ERR_CA_CERT_MISSING_KEY_USAGE", "CA cert does not include key usage extension"),
    93: ("X509_V_ERR_EXTENSIONS_REQUIRE_VERSION_3",
         "Using cert extension requires at least X509v3"),
    94: ("X509_V_ERR_EC_KEY_EXPLICIT_PARAMS", "Certificate public key has explicit ECC parameters"),
}


def verify_code_name(code: int) -> str:
    """``20`` -> ``X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY``; unknown codes keep the number."""
    return VERIFY_CODES.get(code, (f"X509_V_ERR_{code}", ""))[0]


_CODE_BY_NAME = {name: code for code, (name, _) in VERIFY_CODES.items()}

# What `why` says too: fix fetches the CA, shows it, installs it everywhere (journaled) and
# verifies every client; `fix --ca FILE` when the CA comes from IT or a browser.
_INSTALL = "sudo trustwall fix {url}"


@dataclass(frozen=True)
class Entry:
    """One thing that can go wrong: what it is, why it happens, what to run next."""

    code: str
    summary: str
    cause: str
    next_command: str


# Failure kinds the probe classifies connections into (also matched in pasted text).
_NET_ENTRIES = [
    Entry("ok", "Every client on this host would connect.",
          "The presented chain leads to an anchor each client trusts, for this host name.",
          "trustwall verify {url}"),
    Entry("dns_failure", "The host name does not resolve.",
          "DNS has no answer for the name (typo, split-horizon DNS that only works on the VPN, "
          "or an egress proxy that must resolve names for you).",
          "getent ahosts {host}; echo https_proxy=$https_proxy"),
    Entry("connection_refused", "The server (or a firewall on the way) refused the connection.",
          "A TCP RST came back: nothing listens on that port, or a firewall rejects with "
          "tcp-reset.",
          "trustwall why {url}"),
    Entry("timeout", "The connection timed out.",
          "Packets are silently dropped (a DROP rule on the way or in this host's own OUTPUT "
          "chain) or the server never answered; in enterprise networks direct egress is "
          "usually blocked and only the proxy may go out.",
          "env | grep -i _proxy; trustwall probe {url} --proxy http://PROXY:PORT"),
    Entry("no_route", "No route to host (ICMP host unreachable / administratively prohibited).",
          "A router or firewall answered with ICMP unreachable - iptables "
          "`REJECT --reject-with icmp-host-prohibited` gives exactly this error.",
          "ip route get $(getent ahosts {host} | awk 'NR==1{{print $1}}'); trustwall why {url}"),
    Entry("network_unreachable", "Network is unreachable.",
          "This host has no route to that network (no default route, or IPv6 without "
          "IPv6 connectivity).",
          "ip route; ip -6 route"),
    Entry("blocked_locally", "The connection was blocked by this host's own firewall.",
          "The kernel refused to send (EPERM/EACCES): a local OUTPUT rule. For TCP a local "
          "DROP looks like a timeout instead, and a local REJECT like a refusal.",
          "sudo iptables-save | grep -n -E 'OUTPUT|REJECT|DROP'"),
    Entry("connection_reset", "The connection was reset.",
          "Something on the path (often a proxy or IPS that dislikes the TLS handshake or the "
          "destination) sent a TCP RST.",
          "trustwall probe {url} --json"),
    Entry("proxy_refused", "The proxy refused to open the tunnel (CONNECT).",
          "The HTTP proxy answered CONNECT with an error status: the destination or port is "
          "not allowed by its policy.",
          "curl -v -x $https_proxy {url} -o /dev/null"),
    Entry("proxy_upstream_failed", "The proxy could not reach the destination (502/504).",
          "The proxy accepted the request but its own DNS lookup or connection to the site "
          "failed: the problem is beyond the proxy, not on this host.",
          "curl -v -x $https_proxy {url} -o /dev/null"),
    Entry("proxy_auth_required", "The proxy wants credentials (407).",
          "The proxy requires authentication; give it as http://USER:PASS@proxy:port.",
          "trustwall probe {url} --proxy http://USER:PASS@PROXY:PORT"),
    Entry("proxy_unreachable", "The proxy itself cannot be reached.",
          "https_proxy points at a host/port that does not answer.",
          "env | grep -i _proxy"),
    Entry("handshake_alert", "The TLS handshake was aborted with an alert.",
          "The server (or an inspecting proxy) rejected the handshake: no common protocol or "
          "cipher, a client certificate demanded, or it does not know the SNI name.",
          "openssl s_client -connect {host}:{port} -servername {host} -tls1_2 </dev/null"),
    Entry("not_tls", "The other end does not speak TLS.",
          "A plain-HTTP port, or https_proxy written as https:// while the proxy speaks "
          "plain HTTP (\"wrong version number\").",
          "curl -v http://{host}:{port}/ -o /dev/null"),
    Entry("handshake_eof", "The connection closed during the TLS handshake.",
          "The peer hung up without an alert: an IPS/proxy dropping the session or a server "
          "that requires SNI.",
          "openssl s_client -connect {host}:{port} -servername {host} </dev/null"),
    Entry("java_pkix", "Java cannot build a path to a trusted root (PKIX path building failed).",
          "The issuing CA (usually the enterprise inspection CA) is not in the JDK's cacerts.",
          _INSTALL + " --store java"),
    Entry("go_unknown_authority", "A Go program (docker, kubectl, terraform…) does not know "
          "the issuing CA.",
          "Go reads the system bundle (or SSL_CERT_FILE / SSL_CERT_DIR): the inspection CA is "
          "not there yet. Docker registries also read /etc/docker/certs.d/HOST/ca.crt.",
          _INSTALL),
    Entry("gnutls_unknown_issuer", "GnuTLS (wget, git) does not know the issuer.",
          "The CA that signed the presented chain is not in the system bundle GnuTLS reads.",
          _INSTALL),
]

_VERIFY_ENTRIES = [
    Entry("STORE_UNREADABLE", "A trust store a client reads does not exist or cannot be read.",
          "An environment variable or the distribution default points at a missing file; the "
          "client will trust nothing (curl: error 77).",
          "trustwall stores"),
    Entry("NO_CHAIN", "No certificate was presented.",
          "The handshake ended before the server's certificate arrived.",
          "trustwall probe {url} --json"),
    Entry("X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT",
          "The issuer of a certificate in the chain is not available (code 2).",
          "An intermediate was presented but its issuer (the root) is neither sent nor trusted.",
          _INSTALL),
    Entry("X509_V_ERR_CERT_NOT_YET_VALID", "A certificate is not valid yet (code 9).",
          "This host's clock is behind, or the certificate was issued with a future start date.",
          "timedatectl status; date -u"),
    Entry("X509_V_ERR_CERT_HAS_EXPIRED", "A certificate in the chain has expired (code 10).",
          "The server (or proxy) presents an expired certificate, or this host's clock is ahead.",
          "date -u; trustwall probe {url}"),
    Entry("X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT",
          "The server presents a single self-signed certificate (code 18).",
          "Nothing signs it but itself: trust that exact certificate only if you know it.",
          "trustwall ca fetch {url} -o site.pem && trustwall cert show site.pem"),
    Entry("X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN",
          "The chain ends in a root that is sent but not trusted here (code 19).",
          "Typical of TLS inspection that sends its own root: the proxy's CA must be installed.",
          _INSTALL),
    Entry("X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
          "The issuing CA is not in the trust store (code 20).",
          "The chain was signed by a CA this store does not have - with an inspecting proxy, "
          "its enterprise CA.",
          _INSTALL),
    Entry("X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE",
          "Only the leaf was sent and its issuer is unknown (code 21).",
          "The server (or inspecting proxy, e.g. mitmproxy by default) sends no intermediate, "
          "and the issuer is not trusted here.",
          _INSTALL),
    Entry("X509_V_ERR_HOSTNAME_MISMATCH",
          "The certificate is not for this host name (code 62).",
          "Wrong name in the URL, a missing --servername/SNI, or a proxy answering for another "
          "site (captive portal, block page).",
          "trustwall probe {url} --servername {host}"),
    Entry("X509_V_ERR_IP_ADDRESS_MISMATCH",
          "The certificate does not name this IP address (code 64).",
          "Connecting by IP: the certificate must carry it as an IP SAN; use the host name.",
          "trustwall probe https://HOSTNAME:{port}"),
    Entry("X509_V_ERR_INVALID_PURPOSE",
          "The leaf is not for TLS servers (code 26).",
          "Its extendedKeyUsage lacks serverAuth.",
          "trustwall cert show site.pem"),
    Entry("X509_V_ERR_INVALID_CA",
          "A certificate acting as CA is not a valid CA (code 79).",
          "An issuer lacks basicConstraints CA:TRUE or keyCertSign; re-issue the enterprise CA.",
          "trustwall cert lint enterprise-ca.pem"),
    Entry("X509_V_ERR_MISSING_AUTHORITY_KEY_IDENTIFIER",
          "A certificate has no Authority Key Identifier (code 85).",
          "Strict verifiers (Python 3.13+ VERIFY_X509_STRICT) reject it even when the CA is "
          "installed; the CA must re-issue with AKI.",
          "trustwall cert lint enterprise-ca.pem"),
    Entry("X509_V_ERR_MISSING_SUBJECT_KEY_IDENTIFIER",
          "A CA certificate has no Subject Key Identifier (code 86).",
          "Strict verifiers (Python 3.13+) reject a CA without SKI; re-issue the CA.",
          "trustwall cert lint enterprise-ca.pem"),
    Entry("X509_V_ERR_CA_BCONS_NOT_CRITICAL",
          "The CA's basicConstraints is not marked critical (code 89).",
          "OpenSSL accepts it by default, but Python 3.13+ (VERIFY_X509_STRICT) rejects it even "
          "after installation; the inspection CA must be re-issued.",
          "trustwall cert lint enterprise-ca.pem"),
    Entry("X509_V_ERR_CA_CERT_MISSING_KEY_USAGE",
          "The CA certificate has no keyUsage extension (code 92).",
          "Strict verifiers (Python 3.13+) want keyCertSign on a CA; re-issue the CA.",
          "trustwall cert lint enterprise-ca.pem"),
]

ENTRIES: dict[str, Entry] = {e.code: e for e in [*_NET_ENTRIES, *_VERIFY_ENTRIES]}


def entry_for(code: str) -> Entry:
    """The entry for a finding code (a failure kind or an ``X509_V_ERR_*`` name)."""
    if code in ENTRIES:
        return ENTRIES[code]
    number = _CODE_BY_NAME.get(code)
    message = VERIFY_CODES[number][1] if number is not None else code
    return Entry(code, f"Certificate verification failed: {message}"
                 + (f" (code {number})." if number is not None else "."),
                 "See the OpenSSL verify documentation for this code.",
                 "trustwall probe {url}")


def _norm(text: str) -> str:
    # OpenSSL 1.1 wrote "self signed", 3.0 writes "self-signed": match both.
    return re.sub(r"[\s\-_]+", " ", text.lower())


# (pattern over the normalised text, finding code, client that prints it or None).
# Longer, more specific texts come first: "self signed certificate in certificate chain"
# must win over "self signed certificate".
_TEXT_RULES: list[tuple[str, str, str | None]] = [
    (r"pkix path (building|validation) failed|unable to find valid certification path",
     "java_pkix", "java"),
    (r"certificateexpiredexception|notafter", "X509_V_ERR_CERT_HAS_EXPIRED", "java"),
    (r"certificatenotyetvalidexception", "X509_V_ERR_CERT_NOT_YET_VALID", "java"),
    (r"no subject alternative (dns )?names? matching|no name matching",
     "X509_V_ERR_HOSTNAME_MISMATCH", "java"),
    # Go (docker, kubectl, terraform, helm): crypto/x509's own wording.
    (r"x509: certificate signed by unknown authority", "go_unknown_authority", "go"),
    (r"x509: certificate has expired or is not yet valid", "X509_V_ERR_CERT_HAS_EXPIRED", "go"),
    (r"x509: certificate is valid for .* not ", "X509_V_ERR_HOSTNAME_MISMATCH", "go"),
    (r"the remote certificate is invalid|remotecertificatechainerrors",
     "X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "dotnet"),
    (r"doesn.?t have a known issuer|issuer is not known|is not trusted",
     "gnutls_unknown_issuer", "wget"),
    (r"certificate owner does not match hostname|owner does not match",
     "X509_V_ERR_HOSTNAME_MISMATCH", "wget"),
    (r"server certificate verification failed", "gnutls_unknown_issuer", "git"),
    (r"err tls cert altname invalid|no alternative certificate subject name matches|"
     r"hostname mismatch|certificate is not valid for|does not match target host",
     "X509_V_ERR_HOSTNAME_MISMATCH", None),
    (r"wrong version number|unknown protocol|packet length too long", "not_tls", None),
    (r"http code 407|407 proxy authentication|proxy authentication required",
     "proxy_auth_required", None),
    (r"(http code |tunnel connection failed: ?)(502|504)", "proxy_upstream_failed", None),
    (r"(http code |tunnel connection failed: ?)(403|503|400|405)|"
     r"proxy connect aborted|tunnel connection failed", "proxy_refused", None),
    (r"could not resolve|name or service not known|temporary failure in name resolution|"
     r"getaddrinfo enotfound|unknownhostexception|nodename nor servname|"
     r"no address associated with hostname|unable to resolve host address|eai again",
     "dns_failure", None),
    (r"no route to host|ehostunreach|host is unreachable|noroutetohostexception",
     "no_route", None),
    (r"network is unreachable|enetunreach", "network_unreachable", None),
    (r"connection refused|econnrefused|connectexception: connection refused",
     "connection_refused", None),
    (r"timed out|timeout|etimedout|connect timeout", "timeout", None),
    (r"connection reset|econnreset|reset by peer", "connection_reset", None),
    (r"operation not permitted|eperm|permission denied", "blocked_locally", None),
    (r"(tlsv1|sslv3|tlsv13) alert [a-z ]+|handshake failure|received fatal alert",
     "handshake_alert", None),
    (r"unexpected eof|eof occurred in violation|remote end closed connection|"
     r"socket hang up|handshake_eof", "handshake_eof", None),
]


@functools.cache
def _verify_rules() -> list[tuple[re.Pattern[str], str]]:
    """Patterns for every verify code: its name (Node prints it bare), then its message."""
    rules: list[tuple[re.Pattern[str], str]] = []
    by_length = sorted(VERIFY_CODES.items(), key=lambda kv: -len(kv[1][1]))
    for _, (name, _) in sorted(VERIFY_CODES.items(), key=lambda kv: -len(kv[1][0])):
        if name == "X509_V_OK":
            continue
        bare = _norm(name.removeprefix("X509_V_ERR_"))
        rules.append((re.compile(rf"\b(x509 v err )?{re.escape(bare)}\b"), name))
    for _, (name, message) in by_length:
        if name in ("X509_V_OK", "X509_V_ERR_UNSPECIFIED") or len(message) < 10:
            continue
        rules.append((re.compile(re.escape(_norm(message))), name))
    return rules


_CLIENT_HINTS: list[tuple[str, str]] = [
    (r"curl: ?\(\d+\)", "curl"),
    (r"sslcertverificationerror|certificate verify failed|urlopen error|\[ssl", "python"),
    (r"pip\b|could not fetch url|retrying \(retry", "pip"),
    (r"javax\.net|sun\.security|pkix", "java"),
    (r"\bnode\b|err tls|code: '|unable to verify leaf signature", "node"),
    (r"gnutls|wget", "wget"),
    (r"fatal: unable to access", "git"),
]


@dataclass(frozen=True)
class Finding:
    """One recognised problem in a text, with its explanation."""

    code: str
    verify_code: int | None
    client: str | None
    summary: str
    cause: str
    next_command: str


@dataclass(frozen=True)
class Explanation:
    text: str
    host: str | None
    findings: tuple[Finding, ...]

    @property
    def recognised(self) -> bool:
        return bool(self.findings)


def finding(code: str, *, host: str = "HOST", port: int = 443, url: str | None = None,
            client: str | None = None) -> Finding:
    """Build the finding for ``code`` with its next command filled in for this endpoint."""
    entry = entry_for(code)
    url = url or (f"https://{host}" if port == 443 else f"https://{host}:{port}")
    return Finding(code=entry.code, verify_code=_CODE_BY_NAME.get(code), client=client,
                   summary=entry.summary, cause=entry.cause,
                   next_command=entry.next_command.format(host=host, port=port, url=url))


_HOST_PATTERNS = [
    r"https?://(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]+)(?::(\d+))?",
    r"(?:host|for|of|to|access) '([A-Za-z0-9.\-]+)'",
    r"resolve host:? ([A-Za-z0-9.\-]+)",
    r"connect to ([A-Za-z0-9.\-]+) port (\d+)",
]


def _host_in(text: str) -> tuple[str | None, int]:
    for pattern in _HOST_PATTERNS:
        m = re.search(pattern, text)
        if m:
            port = int(m.group(2)) if m.lastindex and m.lastindex >= 2 and m.group(2) else 443
            return m.group(1).strip("[]"), port
    return None, 443


def explain(text: str) -> Explanation:
    """Recognise what a client printed and say why it happened and what to run next.

    ``verify error:num=20`` and bare numbers after ``code``/``num``/``error`` are read as
    OpenSSL verify codes, as are their names and messages. Findings come out in the order of
    their specificity; each code appears once.
    """
    norm = _norm(text)
    host, port = _host_in(text)
    client = next((c for pattern, c in _CLIENT_HINTS if re.search(pattern, norm)), None)
    codes: list[tuple[str, str | None]] = []

    def add(code: str, who: str | None) -> None:
        if code not in [c for c, _ in codes]:
            codes.append((code, who))

    for m in re.finditer(r"(?:num|code|error|err)\s*[=:]?\s*(\d{1,2})\b", text, re.IGNORECASE):
        number = int(m.group(1))
        if 0 < number in VERIFY_CODES:
            add(VERIFY_CODES[number][0], client)
    if re.fullmatch(r"\s*\d{1,2}\s*", text) and int(text) in VERIFY_CODES and int(text) > 0:
        add(VERIFY_CODES[int(text)][0], None)
    for pattern, code, who in _TEXT_RULES:
        if re.search(pattern, norm):
            add(code, who or client)
    for regex, name in _verify_rules():
        if regex.search(norm):
            add(name, client)
            break  # the longest message that matches is the precise one
    found = tuple(finding(code, host=host or "HOST", port=port, client=who)
                  for code, who in codes)
    return Explanation(text=text, host=host, findings=found)

