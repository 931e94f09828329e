"""``Cert``: one certificate as an immutable value, with the facts every other module asks for.

Identity is the DER encoding: two ``Cert`` values are equal when their bytes are, whatever
file they came from. Names are read from the raw DER (see names.py) so that a certificate
with a subject cryptography cannot decode still shows, hashes and rehashes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from trustwall.certs import der as _der
from trustwall.certs import names as _names
from trustwall.errors import BadInput

if TYPE_CHECKING:
    from cryptography import x509 as _x509


def colon_hex(digest: bytes) -> str:
    """``AB:CD:…``, the fingerprint form keytool, browsers and ``openssl -fingerprint`` show."""
    return ":".join(f"{b:02X}" for b in digest)


def fingerprint(der: bytes) -> str:
    """The identity of a certificate everywhere in trustwall (stores, journal, ``ca remove``,
    JSON): its SHA-256 in lower-case hex. :attr:`Cert.sha256` is the same digest spelled for
    people (``AB:CD:…``); :func:`normalize_fingerprint` reads either spelling."""
    return hashlib.sha256(der).hexdigest()


def normalize_fingerprint(text: str) -> str:
    """``AB:CD:…`` or ``abcd…`` -> the :func:`fingerprint` spelling (not validated here)."""
    return text.replace(":", "").strip().lower()


def pem_encode(der: bytes, label: str = "CERTIFICATE") -> str:
    """PEM armour with 64-character lines, as OpenSSL writes it."""
    b64 = base64.b64encode(der).decode("ascii")
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


@dataclass(frozen=True)
class Cert:
    """A parsed X.509 certificate. Build with :meth:`from_der` or ``load_certs``."""

    der: bytes
    x509: _x509.Certificate = field(compare=False, repr=False)
    source: str | None = field(default=None, compare=False)

    @classmethod
    def from_der(cls, data: bytes, *, source: str | None = None) -> Cert:
        """Parse DER bytes; raises BadInput (naming ``source``) when they are not a certificate."""
        import warnings

        where = f"{source}: " if source else ""
        try:
            _, _, end = _der.read_tlv(data, 0)
            with warnings.catch_warnings():
                # Real roots (in certifi too) carry a non-positive serial; cryptography warns.
                warnings.simplefilter("ignore")
                parsed = _parse_x509(data[:end])
        except (ValueError, BadInput) as exc:
            raise BadInput(f"{where}not a valid X.509 certificate ({_first_line(exc)})") from exc
        return cls(der=bytes(data[:end]), x509=parsed, source=source)

    # -- encodings and fingerprints -------------------------------------------------------
    @property
    def pem(self) -> str:
        return pem_encode(self.der)

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 in lower-case hex: the identity the stores and the journal use."""
        return fingerprint(self.der)

    @cached_property
    def sha256(self) -> str:
        """The same SHA-256 as :attr:`fingerprint`, as keytool and browsers show it."""
        return colon_hex(bytes.fromhex(self.fingerprint))

    @cached_property
    def sha1(self) -> str:
        return colon_hex(hashlib.sha1(self.der).digest())

    # -- names ----------------------------------------------------------------------------
    @cached_property
    def _names(self) -> tuple[bytes, bytes]:
        return _der.certificate_names(self.der)

    @property
    def issuer_der(self) -> bytes:
        return self._names[0]

    @property
    def subject_der(self) -> bytes:
        return self._names[1]

    @cached_property
    def subject_str(self) -> str:
        """RFC 4514 form, most specific first: ``CN=Proxy CA,O=Example,C=DE``."""
        return _names.name_string(self.subject_der)

    @cached_property
    def issuer_str(self) -> str:
        return _names.name_string(self.issuer_der)

    @cached_property
    def subject_hash(self) -> str:
        """``openssl x509 -subject_hash``: the CApath file name stem (``HHHHHHHH.0``)."""
        return _names.name_hash(self.subject_der)

    @cached_property
    def subject_hash_old(self) -> str:
        """``openssl x509 -subject_hash_old`` (OpenSSL < 1.0 CApath directories)."""
        return _names.name_hash_old(self.subject_der)

    @cached_property
    def is_self_issued(self) -> bool:
        """Subject equals issuer under OpenSSL's name comparison (the canonical encodings)."""
        if self.subject_der == self.issuer_der:
            return True
        try:
            return (_names.canonical_name(self.subject_der)
                    == _names.canonical_name(self.issuer_der))
        except BadInput:  # a name OpenSSL cannot read: only byte equality is left
            return False

    @cached_property
    def openssl_problem(self) -> str | None:
        """Why OpenSSL (and so every client built on it) cannot load this certificate at all,
        e.g. a VisibleString in the subject; None when it can."""
        try:
            _names.check_decodable(self.issuer_der)
            _names.check_decodable(self.subject_der)
        except BadInput as exc:
            return str(exc)
        return None

    # -- validity and identity ------------------------------------------------------------
    @cached_property
    def serial(self) -> int:
        import warnings

        with warnings.catch_warnings():  # non-positive serials of real roots: see from_der
            warnings.simplefilter("ignore")
            return self.x509.serial_number

    @property
    def not_before(self) -> dt.datetime:
        return self.x509.not_valid_before_utc

    @property
    def not_after(self) -> dt.datetime:
        return self.x509.not_valid_after_utc

    # -- extensions -----------------------------------------------------------------------
    def _ext(self, ext_class: type) -> Any:
        """The extension object of that class, or None (also None when it fails to decode)."""
        from cryptography import x509

        try:
            return self.x509.extensions.get_extension_for_class(ext_class)
        except (x509.ExtensionNotFound, ValueError):
            return None

    @cached_property
    def basic_constraints(self) -> Any:
        """The BasicConstraints *extension* (``.critical``, ``.value.ca``) or None."""
        from cryptography import x509

        return self._ext(x509.BasicConstraints)

    @property
    def is_ca(self) -> bool:
        bc = self.basic_constraints
        return bool(bc is not None and bc.value.ca)

    @property
    def path_length(self) -> int | None:
        bc = self.basic_constraints
        return bc.value.path_length if bc is not None and bc.value.ca else None

    @cached_property
    def ski(self) -> bytes | None:
        from cryptography import x509

        ext = self._ext(x509.SubjectKeyIdentifier)
        return ext.value.digest if ext is not None else None

    @cached_property
    def aki(self) -> bytes | None:
        from cryptography import x509

        ext = self._ext(x509.AuthorityKeyIdentifier)
        return ext.value.key_identifier if ext is not None else None

    @cached_property
    def key_usage(self) -> list[str] | None:
        """Names of the asserted keyUsage bits (RFC 5280 4.2.1.3), None without the extension."""
        from cryptography import x509

        ext = self._ext(x509.KeyUsage)
        if ext is None:
            return None
        ku = ext.value
        bits = ["digital_signature", "content_commitment", "key_encipherment",
                "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign"]
        out = [b for b in bits if getattr(ku, b)]
        if ku.key_agreement:
            out += [b for b in ("encipher_only", "decipher_only") if getattr(ku, b)]
        return out

    @cached_property
    def extended_key_usage(self) -> list[str] | None:
        from cryptography import x509

        ext = self._ext(x509.ExtendedKeyUsage)
        if ext is None:
            return None
        return [oid._name if oid._name != "Unknown OID" else oid.dotted_string
                for oid in ext.value]

    @cached_property
    def name_constraints(self) -> dict[str, list[str]] | None:
        from cryptography import x509

        ext = self._ext(x509.NameConstraints)
        if ext is None:
            return None
        nc = ext.value
        return {"permitted": [str(n.value) for n in nc.permitted_subtrees or []],
                "excluded": [str(n.value) for n in nc.excluded_subtrees or []]}

    @cached_property
    def signature_algorithm(self) -> str:
        oid = self.x509.signature_algorithm_oid
        return oid._name if oid._name != "Unknown OID" else oid.dotted_string

    @cached_property
    def signature_hash(self) -> str | None:
        """The digest under the signature (``sha1``, ``sha256``…), None for Ed25519 and kin."""
        try:
            algo = self.x509.signature_hash_algorithm
        except Exception:  # unsupported algorithm: cryptography raises its own type
            return None
        return algo.name if algo is not None else None

    @cached_property
    def key_type(self) -> str:
        from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

        try:
            key = self.x509.public_key()
        except Exception:  # unsupported key algorithm
            return "unknown"
        if isinstance(key, rsa.RSAPublicKey):
            return "RSA"
        if isinstance(key, ec.EllipticCurvePublicKey):
            return f"EC {key.curve.name}"
        if isinstance(key, ed25519.Ed25519PublicKey):
            return "Ed25519"
        if isinstance(key, ed448.Ed448PublicKey):
            return "Ed448"
        if isinstance(key, dsa.DSAPublicKey):
            return "DSA"
        return type(key).__name__

    @cached_property
    def key_size(self) -> int | None:
        try:
            return getattr(self.x509.public_key(), "key_size", None)
        except Exception:  # unsupported key algorithm
            return None

    def days_left(self, now: dt.datetime | None = None) -> int:
        """Whole days until expiry (negative once expired)."""
        now = now or dt.datetime.now(dt.timezone.utc)
        return (self.not_after - now).days

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "subject": self.subject_str,
            "issuer": self.issuer_str,
            "serial": f"{self.serial:X}",
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "days_left": self.days_left(),
            "sha256": self.sha256,
            "sha1": self.sha1,
            "subject_hash": None if self.openssl_problem else self.subject_hash,
            "subject_hash_old": self.subject_hash_old,
            "openssl_problem": self.openssl_problem,
            "is_ca": self.is_ca,
            "path_length": self.path_length,
            "basic_constraints_critical": (self.basic_constraints.critical
                                           if self.basic_constraints is not None else None),
            "key_usage": self.key_usage,
            "extended_key_usage": self.extended_key_usage,
            "name_constraints": self.name_constraints,
            "ski": colon_hex(self.ski) if self.ski is not None else None,
            "aki": colon_hex(self.aki) if self.aki is not None else None,
            "signature_algorithm": self.signature_algorithm,
            "key_type": self.key_type,
            "key_size": self.key_size,
            "self_issued": self.is_self_issued,
        }


