"""conda's ``ssl_verify`` in a .condarc (/etc/conda/.condarc, ~/.condarc, <conda>/.condarc).

``ssl_verify: true`` (or unset) means conda's own roots (certifi in its base environment);
``false`` turns verification off, which is what people do behind an inspecting proxy; a path
names the bundle to read instead. Installing sets the path of the merged system bundle --
turning verification back on where it was off. The file is edited line by line (comments and
the rest kept) and the result must still parse as YAML with the new value.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from trustwall.errors import StoreError
from trustwall.stores.base import TrustStore
from trustwall.stores.pointer import PointerStore, system_bundle

CONDARCS = ("/etc/conda/.condarc", "/etc/conda/condarc", "/opt/conda/.condarc",
            "/root/.condarc", "/home/*/.condarc")
_LINE = re.compile(r"^ssl_verify\s*:.*$")


def _load(text: str) -> dict:
    import yaml

    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise StoreError(f"not valid YAML: {exc}") from exc
    return data if isinstance(data, dict) else {}


class CondaStore(PointerStore):
    kind = "conda"
    writer = "conda config --set ssl_verify"
    setting = "ssl_verify"

    @classmethod
    def detect(cls, root: Path) -> list[TrustStore]:
        if system_bundle(root) is None:
            return []
        paths = [p for pattern in CONDARCS for p in sorted(root.glob(pattern.lstrip("/")))]
        home = os.environ.get("HOME")
        if str(root) == "/" and home:
            paths.append(Path(home) / ".condarc")
        found: dict[str, TrustStore] = {}
        for path in paths:
            if path.is_file():
                found.setdefault(os.path.realpath(path), cls(root, path))
        return list(found.values())

    def value(self) -> object:
        try:
            return _load(self.text()).get("ssl_verify")
        except StoreError:
            return None

    def current(self) -> str | None:
        value = self.value()
        return value if isinstance(value, str) and value.lower() not in ("true", "false") \
            else None

    def rewritten(self, text: str, bundle: str) -> str:
        line = f"ssl_verify: {bundle}"
        lines = text.splitlines()
        hits = [i for i, old in enumerate(lines) if _LINE.match(old)]
        for i in hits:
            lines[i] = line
        if not hits:
            lines.append(line)
        out = "\n".join(lines) + "\n"
        try:
            done = _load(out).get("ssl_verify") == bundle
        except StoreError:
            done = False
        if not done:  # e.g. a value continued on the next lines
            raise StoreError(f"{self.path}: cannot set ssl_verify by line edit",
                             hint=f"set it by hand: conda config --set ssl_verify {bundle}")
        return out

    def clients(self) -> tuple[str, ...]:
        return ("conda, mamba (this .condarc)",)

    def notes(self) -> tuple[str, ...]:
        if self.value() is False:
            return ("ssl_verify: false -- conda verifies nothing; installing a CA points it "
                    f"at {self.bundle} instead",)
        return super().notes()
