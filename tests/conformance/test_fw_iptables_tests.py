"""Conformance against netfilter's own extension tests (corpora/iptables-tests/*.t).

Every OK line must parse and render to the save form upstream expects; every FAIL line must be
refused with a ParseError. See corpora/iptables-tests/FORMAT.md for the file format. Run this
module directly (``python -m tests.conformance.test_fw_iptables_tests``) for per-file counts.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from trustwall.errors import ParseError
from trustwall.firewall.iptables.parse import parse_rule_spec
from trustwall.firewall.iptables.render import rule_spec
from trustwall.lab.corpora import IPTABLES_TESTS

CORPUS = IPTABLES_TESTS


@dataclass(frozen=True)
class Case:
    file: str
    line: int
    family: int
    table: str
    chains: tuple[str, ...]
    args: str
    expected: str | None  # save form for OK, None for FAIL
    outcome: str  # OK, FAIL or NOMATCH (nft back end)


def _families(name: str) -> tuple[int, ...]:
    if name.startswith("libip6t_"):
        return (6,)
    if name.startswith("libxt_"):
        return (4, 6)
    if name.startswith("libipt_") or name == "iptables.t":
        return (4,)
    return ()


def _nft_outcome(fields: list[str]) -> str:
    result = fields[2]
    if len(fields) > 3 and fields[3]:
        if fields[3] == "NFT":
            return result
        if len(fields) > 4 and fields[4]:
            return "OK" if fields[4] == "OK" else ("FAIL" if fields[4] == "FAIL" else "NOMATCH")
        return {"OK": "FAIL", "FAIL": "OK", "NOMATCH": "OK"}[result]
    return result


#: FAIL lines of this (1.8.13) corpus that iptables 1.8.9, the version Debian 12 ships and
#: trustwall reads, loads and saves back unchanged: reversed port ranges of udp, dccp and
#: conntrack (they match no port; tcp, sctp and multiport refuse them in 1.8.9 too). Real
#: rulesets carry them (the TUM dumps' ``--dport 60000:29``). They are OK lines here, so
#: test_fw_kernel_oracle checks each against the kernel.
LOADED_BY_1_8_9 = frozenset({
    ("libxt_udp.t", 14), ("libxt_udp.t", 20), ("libxt_dccp.t", 13), ("libxt_dccp.t", 18),
    ("libxt_conntrack.t", 33), ("libxt_conntrack.t", 39), ("libxt_conntrack.t", 45),
    ("libxt_conntrack.t", 51),
})


def load_cases() -> list[Case]:
    cases: list[Case] = []
    if not CORPUS.is_dir():
        return cases
    for path in sorted(CORPUS.glob("*.t")):
        families = _families(path.name)
        if not families:
            continue
        table, chains = "filter", ()
        for lineno, raw in enumerate(path.read_text().splitlines(), 1):
            line = raw.rstrip()
            if not line or line[0] in "#@%":
                continue
            if line[0] == ":":
                chains = tuple(line[1:].split(","))
                continue
            if line[0] == "*":
                table = line[1:]
                continue
            fields = line.split(";")
            if len(fields) < 3:
                continue
            outcome = _nft_outcome(fields)
            if (path.name, lineno) in LOADED_BY_1_8_9:
                outcome, fields = "OK", [fields[0], "=", "OK"]
            expected = (fields[0] if fields[1] == "=" else fields[1]) if outcome != "FAIL" \
                else None
            for fam in families:
                cases.append(Case(path.name, lineno, fam, table, chains, fields[0], expected,
                                  outcome))
    return cases


def check(case: Case) -> str | None:
    """None when trustwall agrees with the expectation, else a one-line reason."""
    try:
        rendered = [rule_spec(parse_rule_spec(case.args, chain=c, family=case.family,
                                              table=case.table))
                    for c in case.chains]
    except ParseError as exc:
        if case.outcome == "FAIL":
            return None
        return f"refused: {exc}"
    if case.outcome == "FAIL":
        return f"accepted a FAIL line as: {rendered[0]}"
    if case.outcome == "NOMATCH":
        return None
    bad = [r for r in rendered if r != case.expected]
    if bad:
        return f"rendered {bad[0]!r}, expected {case.expected!r}"
    return None


CASES = load_cases()


def report() -> tuple[Counter, Counter]:
    good: Counter = Counter()
    total: Counter = Counter()
    for case in CASES:
        key = (case.file, case.family, case.outcome == "FAIL")
        total[key] += 1
        if check(case) is None:
            good[key] += 1
    return good, total


@pytest.mark.skipif(not CASES, reason="iptables-tests corpus not present")
def test_corpus_is_read() -> None:
    assert len(CASES) > 1000


def _known_gaps() -> set[tuple[str, int, int]]:
    """Lines we know we do not handle yet, listed in fw_known_gaps.txt next to this file."""
    path = Path(__file__).with_name("fw_known_gaps.txt")
    if not path.exists():
        return set()
    out = set()
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            f, ln, fam = line.split()[:3]
            out.add((f, int(ln), int(fam)))
    return out


def test_every_ok_line_renders_and_every_fail_line_is_refused() -> None:
    gaps = _known_gaps()
    failures = []
    fixed = []
    for case in CASES:
        reason = check(case)
        key = (case.file, case.line, case.family)
        if reason is not None and key not in gaps:
            failures.append(f"{case.file}:{case.line} (IPv{case.family}) {case.args!r}: {reason}")
        if reason is None and key in gaps:
            fixed.append(key)
    assert not failures, "\n".join(failures[:40]) + f"\n... {len(failures)} in all"
    assert not fixed, f"listed as gaps but now pass (remove from fw_known_gaps.txt): {fixed}"


if __name__ == "__main__":
    good, total = report()
    ok_good = ok_total = fail_good = fail_total = 0
    for key in sorted(total):
        f, fam, is_fail = key
        print(f"{f:28} IPv{fam} {'FAIL' if is_fail else 'OK  '} {good[key]:4}/{total[key]:4}")
        if is_fail:
            fail_good += good[key]
            fail_total += total[key]
        else:
            ok_good += good[key]
            ok_total += total[key]
    print(f"OK lines {ok_good}/{ok_total}; FAIL lines refused {fail_good}/{fail_total}")
    if "-v" in sys.argv:
        for case in CASES:
            reason = check(case)
            if reason:
                print(f"{case.file}:{case.line} v{case.family} {case.args} -> {reason}")