def _parse_x509(der: bytes) -> _x509.Certificate:
    """cryptography's parse, tolerating names OpenSSL accepts and cryptography refuses
    (unsorted multi-valued RDNs, PrintableString with any byte, T61String with Latin-1 bytes).
    Such a certificate is parsed from a copy with friendly names: the object's fields are
    right but its own encoding differs, which is why ``Cert.der``, fingerprints, hashes and
    name strings always come from the original bytes."""
    from cryptography import x509

    issuer, subject = _der.certificate_names(der)
    try:
        parsed = x509.load_der_x509_certificate(der)
        _ = parsed.subject, parsed.issuer  # decoded lazily: T61String raises only here
        return parsed
    except (ValueError, TypeError) as exc:  # TypeError: e.g. a BIT STRING under CN
        if "Certificate::tbs_cert" in str(exc) and "issuer" not in str(exc) \
                and "subject" not in str(exc) and "Attribute" not in str(exc):
            raise
    fixed = _der.replace_certificate_names(der, _names.friendly_name(issuer),
                                           _names.friendly_name(subject))
    return x509.load_der_x509_certificate(fixed)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    if not text:
        return type(exc).__name__
    if "ParseError" in text[0]:  # cryptography's Rust parser: keep the field it stopped at
        where = text[0].rsplit('"', 2)
        return f"malformed ASN.1 at {where[1]}" if len(where) == 3 else "malformed ASN.1"
    return text[0]


def subject_hash(cert: Cert, old: bool = False) -> str:
    """The 8-hex-digit OpenSSL subject hash (``old=True``: the pre-1.0 MD5 one)."""
    return cert.subject_hash_old if old else cert.subject_hash
