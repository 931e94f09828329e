"""``openssl rehash`` in Python: the same links, the same choices, on one directory.

OpenSSL finds a CA in a CApath directory by the file name ``HHHHHHHH.N`` (subject hash, then
the lowest free collision number), ``HHHHHHHH.rN`` for CRLs. This module follows
apps/rehash.c (OpenSSL 3.0) step by step, including its less obvious choices, because a
directory we rehash must look exactly like one ``openssl rehash`` produced:

* only names ending in .pem/.crt/.cer/.crl (any case) are read, as PEM only (DER is ignored);
* a file counts only if PEM_X509_INFO_read finds exactly one item: a certificate, a CRL, or
  a certificate/CRL with the key that follows it (a bundle of several is skipped, which is
  why a multi-certificate .crt is in the bundle but not in CApath);
* a second file with the same SHA-1 fingerprint under the same hash is a duplicate: skipped;
* existing hash links are read first: one already pointing at the right file keeps its
  number if that number is below the count of files needing a link; new links take the
  lowest free numbers; links nobody needs are removed (unless ``remove_links=False``).

Start-up matters (the goal is parity with the C tool as whole processes), so this imports
only the standard library and reads names from raw DER without building certificate objects.
"""

from __future__ import annotations

import binascii
import hashlib
import os
from dataclasses import dataclass

from trustwall.certs import der as _der
from trustwall.certs import names as _names
from trustwall.errors import BadInput

EXTENSIONS = frozenset({"pem", "crt", "cer", "crl"})
MAX_COLLISIONS = 256
CERT, CRL = 0, 1
_SUFFIX = {CERT: "", CRL: "r"}

