"""The packet trace on hand-written rulesets: order of hooks and tables, chains, targets, NAT,
unknowns followed both ways, and the CLI contract."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from trustwall.firewall.iptables.parse import parse_save
from trustwall.firewall.semantics.routing import from_args, from_ip_json
from trustwall.firewall.semantics.trace import Packet, Tracer, trace

HOST = "192.0.2.10"
LOCAL = from_args([HOST])


def P(src: str, dst: str, **kw: object) -> Packet:
    """A packet arriving on eth0 unless told otherwise."""
    kw.setdefault("in_iface", "eth0")
    return Packet(src, dst, **kw)  # type: ignore[arg-type]


def rs(text: str):  # type: ignore[no-untyped-def]
    return parse_save(text)


FILTER = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:SERVICES - [0:0]
:BLOCK - [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -i lo -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j LOG --log-prefix "ssh "
-A INPUT -p tcp -j SERVICES
-A INPUT -s 10.0.0.0/8 -g BLOCK
-A INPUT -p icmp -m icmp --icmp-type 8 -j ACCEPT
-A SERVICES -s 203.0.113.0/24 -j RETURN
-A SERVICES -p tcp -m multiport --dports 22,80,443 -j ACCEPT
-A SERVICES -p tcp -m tcp --dport 8000:8999 -m iprange --src-range 10.0.0.1-10.0.0.9 -j ACCEPT
-A BLOCK -s 10.1.0.0/16 -j RETURN
-A BLOCK -j REJECT --reject-with icmp-port-unreachable
COMMIT
"""


def decided(result):  # type: ignore[no-untyped-def]
    d = result.decided_by
    return result.verdict, d.chain, d.rule


def test_user_chain_accepts_after_non_terminating_log():
    r = trace(rs(FILTER), P("198.51.100.1", HOST, sport=40000, dport=22), LOCAL)
    assert decided(r) == ("ACCEPT", "SERVICES", 2)
    assert [s.action for s in r.path if s.table == "filter"] == ["LOG", "jump SERVICES",
                                                               "ACCEPT"]
    assert r.certain and r.unknown == ()


def test_return_from_user_chain_falls_to_the_policy():
    r = trace(rs(FILTER), P("203.0.113.5", HOST, sport=40000, dport=80), LOCAL)
    assert decided(r) == ("DROP", "INPUT", None)
    assert r.decided_by.text == "-P INPUT DROP"


def test_goto_returns_to_the_caller_of_the_calling_chain():
    # BLOCK was reached by -g from INPUT: its RETURN ends INPUT itself, so the policy decides
    # and INPUT rule 6 (icmp echo ACCEPT) is never consulted.
    r = trace(rs(FILTER), P("10.1.2.3", HOST, proto="icmp", icmp_type=8), LOCAL)
    assert decided(r) == ("DROP", "INPUT", None)
    r = trace(rs(FILTER), P("10.2.2.3", HOST, proto="icmp", icmp_type=8), LOCAL)
    assert decided(r) == ("REJECT", "BLOCK", 2)
    r = trace(rs(FILTER), P("198.51.100.1", HOST, proto="icmp", icmp_type=8), LOCAL)
    assert decided(r) == ("ACCEPT", "INPUT", 6)


def test_port_range_and_iprange_must_both_hold():
    t = Tracer(rs(FILTER), LOCAL)
    assert decided(t.trace(P("10.0.0.5", HOST, sport=1, dport=8500)))[1:] == ("SERVICES", 3)
    # outside the address range: INPUT rule 5 sends 10/8 to BLOCK, which rejects
    assert decided(t.trace(P("10.0.0.50", HOST, sport=1, dport=8500)))[1:] == ("BLOCK", 2)


def test_established_is_accepted_first():
    r = trace(rs(FILTER), P("10.2.2.3", HOST, sport=1, dport=9, state="ESTABLISHED"),
              LOCAL)
    assert decided(r) == ("ACCEPT", "INPUT", 1)


