"""Run every benchmark module in bench/ (or the ones named on the command line)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main(names: list[str]) -> int:
    here = Path(__file__).resolve().parent
    available = sorted(m.name for m in pkgutil.iter_modules([str(here)])
                       if m.name not in {"common", "__main__"})
    chosen = names or available
    failed = []
    for name in chosen:
        if name not in available:
            print(f"bench: unknown benchmark {name!r}; have: {', '.join(available)}")
            return 2
        print(f"== bench.{name}")
        try:
            importlib.import_module(f"bench.{name}").main()
        except Exception as exc:  # report and go on with the others
            print(f"bench.{name} failed: {type(exc).__name__}: {exc}")
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
