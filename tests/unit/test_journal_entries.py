"""Journal lines are parsed into one dataclass per step and written back unchanged."""

from __future__ import annotations

import pytest

from trustwall.journal import entries
from trustwall.journal.steps import JournalRefused

STEPS = [
    entries.FileStep("/etc/ssl/certs/ca.pem", {"type": "absent"}),
    entries.TreeStep("/etc/ssl/certs", ("a.pem", "b.0")),
    entries.RunStep(("update-ca-certificates", "--fresh")),
    entries.RecordStep("iptables-v4", "0" * 64, "filter", {"backend": "nft"}),
]


@pytest.mark.parametrize("step", STEPS, ids=lambda s: s.op)
def test_every_step_survives_its_journal_line(step):
    line = entries.to_json(step)
    assert line["op"] == step.op
    assert entries.from_json(line, "line 1") == step


@pytest.mark.parametrize("line", [
    None, [], "file", {"op": "exec", "argv": ["sh"]}, {"op": "file", "before": {}},
    {"op": "file", "path": "/x", "before": "absent"},
    {"op": "tree", "path": "/x", "names": "a"}, {"op": "tree", "path": "/x", "names": [1]},
    {"op": "run", "argv": "sh -c x"}, {"op": "record", "kind": "iptables-v4"},
    {"op": "record", "kind": "iptables-v4", "before": "0" * 64, "data": ["x"]},
])
def test_a_line_of_any_other_shape_is_refused_not_guessed_at(line):
    with pytest.raises(JournalRefused, match="line 7"):
        entries.from_json(line, "line 7")


def test_a_run_step_asking_for_an_undo_command_is_refused():
    with pytest.raises(JournalRefused, match="never runs commands read from a journal"):
        entries.from_json({"op": "run", "argv": ["true"], "undo_argv": ["sh"]}, "line 1")