def test_unknown_input_interface_gives_both_outcomes():
    r = trace(rs(FILTER), Packet("198.51.100.1", HOST, proto="udp", sport=1, dport=53), LOCAL)
    assert not r.certain and r.verdict == "UNKNOWN" and r.decided_by is None
    assert {o.verdict for o in r.outcomes} == {"ACCEPT", "DROP"}
    assert "input interface" in r.unknown[0].reason
    r = trace(rs(FILTER), Packet("198.51.100.1", HOST, proto="udp", sport=1, dport=53,
                                 in_iface="eth0"), LOCAL)
    assert decided(r) == ("DROP", "INPUT", None)


def test_unknown_that_does_not_change_the_answer_is_still_certain():
    text = FILTER.replace("-A INPUT -i lo -j ACCEPT", "-A INPUT -i lo -j LOG")
    r = trace(rs(text), Packet("198.51.100.1", HOST, sport=1, dport=22), LOCAL)  # no --in
    assert r.certain and len(r.unknown) == 1 and len(r.outcomes) == 2
    assert decided(r) == ("ACCEPT", "SERVICES", 2)


def test_unmodelled_match_is_reported_not_guessed():
    text = FILTER.replace("-A INPUT -i lo -j ACCEPT",
                          "-A INPUT -p tcp -m recent --name ssh --update -j DROP")
    r = trace(rs(text), P("198.51.100.1", HOST, sport=1, dport=22), LOCAL)
    assert r.verdict == "UNKNOWN"
    assert sorted((o.verdict, o.decided_by.rule) for o in r.outcomes) == [
        ("ACCEPT", 2), ("DROP", 2)]
    assert "-m recent" in r.unknown[0].reason


def test_without_local_addresses_both_routes_are_followed():
    r = trace(rs(FILTER), Packet("198.51.100.1", HOST, sport=1, dport=22))
    assert r.verdict == "UNKNOWN"
    assert {o.hooks[1] for o in r.outcomes} == {"INPUT", "FORWARD"}
    assert r.unknown[0].chain == "routing"


