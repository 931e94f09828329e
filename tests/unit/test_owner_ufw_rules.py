"""ufw's rules files as the ufw owner reads them: every tuple field validated (a planted value
is refused, never turned into a ufw argument), rules back as ufw command words, overlaps.
The files here are what ufw 0.36.2 wrote in the lab (tests/e2e/test_owner_ufw.py runs ufw)."""

from __future__ import annotations

import pytest

from trustwall.errors import BadInput, ParseError
from trustwall.firewall.owners import ufw
from trustwall.firewall.owners.base import Request

USER_RULES = """*filter
:ufw-user-input - [0:0]
:ufw-user-limit-accept - [0:0]
### RULES ###

### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in
-A ufw-user-input -p tcp --dport 22 -j ACCEPT

### tuple ### allow tcp 18745 0.0.0.0/0 any 198.18.200.2 in comment=74773a612065787069726573
-A ufw-user-input -p tcp --dport 18745 -s 198.18.200.2 -j ACCEPT

### tuple ### deny any 137:139 0.0.0.0/0 any 10.0.0.0/8 in_eth0
-A ufw-user-input -i eth0 -p tcp -m multiport --dports 137:139 -s 10.0.0.0/8 -j DROP
-A ufw-user-input -i eth0 -p udp -m multiport --dports 137:139 -s 10.0.0.0/8 -j DROP

### END RULES ###

### LOGGING ###
-A ufw-user-limit-accept -j ACCEPT
### END LOGGING ###
COMMIT
"""


def test_reads_tuples_with_their_lines_comment_and_interface():
    rules = ufw.parse_rules(USER_RULES, 4)
    assert [r.action for r in rules] == ["allow", "allow", "deny"]
    assert rules[1].src == "198.18.200.2" and rules[1].comment == "tw:a expires"
    assert rules[2].iface_in == "eth0" and rules[2].dport == "137:139"
    assert len(rules[2].lines) == 2
    assert rules[0].words() == ["allow", "in", "from", "any", "to", "any", "port", "22",
                                "proto", "tcp"]
    assert rules[2].words() == ["deny", "in", "on", "eth0", "from", "10.0.0.0/8", "to", "any",
                                "port", "137:139"]


@pytest.mark.parametrize("field, planted", [
    ("allow tcp 22 ", "allow tcp 22;reboot "),
    ("allow tcp 22 ", "allow $(id) 22 "),
    ("0.0.0.0/0 any 0.0.0.0/0 in\n-A ufw-user-input -p tcp --dport 22",
     "0.0.0.0/0 any 0.0.0.0/0 in_eth0;x\n-A ufw-user-input -p tcp --dport 22"),
    ("allow tcp 22 0.0.0.0/0", "allow tcp 22 ::/0"),  # an IPv6 address among IPv4 rules
    ("allow tcp 22 ", "allow tcp 70000 "),
    ("comment=74773a612065787069726573", "comment=0a72"),  # a newline in the comment
    ("-A ufw-user-input -p tcp --dport 22 -j ACCEPT", "-A INPUT -j ACCEPT"),
])
def test_a_planted_field_is_refused(field, planted):
    assert field in USER_RULES
    with pytest.raises(ParseError):
        ufw.parse_rules(USER_RULES.replace(field, planted, 1), 4)


def test_overlaps():
    allow_client, deny_eth0 = ufw.parse_rules(USER_RULES, 4)[1:]
    deny_18745 = ufw.parse_tuple("### tuple ### deny tcp 18745 0.0.0.0/0 any 0.0.0.0/0 in", 4)
    udp_18745 = ufw.parse_tuple("### tuple ### deny udp 18745 0.0.0.0/0 any 0.0.0.0/0 in", 4)
    assert ufw.overlaps(allow_client, deny_18745)
    assert not ufw.overlaps(allow_client, udp_18745)  # other protocol
    assert not ufw.overlaps(allow_client, deny_eth0)  # ports 137:139, source 10/8
    wide = ufw.parse_tuple("### tuple ### deny any any 0.0.0.0/0 any 198.18.0.0/16 in", 4)
    assert ufw.overlaps(allow_client, wide)


@pytest.mark.parametrize("request_", [
    Request("allow", proto="tcp", dport="1:2;3"),
    Request("allow", dport="80,443"),  # a list needs a protocol in ufw
    Request("allow", proto="tcp", dport="22", src="198.18.0.1", family=6),
    Request("allow", proto="tcp", dport="22", in_iface="eth0 -j"),
    Request("accept", proto="tcp", dport="22"),
])
def test_bad_requests_are_refused_before_ufw_runs(request_):
    with pytest.raises(BadInput):
        ufw.plan(request_, ufw.UfwState(True, True, {}, {4: (), 6: ()}))


def test_a_comment_with_control_characters_is_refused():
    with pytest.raises(BadInput):
        ufw.plan(Request("allow", proto="tcp", dport="22", comment="a\nb"),
                 ufw.UfwState(True, True, {}, {4: (), 6: ()}))


def test_a_command_for_one_family_spells_its_any_address_out():
    v4 = ufw.parse_tuple("### tuple ### deny tcp 18745 0.0.0.0/0 any 0.0.0.0/0 in", 4)
    v6 = ufw.parse_tuple("### tuple ### deny tcp 18745 ::/0 any ::/0 in", 6)
    both = ufw.UfwState(True, True, {}, {4: (v4,), 6: (v6,)})
    only4 = ufw.UfwState(True, True, {}, {4: (v4,), 6: ()})
    assert ufw._words(v4, both, None)[:4] == ["deny", "in", "from", "any"]  # both copies
    assert ufw._words(v4, both, 4)[:4] == ["deny", "in", "from", "0.0.0.0/0"]
    assert ufw._words(v4, only4, None)[:4] == ["deny", "in", "from", "0.0.0.0/0"]
    assert v4.twin() == v6
