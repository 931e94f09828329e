"""trustwall: get out through TLS interception, let in through iptables — safely and undoably.

The public API is the small set of names below; each is loaded on first use so that
``import trustwall`` (and the CLI's start-up) stays cheap.
"""

from __future__ import annotations

from importlib import import_module

from trustwall.errors import (
    BadInput,
    EnvironmentMissing,
    LockoutRisk,
    ParseError,
    ProblemFound,
    StoreError,
    TrustwallError,
    Unreachable,
)

__version__ = "0.1.0"

# name -> module that defines it; resolved lazily by __getattr__ below.
_LAZY: dict[str, str] = {}

__all__ = [
    "BadInput",
    "EnvironmentMissing",
    "LockoutRisk",
    "ParseError",
    "ProblemFound",
    "StoreError",
    "TrustwallError",
    "Unreachable",
    "__version__",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'trustwall' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*__all__, *_LAZY])