DOCKER = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80
-A DOCKER -p tcp -m tcp --dport 3128 -j REDIRECT --to-ports 13128
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m tcp --dport 13128 -j ACCEPT
-A FORWARD -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
COMMIT
"""


def test_published_docker_port_goes_to_forward_not_input():
    r = trace(rs(DOCKER), Packet("198.51.100.1", HOST, sport=40000, dport=8080,
                                 in_iface="eth0", out_iface="docker0"), LOCAL)
    assert decided(r) == ("ACCEPT", "FORWARD", 1)
    assert r.hooks == ("PREROUTING", "FORWARD", "POSTROUTING")
    assert (r.final_packet.dst, r.final_packet.dport) == ("172.17.0.2", 80)


def test_route_lookup_gives_the_output_interface_after_dnat():
    from dataclasses import replace

    def route(addr: str) -> str:
        return "docker0" if addr.startswith("172.17.") else "eth0"

    local = replace(LOCAL, route_lookup=route)
    r = trace(rs(DOCKER), Packet("198.51.100.1", HOST, sport=40000, dport=8080,
                                 in_iface="eth0"), local)
    assert r.certain and decided(r) == ("ACCEPT", "FORWARD", 1)
    assert r.final_packet.out_iface == "docker0"


def test_forwarding_off_drops_at_the_routing_decision():
    from dataclasses import replace

    r = trace(rs(DOCKER), Packet("198.51.100.1", HOST, sport=40000, dport=8080,
                                 in_iface="eth0", out_iface="docker0"),
              replace(LOCAL, forwarding=False))
    assert r.verdict == "DROP" and r.decided_by.chain == "routing"
    assert "ip_forward" in r.decided_by.text


def test_redirect_goes_to_input_with_the_new_port():
    local = from_ip_json([{"ifname": "eth0", "addr_info": [{"local": HOST, "prefixlen": 24,
                                                           "broadcast": "192.0.2.255"}]}])
    r = trace(rs(DOCKER), Packet("198.51.100.1", HOST, sport=40000, dport=3128,
                                 in_iface="eth0"), local)
    assert decided(r) == ("ACCEPT", "INPUT", 1)
    assert r.final_packet.dport == 13128


def test_nat_rules_are_not_consulted_for_established_packets():
    r = trace(rs(DOCKER), Packet("198.51.100.1", HOST, sport=40000, dport=8080,
                                 in_iface="eth0", state="ESTABLISHED"), LOCAL)
    assert r.hooks[1] == "INPUT" and decided(r) == ("DROP", "INPUT", None)


MANGLE = """*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p udp -m udp --dport 53 -j CT --notrack
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -s 10.0.0.0/8 -j MARK --set-mark 0x2
-A PREROUTING -m mark --mark 0x2 -j CONNMARK --save-mark
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT DROP [0:0]
-A INPUT -m state --state UNTRACKED -j ACCEPT
-A INPUT -m mark --mark 0x2 -j ACCEPT
-A INPUT -m connmark --mark 0x2 -j REJECT
-A OUTPUT -o eth0 -p tcp -m tcp --dport 443 -j ACCEPT
COMMIT
"""


def test_mark_set_in_mangle_is_seen_by_filter():
    r = trace(rs(MANGLE), P("10.1.1.1", HOST, sport=1, dport=80), LOCAL)
    assert decided(r) == ("ACCEPT", "INPUT", 2)
    assert r.final_packet.mark == 2
    r = trace(rs(MANGLE), P("11.1.1.1", HOST, sport=1, dport=80), LOCAL)
    assert decided(r) == ("DROP", "INPUT", None)


def test_raw_notrack_makes_the_packet_untracked():
    r = trace(rs(MANGLE), P("11.1.1.1", HOST, proto="udp", sport=1, dport=53), LOCAL)
    assert decided(r) == ("ACCEPT", "INPUT", 1)
    assert r.final_packet.state == "UNTRACKED"


def test_locally_generated_packet_takes_output():
    t = Tracer(rs(MANGLE), LOCAL)
    r = t.trace(Packet(HOST, "203.0.113.9", sport=40000, dport=443, out_iface="eth0",
                       local=True))
    assert r.hooks == ("OUTPUT", "POSTROUTING") and decided(r) == ("ACCEPT", "OUTPUT", 1)
    r = t.trace(Packet(HOST, "203.0.113.9", sport=40000, dport=80, out_iface="eth0",
                       local=True))
    assert decided(r) == ("DROP", "OUTPUT", None)


def test_bad_packets_are_bad_input():
    from trustwall.errors import BadInput

    t = Tracer(rs(FILTER), LOCAL)
    with pytest.raises(BadInput):
        t.trace(Packet("not-an-ip", HOST))
    with pytest.raises(BadInput):
        t.trace(Packet("2001:db8::1", HOST))
    with pytest.raises(BadInput):
        t.trace(Packet("10.0.0.1", HOST, state="SLEEPY"))


def test_json_has_the_documented_keys():
    r = trace(rs(FILTER), P("198.51.100.1", HOST, sport=1, dport=22), LOCAL)
    data = r.to_json()
    assert {"verdict", "decided_by", "path", "unknown"} <= set(data)


def test_local_addresses_from_ip_json_and_arguments():
    local = from_ip_json([{"ifname": "lo", "addr_info": [{"local": "127.0.0.1"}]},
                          {"ifname": "eth0", "addr_info": [
                              {"local": "10.0.0.5", "broadcast": "10.0.0.255"},
                              {"local": "fe80::1"}]}])
    import ipaddress as ip

    assert local.is_local(ip.ip_address("10.0.0.5"))
    assert local.is_local(ip.ip_address("127.8.9.10"))  # the whole loopback /8
    assert not local.is_local(ip.ip_address("10.0.0.6"))
    assert str(local.primary("eth0", 4)) == "10.0.0.5"
    assert from_args([]).is_local(ip.ip_address("10.0.0.5")) is None
    assert from_args(["10.0.0.5/24"]).is_broadcast(ip.ip_address("10.0.0.255"))


# --- CLI -------------------------------------------------------------------------------------


@pytest.fixture()
def rules_file(tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "rules.v4"
    path.write_text(FILTER)
    return str(path)


def run_cli(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    from trustwall.cli.fw_trace import trace as command

    return CliRunner().invoke(command, list(args), input=input)


def test_cli_drop_is_an_answer_exit_zero(rules_file):
    result = run_cli("-f", rules_file, "--local-addr", HOST, "--src", "203.0.113.5",
                     "--dst", HOST, "--dport", "80", "--in", "eth0", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["verdict"] == "DROP" and data["decided_by"]["rule"] is None


def test_cli_human_output_names_the_rule(rules_file):
    result = run_cli("-f", rules_file, "--local-addr", HOST, "-s", "198.51.100.1", "-d", HOST,
                     "--dport", "443", "--in", "eth0")
    assert result.exit_code == 0
    assert "ACCEPT" in result.output and "SERVICES rule 2" in result.output


def test_cli_batch_prints_one_json_line_per_packet(rules_file):
    lines = "\n".join(json.dumps(p) for p in (
        {"src": "198.51.100.1", "dst": HOST, "dport": 22, "in": "eth0"},
        {"src": "10.2.0.1", "dst": HOST, "proto": "icmp", "icmp_type": "echo-request",
         "in": "eth0"},
        {"src": "198.51.100.1", "dst": HOST, "proto": "udp", "dport": 53, "in": "eth0"}))
    result = run_cli("-f", rules_file, "--local-addr", HOST, "--batch", "-", input=lines)
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in result.output.splitlines()]
    assert [r["verdict"] for r in rows] == ["ACCEPT", "REJECT", "DROP"]


def test_cli_bad_batch_line_is_exit_2(rules_file):
    result = run_cli("-f", rules_file, "--batch", "-", input='{"src": "1.2.3.4"}\n')
    assert result.exit_code != 0
    assert isinstance(result.exception, Exception)


def test_cli_needs_src_and_dst(rules_file):
    result = run_cli("-f", rules_file, "--dst", HOST)
    assert result.exit_code == 2


def test_non_contiguous_mask_is_traced_exactly():
    """``-s 10.0.0.0/255.0.255.0`` (the kernel loads it): second and last octet are free."""
    ruleset = rs("*filter\n:INPUT ACCEPT [0:0]\n"
                 "-A INPUT -s 10.11.12.13/255.0.255.0 -j DROP\nCOMMIT\n")
    t = Tracer(ruleset, LOCAL)
    for src, verdict in (("10.0.12.0", "DROP"), ("10.200.12.99", "DROP"),
                         ("10.0.13.0", "ACCEPT"), ("11.0.12.0", "ACCEPT")):
        assert t.trace(P(src, HOST, proto="udp", sport=1, dport=53)).verdict == verdict, src
    negated = rs("*filter\n:INPUT ACCEPT [0:0]\n"
                 "-A INPUT ! -s 10.0.0.0/255.0.255.0 -j DROP\nCOMMIT\n")
    assert trace(negated, P("10.9.0.1", HOST, proto="udp", sport=1, dport=53),
                 LOCAL).verdict == "ACCEPT"
    assert trace(negated, P("10.9.1.1", HOST, proto="udp", sport=1, dport=53),
                 LOCAL).verdict == "DROP"


def test_reversed_udp_port_range_matches_no_port():
    """iptables 1.8.9 loads ``-p udp --dport 60000:29`` (the TUM dumps have it): no port is in
    it, so the rule never matches, and its negation matches every port."""
    ruleset = rs("*filter\n:INPUT ACCEPT [0:0]\n"
                 "-A INPUT -p udp -m udp --dport 60000:29 -j DROP\n"
                 "-A INPUT -p udp -m udp ! --sport 60000:29 -j REJECT\nCOMMIT\n")
    t = Tracer(ruleset, LOCAL)
    for port in (29, 100, 60000):
        r = t.trace(P("10.0.0.1", HOST, proto="udp", sport=port, dport=port))
        assert decided(r) == ("REJECT", "INPUT", 2), port
