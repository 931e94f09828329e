"""Renderers: iptables-save text, the `iptables -L` table and iptables commands.

The pure tests pin the formats; the lab test loads a ruleset with many extensions into a
namespace and requires byte-identical agreement with the kernel's iptables-save and
`iptables -L -n -v [-x] --line-numbers`.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from trustwall.firewall.iptables.parse import parse_rule_spec, parse_save
from trustwall.firewall.iptables.render import (
    listing_view,
    render_command,
    render_listing,
    render_rule,
    render_save,
    rule_spec,
    save_string,
)

RULES = """*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p tcp -m tcp --dport 80 -j NOTRACK
-A PREROUTING -j CT --notrack
-A PREROUTING -m rpfilter --loose --validmark --accept-local --invert
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu
-A POSTROUTING -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1400
-A POSTROUTING -p udp -j CHECKSUM --checksum-fill
-A OUTPUT -j MARK --set-mark 5
-A OUTPUT -j MARK --or-mark 5
-A OUTPUT -j MARK --and-mark 0xff
-A OUTPUT -j CONNMARK --save-mark --mask 0xff
-A OUTPUT -j CONNMARK --restore-mark --nfmask 0xff --ctmask 0xf0
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p tcp -j DNAT --to-destination 198.18.0.4:80-90 --random
-A PREROUTING -p tcp --dport http -j REDIRECT --to-ports 8080
-A PREROUTING -j NETMAP --to 10.0.0.0/8
-A POSTROUTING -p tcp -j MASQUERADE --to-ports 100-200 --random-fully
-A POSTROUTING -j SNAT --to-source 198.18.0.1 --persistent
COMMIT
*filter
:INPUT DROP [7:420]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [123456:987654321]
:LOGDROP - [0:0]
[5:300] -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
[1:60] -A INPUT -p tcp --dport ssh -m comment --comment "ssh from \\"ops\\"" -j ACCEPT
-A INPUT -s 10.1.2.3/8 -i eth+ -p udp -m multiport --dports 53,123:124 -j LOGDROP
-A INPUT -p tcp ! --syn ! --sport 5 --tcp-option 2 -j DROP
-A INPUT -p icmp ! --icmp-type 3/1 -j DROP
-A INPUT -p icmp --icmp-type echo-request -m limit --limit 10/hour --limit-burst 2 -j ACCEPT
-A INPUT -m iprange --src-range 198.18.0.1-198.18.0.5 ! --dst-range 198.18.1.2-198.18.1.9
-A INPUT -m mark ! --mark 0x1/0xf -m connmark --mark 5 -j DROP
-A INPUT -m addrtype ! --src-type LOCAL,UNICAST --dst-type BLACKHOLE --limit-iface-in
-A INPUT -m recent --name X --rcheck --seconds 60 --hitcount 3 --rttl
-A INPUT -m hashlimit --hashlimit-above 10/sec --hashlimit-mode srcip --hashlimit-name f
-A INPUT -m state ! --state INVALID -m ttl --ttl-gt 3
-A INPUT -m mac --mac-source 00:0A:0b:0C:0d:0E -j RETURN
-A INPUT ! -s 198.18.0.0/15 -d 198.18.0.7 ! -p udp -f -g LOGDROP
-A FORWARD -m physdev ! --physdev-is-in --physdev-out eth0 -j ACCEPT
-A OUTPUT -m owner ! --uid-owner 5 -m owner --gid-owner 7-9 --suppl-groups
-A OUTPUT -m conntrack ! --ctstate NEW --ctproto tcp ! --ctorigsrc 1.2.3.0/24 --ctdir REPLY
-A OUTPUT -p tcp -j REJECT --reject-with tcp-reset
-A OUTPUT -j NFLOG --nflog-group 3 --nflog-prefix "a b"
-A LOGDROP -j LOG --log-prefix "drop: " --log-level debug --log-tcp-options --log-uid
-A LOGDROP -j DROP
COMMIT
"""


def test_save_string_quotes_like_xtables() -> None:
    assert save_string("plain_word-1") == "plain_word-1"
    assert save_string("a b") == '"a b"'
    assert save_string("it's \"x\"") == '"it\\\'s \\"x\\""'
    assert save_string("") == '""'


def test_render_rule_with_counters_and_canonical_values() -> None:
    r = parse_rule_spec("-p tcp --dport 1024: -s 10.0.0.1 -c 3 4 -j ACCEPT", chain="INPUT")
    assert render_rule(r, counters=True) == \
        "[3:4] -A INPUT -s 10.0.0.1/32 -p tcp -m tcp --dport 1024:65535 -j ACCEPT"


def test_render_command_quotes_for_the_shell() -> None:
    r = parse_rule_spec('-m comment --comment "web in" -p tcp --dport 80 -j ACCEPT',
                        chain="INPUT")
    assert render_command(r, action="-I", number=3) == (
        "iptables -I INPUT 3 -p tcp -m comment --comment 'web in' -m tcp --dport 80 -j ACCEPT")
    assert render_command(r, table="nat", family=6).startswith("ip6tables -t nat -A INPUT")


def test_listing_layout_and_kilo_counters() -> None:
    rs = parse_save(RULES)
    text = render_listing(rs, "filter", "OUTPUT", verbose=True)
    assert text.splitlines()[0] == "Chain OUTPUT (policy ACCEPT 123K packets, 988M bytes)"
    assert text.splitlines()[1].startswith("num   pkts bytes target     prot opt in     out")
    user = render_listing(rs, "filter", "LOGDROP")
    assert user.startswith("Chain LOGDROP (2 references)\nnum  target     prot opt source")


def test_listing_view_numbers_rules_from_one() -> None:
    view = listing_view(parse_save(RULES), "filter", "INPUT")
    rows = view.chains[0].rules
    assert rows[0].number == 1 and rows[0].packets == 5
    assert rows[1].rule.startswith("-p tcp -m tcp --dport 22 -m comment")


def test_render_save_is_a_fixpoint() -> None:
    first = render_save(parse_save(RULES), counters=True)
    assert render_save(parse_save(first), counters=True) == first


def _lab() -> bool:
    return os.geteuid() == 0 and shutil.which("iptables-restore") is not None


@pytest.mark.lab
@pytest.mark.skipif(not _lab(), reason="needs root and iptables")
def test_save_and_listing_agree_with_the_kernel() -> None:
    from trustwall.lab.netns import Netns

    rs = parse_save(RULES)
    with Netns.create("fwrender") as ns:
        def run(argv: list[str], input: str | None = None) -> str:
            return subprocess.run(ns.argv(argv), input=input, capture_output=True, text=True,
                                  check=True, timeout=60).stdout

        run(["iptables-restore", "-c"], input=RULES)
        for table in ("raw", "mangle", "nat", "filter"):
            # table by table: the nft backend lists tables in its own order
            kernel = "".join(line + "\n" for line in
                             run(["iptables-save", "-c", "-t", table]).splitlines()
                             if not line.startswith("#"))
            assert kernel == render_save(rs, table=table, counters=True)
            for flags, kw in ((["-v", "-x"], {"verbose": True, "exact": True}),
                              (["-v"], {"verbose": True}), ([], {})):
                listed = run(["iptables", "-t", table, "-L", "-n", *flags, "--line-numbers"])
                assert listed == render_listing(rs, table, **kw), (table, flags)
        assert run(["iptables", "-L", "INPUT", "-n", "--line-numbers"]) == \
            render_listing(rs, "filter", "INPUT")


@pytest.mark.lab
@pytest.mark.skipif(not _lab(), reason="needs root and iptables")
def test_rendered_commands_recreate_the_rules() -> None:
    """Each `render_command` line, run by a shell, gives back the same iptables-save line."""
    from trustwall.lab.netns import Netns

    rs = parse_save(RULES)
    script = ["set -e", "iptables -N LOGDROP"]
    for table in rs.tables:
        for chain in table.chains:
            script += [render_command(r, table=table.name) for r in chain.rules]
    with Netns.create("fwcmd") as ns:
        subprocess.run(ns.argv(["sh", "-c", "\n".join(script)]), check=True, timeout=60,
                       capture_output=True)
        for table in rs.tables:
            saved = subprocess.run(ns.argv(["iptables-save", "-t", table.name]), check=True,
                                   capture_output=True, text=True).stdout
            kernel = [line for line in saved.splitlines() if line.startswith("-A ")]
            assert sorted(kernel) == sorted(render_rule(r) for r in table.rules)


def test_non_contiguous_masks_and_address_lists_read_as_the_kernel_keeps_them() -> None:
    """Masked address and dotted mask back, as iptables-save prints them (the kernel check is
    tests/conformance/test_fw_kernel_oracle.py::test_spellings_render_as_the_kernel_saves_them);
    an address list in a restore file is one rule per address, sources outermost."""
    text = ("*filter\n:INPUT ACCEPT [0:0]\n"
            "-A INPUT -s 10.11.12.13/255.0.255.0 -j DROP\n"
            "-A INPUT ! -d 2.3.4.5/255.255.0.255 -j DROP\n"
            "-A INPUT -s 10.0.0.0/255.255.255.0 -j DROP\n"
            "[3:4] -A INPUT -s 198.51.100.7,203.0.113.0/24 -d 192.0.2.1,192.0.2.2 -j ACCEPT\n"
            "COMMIT\n")
    assert [line for line in render_save(parse_save(text), counters=True).splitlines()
            if "-A " in line] == [
        "[0:0] -A INPUT -s 10.0.12.0/255.0.255.0 -j DROP",
        "[0:0] -A INPUT ! -d 2.3.0.5/255.255.0.255 -j DROP",
        "[0:0] -A INPUT -s 10.0.0.0/24 -j DROP",
        "[3:4] -A INPUT -s 198.51.100.7/32 -d 192.0.2.1/32 -j ACCEPT",
        "[3:4] -A INPUT -s 198.51.100.7/32 -d 192.0.2.2/32 -j ACCEPT",
        "[3:4] -A INPUT -s 203.0.113.0/24 -d 192.0.2.1/32 -j ACCEPT",
        "[3:4] -A INPUT -s 203.0.113.0/24 -d 192.0.2.2/32 -j ACCEPT",
    ]
    six = parse_save("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 2001:db8::1/ffff:ffff:0:ffff::"
                     "\nCOMMIT\n", family=6)
    assert "-A INPUT -s 2001:db8::/ffff:ffff:0:ffff::" in render_save(six)


@pytest.mark.parametrize(("typed", "saved"), [
    ('-m u32 --u32 "0>>22&0x3C@0>>16=0x50"', '-m u32 --u32 "0x0>>0x16&0x3c@0x0>>0x10=0x50"'),
    ("-m statistic --mode random --probability 0.1",
     "-m statistic --mode random --probability 0.10000000009"),
    ("-m pkttype --pkt-type host", "-m pkttype --pkt-type unicast"),
    ("-m limit --limit 3/hour --limit-burst 5", "-m limit --limit 3/hour"),
    ("-m limit", "-m limit --limit 3/hour"),
    ("-m limit --limit 60/min", "-m limit --limit 1/sec"),
    ("-m conntrack --ctstatus CONFIRMED,EXPECTED", "-m conntrack --ctstatus EXPECTED,CONFIRMED"),
    ("-m time --timestart 8:00", "-m time --timestart 08:00:00 --timestop 23:59:59 "
     "--datestop 2038-01-19T03:14:07"),
])
def test_values_render_as_the_kernel_stores_them(typed: str, saved: str) -> None:
    assert rule_spec(parse_rule_spec(typed, chain="INPUT")) == saved


def test_ipv6header_names_come_from_etc_protocols() -> None:
    rule = parse_rule_spec("-m ipv6header --header frag,hop,prot,60", chain="INPUT", family=6)
    assert rule_spec(rule) == "-m ipv6header --header hop-by-hop,ipv6-opts,ipv6-frag,protocol"


@pytest.mark.parametrize(("typed", "saved"), [
    ('-m string --hex-string "|41 42|" --algo bm', '-m string --string "AB" --algo bm'),
    ('-m string --hex-string "|0A|x" --algo bm', '-m string --hex-string "|0a78|" --algo bm'),
    ("-m hashlimit --hashlimit 10/min --hashlimit-name a",
     "-m hashlimit --hashlimit-upto 10/min --hashlimit-burst 5 --hashlimit-name a"),
    ("-m hashlimit --hashlimit-upto 60/min --hashlimit-name a",
     "-m hashlimit --hashlimit-upto 1/sec --hashlimit-burst 5 --hashlimit-name a "
     "--hashlimit-htable-expire 60000"),
])
def test_string_and_hashlimit_as_the_kernel_stores_them(typed: str, saved: str) -> None:
    assert rule_spec(parse_rule_spec(typed, chain="INPUT")) == saved


def test_inserted_address_lists_end_up_reversed_as_in_the_kernel() -> None:
    """``-I`` puts every expanded rule at the same place (checked in a namespace)."""
    text = ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 9.9.9.9\n"
            "-I INPUT 1 -s 1.1.1.1,2.2.2.2\nCOMMIT\n")
    assert [line for line in render_save(parse_save(text)).splitlines() if "-A" in line] == [
        "-A INPUT -s 2.2.2.2/32", "-A INPUT -s 1.1.1.1/32", "-A INPUT -s 9.9.9.9/32"]