_HEX = frozenset("0123456789abcdefABCDEF")
_CERT_LABELS = frozenset({b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"})


@dataclass(frozen=True)
class LinkChange:
    """One hash link and what happened to it: ``created``, ``kept`` or ``removed``."""

    link: str
    target: str
    action: str


@dataclass(frozen=True)
class RehashResult:
    directory: str
    changes: tuple[LinkChange, ...]
    warnings: tuple[str, ...]
    errors: tuple[str, ...]
    dry_run: bool = False

    @property
    def links(self) -> dict[str, str]:
        """The hash links present afterwards: ``{"HHHHHHHH.N": target}``."""
        return {c.link: c.target for c in self.changes if c.action != "removed"}


# The two mutable working records below are plain slotted classes, not dataclasses: class
# creation of a dataclass costs about a millisecond of start-up each.
class _Entry:
    __slots__ = ("digest", "filename", "need_symlink", "old_id")

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.old_id = 0xFFFF  # "no existing link" (OpenSSL's unsigned short ~0)
        self.need_symlink = False
        self.digest = b""


class _Bucket:
    __slots__ = ("entries", "hash", "kind", "num_needed")

    def __init__(self, kind: int, hash_value: int) -> None:
        self.kind = kind
        self.hash = hash_value
        self.entries: list[_Entry] = []
        self.num_needed = 0


class _Table:
    def __init__(self) -> None:
        self.buckets: dict[tuple[int, int], _Bucket] = {}

    def add(self, kind: int, hash_value: int, filename: str, digest: bytes | None,
            need_symlink: bool, old_id: int, warnings: list[str], errors: list[str]) -> None:
        """add_entry() of apps/rehash.c."""
        bucket = self.buckets.get((kind, hash_value))
        if bucket is None:
            bucket = self.buckets[(kind, hash_value)] = _Bucket(kind, hash_value)
        found = None
        for entry in bucket.entries:
            if digest is not None and entry.digest == digest:
                what = "certificate" if kind == CERT else "CRL"
                warnings.append(f"skipping duplicate {what} in {filename}")
                return
            if entry.filename == filename:
                found = entry
                if digest is None:
                    break
        if found is None:
            if bucket.num_needed >= MAX_COLLISIONS:
                errors.append(f"hash table overflow for {filename}")
                return
            found = _Entry(filename)
            bucket.entries.append(found)
        found.old_id = min(found.old_id, old_id)
        if need_symlink and not found.need_symlink:
            found.need_symlink = True
            bucket.num_needed += 1
            found.digest = digest or b""


def _pem_blocks(data: bytes) -> list[tuple[bytes, bytes]] | None:
    """``(label, body)`` of each PEM block; None when a block has no END line (OpenSSL then
    fails the whole read). Plain ``find`` rather than a regex: no compile at start-up."""
    out = []
    pos = 0
    while True:
        begin = data.find(b"-----BEGIN ", pos)
        if begin < 0:
            return out
        eol = data.find(b"\n", begin)
        eol = len(data) if eol < 0 else eol
        if begin and data[begin - 1] not in (10, 13):
            pos = eol
            continue
        line = data[begin + 11:eol].rstrip()
        if not line.endswith(b"-----"):
            pos = eol
            continue
        label = line[:-5]
        marker = b"-----END " + label + b"-----"
        end = data.find(marker, eol)
        if end < 0:
            return None
        out.append((label, data[eol + 1:end]))
        pos = end + len(marker)


def _pem_items(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """The X509_INFO items PEM_X509_INFO_read would return, as ``(kind, name_der, sha1)`` of
    each item's certificate or CRL (kind -1 for a key alone). Raises BadInput where OpenSSL
    fails the whole read: a block without END, bad base64 (whatever the label), or a
    certificate or CRL that does not decode (even when another item of the file is fine)."""
    blocks = _pem_blocks(data)
    if blocks is None:
        raise BadInput("a PEM block has no END line")
    items: list[list] = []  # [cert, crl, has_key], cert and crl as (name_der, sha1)
    current: list = [None, None, False]
    for label, body in blocks:
        if b":" in body:  # RFC 1421 headers (encrypted keys) end at the first empty line
            _, sep, rest = body.partition(b"\n\n")
            if not sep:
                _, sep, rest = body.partition(b"\r\n\r\n")
            body = rest if sep else body
        try:
            der = binascii.a2b_base64(b"".join(body.split()), strict_mode=True)
        except binascii.Error as exc:
            raise BadInput(f"bad base64 in BEGIN {label.decode(errors='replace')}") from exc
        if label in _CERT_LABELS:
            slot = 0
        elif label == b"X509 CRL":
            slot = 1
        elif label.endswith(b"PRIVATE KEY"):
            slot = 2
        else:
            continue  # CSRs, public keys, PKCS#7...: read past, not counted
        if current[slot]:
            items.append(current)
            current = [None, None, False]
        current[slot] = _read_item(CERT if slot == 0 else CRL, der) if slot < 2 else True
    if any(current):
        items.append(current)
    out = []
    for cert, crl, _ in items:
        if cert is not None:
            out.append((CERT, *cert))
        elif crl is not None:
            out.append((CRL, *crl))
        else:
            out.append((-1, b"", b""))
    return out


def _read_item(kind: int, der: bytes) -> tuple[bytes, bytes]:
    """``(name_der, sha1 digest)`` of a certificate (subject) or CRL (issuer); BadInput when
    OpenSSL would not decode it."""
    _, _, end = _der.read_tlv(der, 0)
    der = der[:end]  # TRUSTED CERTIFICATE: the trust settings follow the certificate
    if kind == CERT:
        issuer, name = _der.certificate_names(der)
        _names.check_decodable(issuer)
    else:
        name = _der.crl_issuer(der)
    _names.check_decodable(name)
    return name, hashlib.sha1(der).digest()


def _link_name(name: str) -> tuple[int, int, int] | None:
    """``(hash, kind, number)`` of a name like ``1a2b3c4d.0`` / ``1a2b3c4d.r1``
    (handle_symlink: 8 hex digits, a dot, an optional r, digits -- none means 0)."""
    if len(name) < 9 or name[8] != "." or not all(c in _HEX for c in name[:8]):
        return None
    rest = name[9:]
    kind = CERT
    if rest[:1] in ("r", "R"):
        kind, rest = CRL, rest[1:]
    if rest and not (rest.isascii() and rest.isdigit()):
        return None
    return int(name[:8], 16), kind, int(rest or 0) & 0xFFFF


def default_dirs() -> list[str]:
    """SSL_CERT_DIR (colon-separated) or OpenSSL's compiled-in certificate directory."""
    env = os.environ.get("SSL_CERT_DIR")
    if env is not None:
        return [d for d in env.split(":") if d]
    import ssl

    return [ssl.get_default_verify_paths().openssl_capath]


def rehash_dir(directory: str, *, old: bool = False, compat: bool = False,
               remove_links: bool = True, dry_run: bool = False) -> RehashResult:
    """Bring the hash links of ``directory`` up to date, as ``openssl rehash`` does.

    ``old``: MD5 (pre-1.0) hashes only; ``compat``: both kinds; ``dry_run``: decide and
    report, change nothing.
    """
    if not os.path.isdir(directory):
        raise BadInput(f"{directory}: not a directory")
    if not dry_run and not os.access(directory, os.W_OK):
        raise BadInput(f"{directory}: cannot write there (rehash needs write access)")
    use_new = compat or not old
    use_old = compat or old
    warnings: list[str] = []
    errors: list[str] = []
    table = _Table()
    with os.scandir(directory) as it:
        entries = sorted(it, key=lambda e: os.fsencode(e.name))
    for entry in entries:
        name = entry.name
        try:
            is_link = entry.is_symlink()
        except OSError as exc:
            errors.append(f"{name}: {exc.strerror}")
            continue
        if is_link:
            parsed = _link_name(name)
            if parsed is not None:
                try:
                    target = os.readlink(entry.path)
                except OSError:
                    target = None
                if target is not None:
                    table.add(parsed[1], parsed[0], target, None, False, parsed[2],
                              warnings, errors)
                    continue
        _do_file(entry, table, use_new, use_old, warnings, errors)
    changes = _apply(directory, table, remove_links, dry_run, errors)
    return RehashResult(directory, tuple(changes), tuple(warnings), tuple(errors), dry_run)


def _do_file(entry: os.DirEntry[str], table: _Table, use_new: bool, use_old: bool,
             warnings: list[str], errors: list[str]) -> None:
    name = entry.name
    dot = name.rfind(".")
    if dot < 0 or name[dot + 1:].lower() not in EXTENSIONS:
        return
    try:
        with open(entry.path, "rb") as handle:
            data = handle.read()
    except IsADirectoryError:
        warnings.append(f"skipping {name}: is a directory")
        return
    except OSError as exc:
        errors.append(f"skipping {name}, cannot open file ({exc.strerror})")
        return
    try:
        items = _pem_items(data)
    except BadInput as exc:
        warnings.append(f"skipping {name}: OpenSSL cannot read it ({exc})")
        return
    if len(items) != 1:
        warnings.append(f"skipping {name}: it does not contain exactly one certificate or CRL"
                        f" ({len(items)} found)")
        return
    kind, name_der, digest = items[0]
    if kind < 0:
        errors.append(f"skipping {name}: a private key without certificate or CRL")
        return
    if use_new:
        new_hash = int(_names.name_hash(name_der), 16)
        table.add(kind, new_hash, name, digest, True, 0xFFFF, warnings, errors)
    if use_old:
        table.add(kind, int(_names.name_hash_old(name_der), 16), name, digest, True, 0xFFFF,
                  warnings, errors)


def _apply(directory: str, table: _Table, remove_links: bool, dry_run: bool,
           errors: list[str]) -> list[LinkChange]:
    """The link phase of do_dir(): keep, create or remove, bucket by bucket."""
    changes = []
    for bucket in table.buckets.values():
        used = {e.old_id for e in bucket.entries if e.old_id < bucket.num_needed}
        next_id = 0
        for entry in bucket.entries:
            if entry.old_id < bucket.num_needed:
                link = f"{bucket.hash:08x}.{_SUFFIX[bucket.kind]}{entry.old_id}"
                changes.append(LinkChange(link, entry.filename, "kept"))
            elif entry.need_symlink:
                while next_id in used:
                    next_id += 1
                link = f"{bucket.hash:08x}.{_SUFFIX[bucket.kind]}{next_id}"
                used.add(next_id)
                changes.append(LinkChange(link, entry.filename, "created"))
                if not dry_run:
                    path = os.path.join(directory, link)
                    try:
                        os.unlink(path)
                    except FileNotFoundError:
                        pass
                    except OSError as exc:
                        errors.append(f"cannot unlink {link}: {exc.strerror}")
                    try:
                        os.symlink(entry.filename, path)
                    except OSError as exc:
                        errors.append(f"cannot symlink {entry.filename}: {exc.strerror}")
            elif remove_links:
                link = f"{bucket.hash:08x}.{_SUFFIX[bucket.kind]}{entry.old_id}"
                changes.append(LinkChange(link, entry.filename, "removed"))
                if not dry_run:
                    try:
                        os.unlink(os.path.join(directory, link))
                    except FileNotFoundError:
                        pass
                    except OSError as exc:
                        errors.append(f"cannot unlink {link}: {exc.strerror}")
    return changes
