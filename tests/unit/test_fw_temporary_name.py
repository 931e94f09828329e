"""A temporary rule (``--for 2h``) the user did not name is named after what it does, and the
name is printed: ``fw expire`` and ``undo`` find it by that name."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustwall.cli.main import main
from trustwall.firewall.change.quick import derived_name
from trustwall.lab.topology import SEED_RULESET


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"proto": "tcp", "dport": "18745"}, "allow-tcp-18745"),
    ({"proto": "udp", "dport": "5000:5010"}, "allow-udp-5000:5010"),
    ({"proto": "tcp", "dport": "80,443", "src": "10.0.0.0/8"}, "allow-tcp-80_443-10.0.0.0_8"),
    ({"src": "2001:db8::/32"}, "allow-all-2001:db8::_32"),
])
def test_derived_name_says_what_the_rule_does(kwargs: dict, name: str) -> None:
    assert derived_name("ACCEPT", **kwargs) == name


def test_allow_for_2h_without_a_name_derives_and_prints_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.v4"
    rules.write_text(SEED_RULESET)
    assert main(["fw", "allow", "--file", str(rules), "--proto", "tcp", "--dport", "18745",
                 "--for", "2h", "--plan"]) == 0
    captured = capsys.readouterr()
    assert "temporary rule named allow-tcp-18745" in captured.err
    command = captured.out.splitlines()[0]
    assert command.startswith("iptables -I INPUT 10 -p tcp")
    assert "--comment 'tw:allow-tcp-18745 expires=" in command
    # A name the user gives wins, and nothing is said about it.
    assert main(["fw", "allow", "--file", str(rules), "--proto", "tcp", "--dport", "18745",
                 "--for", "2h", "--name", "jmx", "--plan"]) == 0
    captured = capsys.readouterr()
    assert "'tw:jmx expires=" in captured.out and "named" not in captured.err


def test_deny_and_reject_are_named_after_their_command() -> None:
    assert derived_name("DROP", proto="tcp", dport="23") == "deny-tcp-23"
    assert derived_name("REJECT", proto="udp", dport="53") == "reject-udp-53"
