"""Where the third-party test corpora live: ``shared/corpora`` beside the repository.

They are read in place (several are licensed non-commercial) and never copied into the project.
TRUSTWALL_CORPORA overrides the location; CI lays ``shared/`` beside its fresh clone.
"""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[3]


def corpora_dir() -> Path:
    explicit = os.environ.get("TRUSTWALL_CORPORA")
    if explicit:
        return Path(explicit)
    return _REPO.parent / "shared" / "corpora"


CORPORA = corpora_dir()
REAL_RULESETS = CORPORA / "real-rulesets"
IPTABLES_TESTS = CORPORA / "iptables-tests"
#: The largest real ruleset (TUM chair firewall, 5,556 rules): the benchmarks' input.
TUM_LARGEST = (REAL_RULESETS / "net-network"
               / "configs_chair_for_Network_Architectures_and_Services"
               / "iptables-save-2016-06-27_16-29-01")
