"""Is this certificate fit to be a trust anchor, and which clients reject it if not?

Installing a CA is only half the job: some clients refuse an installed anchor because of how
it was made. The verify codes below were observed with ``openssl verify`` (OpenSSL 3.0) on a
chain anchored at a CA with exactly that defect; tests/conformance/test_certs_lint.py keeps
them honest. Python >= 3.13 sets VERIFY_X509_STRICT, so OpenSSL's strict checks (codes 79 for
a missing basicConstraints, 86, 89, 92) hit every Python client there.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from trustwall.certs.model import Cert

OPENSSL = "OpenSSL-based clients (curl, git, Python, node, openssl s_client)"
STRICT = "Python >= 3.13 (VERIFY_X509_STRICT) and any OpenSSL client using -x509_strict"
SECLEVEL2 = ("OpenSSL clients at security level 2, the Debian/Ubuntu default (curl, git,"
             " Python, node)")


@dataclass(frozen=True)
class Finding:
    """One check. ``severity`` is ``ok``, ``warn`` (works today, fix it) or ``fail`` (some
    client rejects the anchor even after it is installed: see ``rejected_by``)."""

    check: str
    severity: str
    message: str
    rejected_by: tuple[str, ...] = ()
    openssl_code: int | None = None


@dataclass(frozen=True)
class LintReport:
    source: str | None
    subject: str
    sha256: str
    findings: tuple[Finding, ...]

    @property
    def fit(self) -> bool:
        return all(f.severity != "fail" for f in self.findings)

    def to_json(self) -> dict:
        return {"source": self.source, "subject": self.subject, "sha256": self.sha256,
                "fit": self.fit, "findings": list(self.findings)}


def _ok(check: str, message: str) -> Finding:
    return Finding(check, "ok", message)


def lint_anchor(cert: Cert, now: dt.datetime | None = None) -> LintReport:
    """Every anchor check on ``cert``, passing ones included (so the report shows coverage)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    out = [_openssl_load(cert), _ca_flag(cert), _bc_critical(cert), _key_usage(cert),
           _ski(cert), _aki(cert), _validity(cert, now), _signature(cert), _key_strength(cert)]
    return LintReport(cert.source, cert.subject_str, cert.sha256, tuple(out))


def _openssl_load(cert: Cert) -> Finding:
    if cert.openssl_problem is None:
        return _ok("openssl_load", "OpenSSL can load it")
    return Finding("openssl_load", "fail", f"OpenSSL cannot load this certificate at all"
                   f" ({cert.openssl_problem}): it is skipped in every store", (OPENSSL,))


def _ca_flag(cert: Cert) -> Finding:
    bc = cert.basic_constraints
    if bc is None:
        return Finding("ca_flag", "fail", "no basicConstraints extension: not marked as a CA",
                       (STRICT,), 79)
    if not bc.value.ca:
        return Finding("ca_flag", "fail", "basicConstraints says CA:FALSE: it cannot issue",
                       (OPENSSL, STRICT), 79)
    return _ok("ca_flag", "CA:TRUE")


def _bc_critical(cert: Cert) -> Finding:
    bc = cert.basic_constraints
    if bc is None or not bc.value.ca:
        return Finding("bc_critical", "ok", "not applicable (not a CA)")
    if not bc.critical:
        return Finding("bc_critical", "fail", "basicConstraints of this CA is not critical",
                       (STRICT,), 89)
    return _ok("bc_critical", "basicConstraints is critical")


def _key_usage(cert: Cert) -> Finding:
    ku = cert.key_usage
    if ku is None:
        if not cert.is_ca:
            return _ok("key_usage", "not applicable (not a CA)")
        return Finding("key_usage", "fail", "CA without a keyUsage extension", (STRICT,), 92)
    if "key_cert_sign" not in ku:
        return Finding("key_usage", "fail", "keyUsage lacks keyCertSign: it may not sign"
                       " certificates", (OPENSSL, STRICT), 32)
    return _ok("key_usage", "keyUsage includes keyCertSign")


def _ski(cert: Cert) -> Finding:
    if cert.ski is not None:
        return _ok("ski", "subjectKeyIdentifier present")
    if not cert.is_ca:
        return Finding("ski", "warn", "no subjectKeyIdentifier")
    return Finding("ski", "fail", "CA without a subjectKeyIdentifier", (STRICT,), 86)


def _aki(cert: Cert) -> Finding:
    if cert.aki is not None:
        return _ok("aki", "authorityKeyIdentifier present")
    # OpenSSL 3.0 strict mode wants an AKI on every certificate except the last of the
    # chain (code 85): a root anchor passes, the same CA sent as an intermediate does not.
    where = ("fine while it is the root of the chain" if cert.is_self_issued
             else "it is not self-issued, so it will often be sent as an intermediate")
    return Finding("aki", "warn", f"no authorityKeyIdentifier ({where}); strict verifiers"
                   " (code 85) reject it when it is not the last certificate of a chain")


def _validity(cert: Cert, now: dt.datetime) -> Finding:
    if now > cert.not_after:
        days = (now - cert.not_after).days
        return Finding("validity", "fail", f"expired {days} days ago ({cert.not_after:%Y-%m-%d})",
                       (OPENSSL, "GnuTLS clients (wget)"), 10)
    if now < cert.not_before:
        return Finding("validity", "fail", f"not valid before {cert.not_before:%Y-%m-%d %H:%M}Z",
                       (OPENSSL, "GnuTLS clients (wget)"), 9)
    return _ok("validity", f"valid for {cert.days_left(now)} more days")


def _signature(cert: Cert) -> Finding:
    algo = cert.signature_hash
    if algo in ("sha1", "md5"):
        # The anchor's own signature is not verified by OpenSSL, Java or GnuTLS.
        return Finding("signature", "warn", f"signed with {algo.upper()}: accepted as an"
                       " anchor today (its own signature is not checked), but replace it")
    return _ok("signature", f"signature {cert.signature_algorithm}")


def _key_strength(cert: Cert) -> Finding:
    if cert.key_type != "RSA" or cert.key_size is None or cert.key_size >= 2048:
        return _ok("key", f"{cert.key_type} {cert.key_size or ''}".strip())
    rejected = (SECLEVEL2,)
    if cert.key_size < 1024:
        rejected += ("Java (jdk.certpath.disabledAlgorithms: RSA keySize < 1024)",)
    return Finding("key", "fail", f"RSA key of {cert.key_size} bits (< 2048)", rejected, 67)
