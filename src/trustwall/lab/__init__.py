"""The reproducible lab: CA factory, hosts in network namespaces, TLS sites, an intercepting
proxy, sandboxed trust stores, real clients and a kernel oracle for firewall rules.

Built on the product, never the other way round: nothing outside ``trustwall.lab``,
``trustwall.cli.lab`` and the tests imports it (tests/unit/test_boundaries.py). Its public
names (``from trustwall.lab import Lab, Sandbox, KernelOracle``) load on first use.
"""

from __future__ import annotations

from importlib import import_module

_LAZY = {
    "Lab": "trustwall.lab.topology:Lab",
    "Sandbox": "trustwall.lab.sandbox:Sandbox",
    "KernelOracle": "trustwall.lab.oracle:KernelOracle",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> object:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'trustwall.lab' has no attribute {name!r}")
    module, attr = target.split(":")
    return getattr(import_module(module), attr)
