"""The lab's CAs, made with the product's one factory (:mod:`trustwall.certs.factory`): a
public-like PKI, the enterprise inspection CA in its real-world
variants, and leaf certificates for any host name.

Keys are EC P-256 derived from a seed (``ec.derive_private_key``), so the same seed gives the
same keys, subjects and serials on every run; only the ECDSA signatures differ. Validity is
anchored to the start of the current UTC day, so certificates made in one day compare equal
field by field. The whole set takes a few milliseconds.

The enterprise variants are the shapes met in the field:

* ``acme_root``: a root that signs the re-signed leaves directly (most appliances);
* ``acme_inter``: an issuing CA under that root (the proxy then must send it, or the client
  must have it);
* ``acme_weak``: a root with basicConstraints *not* critical and no authority key identifier;
  OpenSSL accepts it, Python 3.13's VERIFY_X509_STRICT rejects it even once installed;
* ``acme_expired``: a root whose validity ended (old appliances keep using them).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from trustwall.certs.factory import Issued, issue, validity

DEFAULT_SEED = b"trustwall-lab"
_P256_ORDER = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)


@dataclass(frozen=True)
class Credential:
    """A certificate, its private key, and what a server sends after it.

    ``chain`` holds the certificates above ``cert_pem``, nearest first, without the root (what a
    correctly configured server sends). ``root_pem`` is the trust anchor; ``None`` means the
    certificate is self-signed and anchors itself.
    """

    label: str
    cert_pem: bytes
    key_pem: bytes
    chain: tuple[bytes, ...] = ()
    root_pem: bytes | None = None
    _seed: bytes = field(default=DEFAULT_SEED, repr=False, compare=False)

    @property
    def anchor_pem(self) -> bytes:
        """The root a client must trust for this certificate (itself if self-signed)."""
        return self.root_pem if self.root_pem is not None else self.cert_pem

    @property
    def fullchain_pem(self) -> bytes:
        """Certificate followed by its intermediates: what a good server presents."""
        return self.cert_pem + b"".join(self.chain)

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @property
    def key(self) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key

    @property
    def common_name(self) -> str:
        attrs = self.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(attrs[0].value) if attrs else ""


@dataclass(frozen=True)
class LabCAs:
    """Every CA the lab uses. ``public_*`` stand for a well-known PKI; ``acme_*`` for the
    enterprise's TLS inspection CA in its variants."""

    public_root: Credential
    public_inter: Credential
    acme_root: Credential
    acme_inter: Credential
    acme_weak: Credential
    acme_expired: Credential

    def acme_variant(self, name: str) -> Credential:
        """The inspection CA by variant name: root, intermediate, weak or expired."""
        variants = {"root": self.acme_root, "intermediate": self.acme_inter,
                    "weak": self.acme_weak, "expired": self.acme_expired}
        try:
            return variants[name]
        except KeyError:
            raise ValueError(f"unknown inspection CA variant {name!r}; "
                             f"one of {', '.join(variants)}") from None


def _today() -> dt.datetime:
    now = dt.datetime.now(dt.timezone.utc)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _derive(seed: bytes, label: str) -> tuple[ec.EllipticCurvePrivateKey, int]:
    """A private key and a positive 63-bit serial, both fixed by (seed, label)."""
    digest = hashlib.sha256(seed + b"\0" + label.encode()).digest()
    secret = int.from_bytes(digest, "big") % (_P256_ORDER - 1) + 1
    serial = int.from_bytes(hashlib.sha256(b"serial" + digest).digest()[:8], "big") >> 1
    return ec.derive_private_key(secret, ec.SECP256R1()), serial or 1


def _validity(expired: bool, days: int) -> tuple[dt.datetime, dt.datetime]:
    """Anchored to the start of the UTC day: certificates made in one day compare equal."""
    return validity(days=days, expired=expired, now=_today())


def make_ca(
    common_name: str,
    *,
    org: str | None = None,
    issuer: Credential | None = None,
    weak: bool = False,
    expired: bool = False,
    seed: bytes = DEFAULT_SEED,
    label: str | None = None,
) -> Credential:
    """A CA certificate: self-signed root when ``issuer`` is None, else an intermediate.

    ``weak`` leaves basicConstraints non-critical and omits the authority key identifier.
    """
    label = label or common_name
    key, serial = _derive(seed, label)
    not_before, not_after = _validity(expired, 3650)
    made = issue(common_name, org=org, ca=True, issuer=_issued(issuer), key=key, serial=serial,
                 not_before=not_before, not_after=not_after,
                 path_length=None if issuer is None else 0, bc_critical=not weak, aki=not weak)
    return _credential(label, made, issuer, seed)


def _issued(credential: Credential | None) -> Issued | None:
    return None if credential is None else Issued(credential.cert, credential.key)


def _credential(label: str, made: Issued, issuer: Credential | None, seed: bytes) -> Credential:
    if issuer is None:
        return Credential(label, made.pem, made.key_pem, (), None, seed)
    return Credential(label, made.pem, made.key_pem, _chain_below(issuer), issuer.anchor_pem,
                      seed)


def _chain_below(issuer: Credential) -> tuple[bytes, ...]:
    """What a server sends above a certificate signed by ``issuer``: never the root."""
    if issuer.root_pem is None:
        return ()
    return (issuer.cert_pem, *issuer.chain)


def issue_leaf(
    issuer: Credential | None,
    hostnames: Sequence[str],
    *,
    expired: bool = False,
    days: int = 90,
    seed: bytes | None = None,
) -> Credential:
    """A server certificate for ``hostnames`` (DNS names or IP addresses) signed by ``issuer``.

    ``issuer=None`` makes it self-signed (the selfsigned.lab.test site).
    """
    if not hostnames:
        raise ValueError("a leaf certificate needs at least one host name")
    seed = seed if seed is not None else (issuer._seed if issuer else DEFAULT_SEED)
    issuer_label = issuer.label if issuer else "self"
    label = f"leaf:{issuer_label}:{','.join(hostnames)}:{int(expired)}"
    key, serial = _derive(seed, label)
    not_before, not_after = _validity(expired, days)
    made = issue(hostnames[0], issuer=_issued(issuer), names=hostnames, key=key, serial=serial,
                 not_before=not_before, not_after=not_after)
    return _credential(label, made, issuer, seed)


@functools.lru_cache(maxsize=4)
def _lab_cas(seed: bytes, day: dt.datetime) -> LabCAs:
    public_root = make_ca("Lab Public Root CA", org="Lab Trust Services", seed=seed)
    public_inter = make_ca("Lab Public Issuing CA 1", org="Lab Trust Services",
                           issuer=public_root, seed=seed)
    acme_root = make_ca("Acme Widgets Inspection CA", org="Acme Widgets", seed=seed)
    acme_inter = make_ca("Acme Widgets Inspection Issuing CA", org="Acme Widgets",
                         issuer=acme_root, seed=seed)
    acme_weak = make_ca("Acme Widgets Inspection CA", org="Acme Widgets", weak=True, seed=seed,
                        label="Acme Widgets Inspection CA (weak)")
    acme_expired = make_ca("Acme Widgets Inspection CA", org="Acme Widgets", expired=True,
                           seed=seed, label="Acme Widgets Inspection CA (expired)")
    return LabCAs(public_root, public_inter, acme_root, acme_inter, acme_weak, acme_expired)


def lab_cas(seed: bytes = DEFAULT_SEED) -> LabCAs:
    """The lab's CAs; cached per seed and UTC day (same keys and names on every call)."""
    return _lab_cas(seed, _today())
