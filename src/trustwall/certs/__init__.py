"""The certificate toolbox: one immutable ``Cert`` value, loading any format, OpenSSL hashes.

Stable names others import: ``Cert``, ``load_certs``, ``subject_hash``. They are resolved on
first use so that ``trustwall rehash`` (which needs none of them) starts fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trustwall.certs.load import load_certs
    from trustwall.certs.model import Cert, subject_hash

_LAZY = {"Cert": "trustwall.certs.model", "subject_hash": "trustwall.certs.model",
         "load_certs": "trustwall.certs.load"}

__all__ = ["Cert", "load_certs", "subject_hash"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'trustwall.certs' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
