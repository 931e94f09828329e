"""The firewalld owner without a daemon: zone dispatch as firewalld's nft layout does it, the
verdict order inside a zone chain, rich-rule spelling, and hostile text refused (zone names,
rich rules, before-images: they end up in firewall-cmd argv). The real daemon is in
tests/e2e/test_owner_firewalld.py."""

from __future__ import annotations

import json

import pytest

from trustwall.errors import BadInput, ParseError
from trustwall.firewall.owners import firewalld as fd
from trustwall.firewall.owners.base import Request

SSH = {"ssh": ("22/tcp",), "dhcpv6-client": ("546/udp",)}
LISTING = """\
public (active)
  target: default
  icmp-block-inversion: no
  interfaces: eth0
  sources:
  services: dhcpv6-client ssh
  ports: 18745/tcp 1000-1001/udp
  protocols:
  forward: yes
  masquerade: no
  forward-ports:
  source-ports:
  icmp-blocks:
  rich rules:
\trule family="ipv4" source address="198.18.210.2" port port="9090" protocol="tcp" accept
\trule port port="22" protocol="tcp" reject

trusted
  target: ACCEPT
  interfaces:
  sources: 10.9.0.0/16
  services:
  ports:
  protocols:
  rich rules:
"""


def _state() -> fd.FirewalldState:
    zones = fd.parse_zones(LISTING)
    return fd.FirewalldState(True, "public", zones, zones, SSH)


def test_listing_parses_into_zones() -> None:
    zones = fd.parse_zones(LISTING)
    public = zones["public"]
    assert public.interfaces == ("eth0",)
    assert public.ports == ("18745/tcp", "1000-1001/udp")
    assert len(public.rich_rules) == 2
    assert zones["trusted"].target == "ACCEPT"
    assert zones["trusted"].sources == ("10.9.0.0/16",)


@pytest.mark.parametrize("listing", [
    "pub;lic\n  target: default\n",                       # a zone name no argv should carry
    "public\n  target: ACCEPT; rm -rf /\n",
    "public\n  ports: 22/tcp$(id)\n",
    "public\n  interfaces: eth0 `x`\n",
    "public\n  sources: not-an-address\n",
    "public\n  rich rules: \n\trule \x1b[2Jaccept\n",     # terminal escapes in a rule
    "  target: default\n",                                # a setting before any zone
])
def test_hostile_listing_is_refused(listing: str) -> None:
    with pytest.raises(ParseError):
        fd.parse_zones(listing)


def test_dispatch_source_binding_first_then_interface_then_default() -> None:
    state = _state()
    assert fd.zone_for(state, src="10.9.1.1", in_iface="eth0") == "trusted"
    assert fd.zone_for(state, src="198.18.210.2", in_iface="eth0") == "public"
    assert fd.zone_for(state, in_iface="eth1") == "public"  # the default zone


def test_source_bindings_are_tried_in_zone_name_order() -> None:
    # firewalld sorts its source dispatch rules by zone name: "dmz" before "work" even
    # when work's network is the narrower one.
    zones = {"work": fd.Zone("work", sources=("10.0.0.5/32",)),
             "dmz": fd.Zone("dmz", sources=("10.0.0.0/8",))}
    state = fd.FirewalldState(True, "public", zones, zones)
    assert fd.zone_for(state, src="10.0.0.5") == "dmz"


def test_deny_rich_rules_run_before_services_and_ports() -> None:
    public = _state().runtime["public"]
    ssh = fd.verdict(public, fd.Packet("tcp", 22, "198.18.210.9"), SSH)
    assert (ssh.verdict, ssh.by) == ("REJECT", 'rich rule rule port port="22" protocol="tcp" '
                                                'reject')
    assert fd.verdict(public, fd.Packet("tcp", 18745), SSH).verdict == "ACCEPT"
    assert fd.verdict(public, fd.Packet("udp", 1001), SSH).verdict == "ACCEPT"
    assert fd.verdict(public, fd.Packet("tcp", 9090, "198.18.210.2"), SSH).verdict == "ACCEPT"
    other = fd.verdict(public, fd.Packet("tcp", 9090, "198.18.210.3"), SSH)
    assert other.verdict == "REJECT" and other.certain
    # from "any" source the source-restricted rule may or may not match: not certain
    assert not fd.verdict(public, fd.Packet("tcp", 9090), SSH).certain
    assert fd.verdict(public, fd.Packet("icmp", None), SSH).verdict == "ACCEPT"


def test_plan_of_a_plain_allow_is_a_port_and_its_permanent_twin() -> None:
    state = _state()
    plan = fd.plan(Request("allow", proto="tcp", dport="8080", in_iface="eth0"), state)
    assert [c.argv for c in plan.commands] == [
        ("firewall-cmd", "--zone", "public", "--add-port", "8080/tcp"),
        ("firewall-cmd", "--permanent", "--zone", "public", "--add-port", "8080/tcp")]
    assert plan.persistent
    assert [str(e) for e in plan.effect] == [
        "NEW tcp/8080 from any in zone public: REJECT -> ACCEPT"]


