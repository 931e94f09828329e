"""/etc/environment editing: variables set in place or appended, everything else kept."""

from __future__ import annotations

from trustwall.stores.env import parse_environment, set_variables


def test_existing_assignment_is_replaced_in_place_and_others_kept() -> None:
    text = ('PATH="/usr/bin"\n# REQUESTS_CA_BUNDLE=/old (a comment stays a comment)\n'
            "export REQUESTS_CA_BUNDLE='/tmp/corp.pem'\nLANG=C\n")
    out = set_variables(text, {"REQUESTS_CA_BUNDLE": "/b.crt", "NODE_EXTRA_CA_CERTS": "/b.crt"})
    lines = out.splitlines()
    assert lines[:4] == ['PATH="/usr/bin"', "# REQUESTS_CA_BUNDLE=/old (a comment stays a comment)",
                         'REQUESTS_CA_BUNDLE="/b.crt"', "LANG=C"]
    assert lines[-1] == 'NODE_EXTRA_CA_CERTS="/b.crt"'
    assert parse_environment(out) == {"PATH": "/usr/bin", "REQUESTS_CA_BUNDLE": "/b.crt",
                                      "LANG": "C", "NODE_EXTRA_CA_CERTS": "/b.crt"}


def test_setting_again_changes_nothing() -> None:
    once = set_variables("", {"PIP_CERT": "/b.crt"})
    assert set_variables(once, {"PIP_CERT": "/b.crt"}) == once
