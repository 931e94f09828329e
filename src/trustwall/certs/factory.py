"""The one certificate factory: CA and server certificates (EC P-256, SHA-256) with exactly
the extensions asked for, for the lab, the tests and the benchmarks.

Every switch defaults to what a well-formed certificate has (basicConstraints critical, key
usage, subject and authority key identifiers, SAN and serverAuth on leaves); turning one off
makes the defective shapes met in the field (a root without AKI or with basicConstraints not
critical, a "CA" without key usage). ``key`` and ``serial`` make the result reproducible (the lab
derives both from a seed); the dangerous raw-DER names live apart, in :mod:`trustwall.certs.synth`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes

    @property
    def pem(self) -> bytes:
        from cryptography.hazmat.primitives.serialization import Encoding

        return self.cert.public_bytes(Encoding.PEM)

    @property
    def der(self) -> bytes:
        from cryptography.hazmat.primitives.serialization import Encoding

        return self.cert.public_bytes(Encoding.DER)

    @property
    def key_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def new_key() -> ec.EllipticCurvePrivateKey:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def subject_name(common_name: str, org: str | None = None) -> x509.Name:
    """``O=org, CN=common_name`` (the order real CAs use), or just the CN."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)] if org else []
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def validity(*, days: int = 30, expired: bool = False,
             now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    """From a day before ``now`` for ``days``; ``expired``: ended two days ago."""
    now = now or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    if expired:
        return now - 400 * _DAY, now - 2 * _DAY
    return now - _DAY, now + days * _DAY


def issue(
    common_name: str,
    *,
    issuer: Issued | None = None,
    ca: bool = False,
    org: str | None = None,
    names: Sequence[str] = (),
    subject: x509.Name | None = None,
    key: CertificateIssuerPrivateKeyTypes | None = None,
    serial: int | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    days: int = 30,
    expired: bool = False,
    basic_constraints: bool = True,
    bc_critical: bool = True,
    path_length: int | None = None,
    key_usage: bool = True,
    key_cert_sign: bool | None = None,
    ski: bool = True,
    aki: bool = True,
    server_auth: bool = True,
    aia: str | None = None,
) -> Issued:
    """A certificate for ``common_name`` signed by ``issuer`` (self-signed when None).

    A leaf (``ca=False``) gets ``names`` (DNS names or IP addresses) as its SAN and, with
    ``server_auth``, the serverAuth extended key usage; a CA gets keyCertSign and cRLSign.
    ``aia``: a caIssuers URL (how a client can fetch the issuer). ``subject`` replaces the
    ``O=org, CN=common_name`` name; ``key_cert_sign`` overrides what the key usage says (default:
    ``ca``).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

    key = key or new_key()
    start, end = validity(days=days, expired=expired)
    subject = subject or subject_name(common_name, org)
    signer = issuer.key if issuer else key
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer.cert.subject if issuer else subject)
               .public_key(key.public_key())
               .serial_number(serial if serial is not None else x509.random_serial_number())
               .not_valid_before(not_before or start).not_valid_after(not_after or end))
    if basic_constraints:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length if ca else None),
            critical=bc_critical)
    if key_usage:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False,
            key_cert_sign=ca if key_cert_sign is None else key_cert_sign, crl_sign=ca,
            encipher_only=False, decipher_only=False), critical=True)
    if not ca and server_auth:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    if not ca and names:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [_general_name(n) for n in names]), critical=False)
    if ski:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    if aki:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
            critical=False)
    if aia:
        builder = builder.add_extension(x509.AuthorityInformationAccess([
            x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS,
                                   x509.UniformResourceIdentifier(aia))]), critical=False)
    return Issued(builder.sign(signer, hashes.SHA256()), key)


def empty_crl(issuer: Issued, *, days: int = 7) -> bytes:
    """PEM of an empty CRL issued by ``issuer``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding

    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    return (x509.CertificateRevocationListBuilder().issuer_name(issuer.cert.subject)
            .last_update(now).next_update(now + days * _DAY)
            .sign(issuer.key, hashes.SHA256()).public_bytes(Encoding.PEM))


def _general_name(name: str) -> x509.GeneralName:
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)