def test_plan_of_what_is_already_there_is_empty() -> None:
    plan = fd.plan(Request("allow", proto="tcp", dport="18745", in_iface="eth0"), _state())
    assert plan.commands == () and plan.effect == ()
    assert "already" in plan.notes[-1] or any("already" in n for n in plan.notes)


def test_timeout_is_runtime_only_and_not_persistent() -> None:
    plan = fd.plan(Request("allow", proto="tcp", dport="8080", in_iface="eth0", duration=90),
                   _state())
    assert [c.text for c in plan.commands] == [
        "firewall-cmd --zone public --add-port 8080/tcp --timeout 90s"]
    assert not plan.persistent and plan.expires


def test_rich_rules_are_spelled_as_firewalld_lists_them() -> None:
    assert fd.rich_rules(Request("deny", proto="tcp", dport="80,443", src="10.1.2.0/24"),
                         "drop") == [
        'rule family="ipv4" source address="10.1.2.0/24" port port="80" protocol="tcp" drop',
        'rule family="ipv4" source address="10.1.2.0/24" port port="443" protocol="tcp" drop']
    assert fd.rich_rules(Request("reject", proto="tcp", dport="1000:2000",
                                 src="2001:db8::1"), "reject") == [
        'rule family="ipv6" source address="2001:db8::1" port port="1000-2000" '
        'protocol="tcp" reject']


@pytest.mark.parametrize("request_", [
    Request("allow", proto="tcp", dport="22; reboot"),
    Request("allow", proto="tcp", dport="70000"),
    Request("allow", proto="tcp", dport="22", src="10.0.0.1\" accept"),
    Request("allow", proto="tcp", dport="22", src="10.0.0.1", dst="2001:db8::1"),
    Request("allow", proto="t cp", dport="22"),
    Request("allow", proto="tcp", dport="22", sport="1024"),
    Request("allow", proto="tcp", dport="22", in_iface="eth0 --permanent"),
])
def test_bad_requests_are_refused_before_any_command(request_: Request) -> None:
    with pytest.raises(BadInput):
        fd.plan(request_, _state())


def test_delete_removes_only_what_is_there() -> None:
    plan = fd.plan(Request("delete", proto="tcp", dport="18745", in_iface="eth0"), _state())
    assert [c.text for c in plan.commands] == [
        "firewall-cmd --zone public --remove-port 18745/tcp",
        "firewall-cmd --permanent --zone public --remove-port 18745/tcp"]
    plan = fd.plan(Request("delete", proto="tcp", dport="4444", in_iface="eth0"), _state())
    assert plan.commands == ()


def test_inverse_commands_bring_back_the_before_image() -> None:
    state = _state()
    before = json.loads(fd.image_of(state, ["public"]))["zones"]
    changed = fd._apply_to_zone(state.runtime["public"], ["8080/tcp"], [], add=True)
    changed = fd._apply_to_zone(changed, ["18745/tcp"], [], add=False)
    changed = fd._apply_to_zone(changed, [], ["rule protocol value=\"gre\" accept"], add=True)
    now = fd.FirewalldState(True, "public", {"public": changed}, state.permanent)
    # one call per kind and direction: firewall-cmd refuses --add-port with --remove-port
    assert fd.inverse_commands(before, now) == [
        ["firewall-cmd", "--zone", "public", "--remove-port", "8080/tcp"],
        ["firewall-cmd", "--zone", "public", "--add-port", "18745/tcp"],
        ["firewall-cmd", "--zone", "public", "--remove-rich-rule",
         'rule protocol value="gre" accept']]


@pytest.mark.parametrize("image", [
    b"not json",
    json.dumps({"zones": {"pub lic": {"runtime": None, "permanent": None}}}).encode(),
    json.dumps({"zones": {"public": {"runtime": {"ports": ["22/tcp; id"]},
                                     "permanent": None}}}).encode(),
    json.dumps({"zones": {"public": {"runtime": {"argv": ["x"]}, "permanent": None}}}).encode(),
    json.dumps({"zones": {"public": {"runtime": {"rich_rules": ["rm -rf /"]},
                                     "permanent": None}}}).encode(),
])
def test_a_tampered_before_image_is_refused(image: bytes) -> None:
    with pytest.raises(fd.FirewalldError):
        fd._image(image)


def test_the_journal_knows_the_firewalld_step_kind() -> None:
    from trustwall.journal import steps

    kind = steps.kind("firewalld")
    assert kind.validate({"zones": ["public"]}) == {"zones": ["public"]}
    with pytest.raises(steps.JournalRefused):
        kind.validate({"zones": ["public; id"]})
    assert kind.restore_argv({})[-3:] == ["-m", "trustwall.firewall.owners.firewalld",
                                          "restore"]


def test_iptables_shaped_details_are_refused_not_dropped() -> None:
    # Request grows iptables-only fields (--chain, --state, -o …); a zone cannot say them.
    request = Request("allow", proto="tcp", dport="22")
    object.__setattr__(request, "chain", "FORWARD")
    plan = fd.plan(request, _state())
    assert plan.refused and "--chain FORWARD" in plan.refused and plan.commands == ()
