"""Programs with their own roots (requests/certifi, node, pip, the AWS SDKs): point their CA
variables at the *system* bundle -- never at the lone enterprise CA, because these variables
replace (or, for node, extend) the defaults -- and persist them where new sessions see them:
/etc/environment (pam_env, every login), /etc/profile.d (shells without pam_env) and a systemd
DefaultEnvironment drop-in (services, after ``systemctl daemon-reexec``). Running programs
keep their old environment: the store says they must be restarted.

Its "certificates" are those of the bundle the variables point at, so an install is a no-op
once the variables are in place and the system store has the CA.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from trustwall.clients.login import ASSIGNMENT, parse_environment
from trustwall.stores.base import TrustStore, inside, pem_ders

if TYPE_CHECKING:
    from trustwall.certs import Cert
    from trustwall.journal.transaction import Transaction

VARIABLES = ("REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "PIP_CERT", "AWS_CA_BUNDLE",
             "GIT_SSL_CAINFO",
             # uv (bundled Mozilla roots otherwise), Ruby and other OpenSSL users: the same
             # bundle OpenSSL reads by default, so nothing that worked before changes.
             "SSL_CERT_FILE",
             "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",  # gRPC core (its own roots otherwise)
             "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE")  # gcloud (its bundled certifi otherwise)
# The system bundle each family keeps in step with its store (first one present wins).
SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                  "/etc/ssl/ca-bundle.pem")
ENVIRONMENT = "/etc/environment"
PROFILE = "/etc/profile.d/trustwall-ca.sh"
SYSTEMD = "/etc/systemd/system.conf.d/trustwall-ca.conf"


def set_variables(text: str, values: dict[str, str]) -> str:
    """``text`` with each variable set (its line replaced in place, or appended)."""
    lines = text.splitlines()
    done = set()
    for index, line in enumerate(lines):
        match = ASSIGNMENT.match(line)
        if match and match.group(1) in values and not line.lstrip().startswith("#"):
            name = match.group(1)
            lines[index] = f'{name}="{values[name]}"'
            done.add(name)
    missing = [n for n in values if n not in done]
    if missing:
        lines.append("# trustwall: programs with their own CA list use the system bundle")
        lines.extend(f'{n}="{values[n]}"' for n in missing)
    return "\n".join(lines) + "\n"


class EnvStore(TrustStore):
    kind = "env"
    writer = "(/etc/environment, profile.d, systemd)"

    @classmethod
    def detect(cls, root: Path) -> list[TrustStore]:
        if inside(root, "/etc").is_dir() and cls(root, inside(root, ENVIRONMENT)).bundle:
            return [cls(root, inside(root, ENVIRONMENT))]
        return []

    @property
    def bundle(self) -> str | None:
        return next((b for b in SYSTEM_BUNDLES if inside(self.root, b).is_file()), None)

    def current(self) -> dict[str, str]:
        try:
            return parse_environment(self.path.read_text(errors="replace"))
        except FileNotFoundError:
            return {}

    def ders(self) -> list[bytes]:
        values = self.current()
        if self.bundle is None or any(values.get(v) != self.bundle for v in VARIABLES):
            return []
        return pem_ders(inside(self.root, self.bundle).read_bytes())

    def follows_system_bundle(self) -> bool:
        values = self.current()
        return self.bundle is not None and all(values.get(v) == self.bundle for v in VARIABLES)

    def added_ders(self) -> list[bytes]:
        return []  # the bundle's added CAs are listed under the system store

    def removable(self) -> set[str]:
        return set()  # pointing at the system bundle stays right after a CA is removed

    def clients(self) -> tuple[str, ...]:
        return ("python requests (certifi), node, pip, AWS SDKs, git, uv, gRPC, gcloud -- new "
                "sessions; restart running programs and services",)

    def notes(self) -> tuple[str, ...]:
        missing = [v for v in VARIABLES if self.current().get(v) != self.bundle]
        if missing:
            return (f"not pointing at {self.bundle}: {', '.join(missing)}",)
        return ()

    def _add(self, certs: Sequence[Cert], txn: Transaction) -> None:
        assert self.bundle is not None
        values = dict.fromkeys(VARIABLES, self.bundle)
        text = self.path.read_text(errors="replace") if self.path.exists() else ""
        txn.write_file(self.path, set_variables(text, values).encode(), mode=0o644)
        profile = "".join(f'export {v}="{self.bundle}"\n' for v in VARIABLES)
        txn.write_file(inside(self.root, PROFILE),
                       ("# written by trustwall: see /etc/environment\n" + profile).encode())
        systemd = inside(self.root, SYSTEMD)
        if systemd.parent.parent.is_dir() and os.access(systemd.parent.parent, os.W_OK):
            line = " ".join(f'"{v}={self.bundle}"' for v in VARIABLES)
            txn.write_file(systemd, f"[Manager]\nDefaultEnvironment={line}\n".encode())

    def _remove(self, fingerprints: Sequence[str], txn: Transaction) -> None:
        raise AssertionError("nothing is removable from the env store")  # removable() is empty
