"""The doctor's chapters of the lab demo, on the session lab: ``why`` through the inspection
proxy breaks at trust and hands to ``fix``; ``why-in 18745`` breaks at the firewall and hands
over ``trustwall fw allow … --apply`` (the plan shows ``iptables -I INPUT 10``)."""

from __future__ import annotations

import os

import pytest

from trustwall.lab.story import why_in_step, why_step
from trustwall.lab.topology import Lab

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")]


def test_why_chapter_hands_the_interception_to_fix(lab: Lab) -> None:
    step = why_step(lab, "https://good.lab.test/")
    rows = {row.subject: row for row in step.rows}
    assert [r.verdict for r in step.rows] == ["OK"] * 5 + ["FAIL", "INFO"]
    assert rows["proxy"].detail.startswith(f"https_proxy={lab.proxy_url}")
    assert "Acme Widgets Inspection CA" in rows["trust"].detail
    assert rows["next"].detail == "sudo trustwall fix https://good.lab.test"


def test_why_in_chapter_hands_the_reject_to_fw_allow(lab: Lab) -> None:
    step = why_in_step(lab, 18745)
    rows = {row.subject: row for row in step.rows}
    assert rows["firewall"].verdict == "FAIL"
    assert "REJECT by filter INPUT rule 10" in rows["firewall"].detail
    assert "trustwall fw allow --proto tcp --dport 18745" in rows["firewall"].detail
    assert rows["next"].detail == "sudo trustwall fw allow -p tcp --dport 18745 --apply"
