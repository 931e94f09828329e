"""What every command shares (issue 17): one confirmation behaviour, findings that are not
errors, typo suggestions in every group, -V, shell completion and a generated man page.

Commands run as real processes; the only store written is a bundle file in a scratch directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from trustwall.certs.model import pem_encode
from trustwall.certs.synth import cn, make_cert, new_key

TRUSTWALL = [sys.executable, "-m", "trustwall"]
ENV = {"PATH": os.environ["PATH"], "HOME": "/root", "NO_COLOR": "1", "COLUMNS": "80",
       **{k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}}  # the code under test


def tw(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*TRUSTWALL, *args], capture_output=True, text=True, env=ENV,
                          stdin=subprocess.DEVNULL, **kw)


@pytest.fixture
def image(tmp_path):
    """One empty bundle store in a scratch directory (named by its full path: a KIND:PATH
    store is not looked up under --root), and a CA certificate to trust."""
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("")
    ca = tmp_path / "ca.pem"
    ca.write_text(pem_encode(make_cert(cn("Confirm Test Root"), key=new_key())))
    args = ["ca", "install", str(ca), "--store", f"bundle:{bundle}", "--state-dir",
            str(tmp_path / "state")]
    return bundle, args


def test_without_a_terminal_and_without_yes_the_refusal_is_one_line_naming_yes(image):
    bundle, args = image
    proc = tw(*args)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("trustwall:")]
    assert len(errors) == 1 and "--yes" in errors[0] and "refusing" in errors[0]
    assert bundle.read_text() == ""
    assert tw(*args, "-y").returncode == 0  # the short form everywhere
    assert "BEGIN CERTIFICATE" in bundle.read_text()


def run_on_a_terminal(args: list[str], answer: str) -> tuple[int, str]:
    """Run with a pseudo-terminal as stdin; answer the question; return (code, stderr)."""
    main, secondary = os.openpty()
    try:
        proc = subprocess.Popen([*TRUSTWALL, *args], stdin=secondary, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=ENV)
        os.write(main, answer.encode() + b"\n")
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(main)
        os.close(secondary)
    return proc.returncode, out + err


def test_on_a_terminal_one_clear_question_and_no_means_nothing_changes(image):
    bundle, args = image
    code, text = run_on_a_terminal(args, "n")
    assert code == 2
    assert text.count("[y/N]") == 1 and "Trust 1 certificate(s) in: bundle?" in text
    assert "Dry run" not in text
    assert bundle.read_text() == ""
    code, text = run_on_a_terminal(args, "y")
    assert code == 0, text
    assert "BEGIN CERTIFICATE" in bundle.read_text()


@pytest.mark.parametrize("command", [["fw", "allow"], ["fw", "deny"], ["fw", "reject"],
                                     ["fw", "delete"], ["fw", "apply"], ["ca", "install"],
                                     ["fix"]])
def test_every_command_that_asks_takes_y_and_yes(command):
    from click.testing import CliRunner

    from trustwall.cli.app import cli

    text = CliRunner().invoke(cli, [*command, "--help"], terminal_width=200).output
    assert "-y, --yes" in text, text


def test_findings_are_not_printed_as_errors():
    proc = tw("explain", "hello")
    assert proc.returncode == 1
    assert "error" not in proc.stderr
    assert proc.stderr.strip() == "trustwall: the text was not recognised"


@pytest.mark.parametrize(("typo", "meant"), [(["prob"], "probe"), (["fw", "alow"], "allow"),
                                             (["fw", "shwo"], "show"), (["ca", "instal"],
                                                                        "install"),
                                             (["cert", "shw"], "show"), (["lab", "stauts"],
                                                                         "status")])
def test_typos_get_a_suggestion_in_every_group(typo, meant):
    proc = tw(*typo)
    assert proc.returncode == 2
    assert "Did you mean" in proc.stderr and f"'{meant}'" in proc.stderr


def test_short_version_option():
    from trustwall import __version__

    for flag in ("-V", "--version"):
        proc = tw(flag)
        assert proc.returncode == 0 and proc.stdout.strip() == f"trustwall, version {__version__}"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_for_each_shell(shell):
    proc = tw("completion", shell)
    assert proc.returncode == 0
    assert "_TRUSTWALL_COMPLETE" in proc.stdout


def test_completion_completes_lazy_commands_and_subcommands():
    env = {**ENV, "_TRUSTWALL_COMPLETE": "bash_complete", "COMP_WORDS": "trustwall fw al",
           "COMP_CWORD": "2"}
    proc = subprocess.run(TRUSTWALL, capture_output=True, text=True, env=env)
    assert proc.stdout.split() == ["plain,allow"]


def test_man_page_is_generated_from_every_command_and_renders():
    from trustwall.cli.fw import FW_COMMANDS
    from trustwall.cli.main import COMMANDS

    proc = tw("man")
    assert proc.returncode == 0
    page = proc.stdout
    assert page.startswith(".TH TRUSTWALL 1")
    for name in COMMANDS:
        assert f'.SS "trustwall {name}"' in page, name
    for name in FW_COMMANDS:
        assert f'.SS "trustwall fw {name}"' in page, name
    assert "--dport" in page and "--yes" in page
    if shutil.which("man"):
        shown = subprocess.run(["man", "-l", "-"], input=page, capture_output=True, text=True,
                               env={**ENV, "MANWIDTH": "80", "MAN_KEEP_FORMATTING": ""})
        assert shown.returncode == 0 and "trustwall fw allow" in shown.stdout


def in_process(capsys, *args: str) -> tuple[int, str, str]:
    """Run the CLI in this process (no interpreter start-up): exit code, stdout, stderr."""
    from trustwall.cli.main import main

    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


RULES = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
         "-A INPUT -i lo -j ACCEPT\n-A INPUT -j REJECT\nCOMMIT\n")


@pytest.fixture
def rules(tmp_path):
    path = tmp_path / "rules.v4"
    path.write_text(RULES)
    return str(path)


@pytest.mark.parametrize(("args", "command"), [
    (["--dport", "18745/tcp"], "-p tcp -m tcp --dport 18745"),
    (["--dport", "18745"], "-p tcp -m tcp --dport 18745"),  # a port alone means tcp
    (["--dport", "ssh"], "-p tcp -m tcp --dport 22"),
    (["-p", "udp", "--dport", "domain"], "-p udp -m udp --dport 53"),
    (["--dport", "53/udp", "-s", "10.0.0.0/8", "-d", "192.0.2.1", "-i", "eth0"],
     "-s 10.0.0.0/8 -d 192.0.2.1/32 -i eth0 -p udp -m udp --dport 53"),
    (["--sport", "1024:65535/tcp", "-o", "eth1", "--chain", "OUTPUT"],
     "-o eth1 -p tcp -m tcp --sport 1024:65535"),
])
def test_rule_commands_take_the_same_packet_spelling(rules, args, command, capsys):
    code, out, err = in_process(capsys, "fw", "deny", "-f", rules, *args, "--plan")
    assert code == 0, err
    assert f"{command} -j DROP" in out, out
    # allow and reject read the same options; where the ruleset already gives that verdict
    # they have nothing to add.
    for verb, target in (("allow", "ACCEPT"), ("reject", "REJECT")):
        code, out, err = in_process(capsys, "fw", verb, "-f", rules, *args, "--plan")
        assert code == 0, err
        assert "# nothing to do" in out or f"{command} -j {target}" in out


def test_a_port_protocol_that_contradicts_p_is_refused(rules, capsys):
    code, _, err = in_process(capsys, "fw", "allow", "-f", rules, "-p", "tcp", "--dport",
                              "53/udp", "--plan")
    assert code == 2 and "says udp but -p says tcp" in err


@pytest.mark.parametrize(("args", "packet"), [
    (["--dport", "ssh"], "tcp 10.0.0.1 -> 10.0.0.2:22"),
    (["--dport", "53/udp"], "udp 10.0.0.1 -> 10.0.0.2:53"),
    (["-p", "udp", "--sport", "domain", "--dport", "1024"], "udp 10.0.0.1:53 -> 10.0.0.2:1024"),
])
def test_trace_takes_the_same_packet_spelling(rules, args, packet, capsys):
    code, out, err = in_process(capsys, "fw", "trace", "-f", rules, "-s", "10.0.0.1", "-d",
                                "10.0.0.2", "-i", "eth0", *args)
    assert code == 0, err
    assert f"Packet  {packet}, NEW, in eth0" in out
    assert "exit status" not in out + err


@pytest.mark.parametrize("port", ["53/icmp", "no-such-service", "18745/"])
def test_why_in_refuses_a_port_it_cannot_check(port, capsys):
    code, _, err = in_process(capsys, "why-in", port)
    assert code == 2 and "Traceback" not in err and "internal error" not in err


def leaf_commands():
    import click

    from trustwall.cli.app import cli

    def walk(group, ctx, path):
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            sub = click.Context(command, info_name=name, parent=ctx)
            if isinstance(command, click.Group):
                yield from walk(command, sub, [*path, name])
            else:
                yield [*path, name], command

    return list(walk(cli, click.Context(cli, info_name="trustwall"), []))


def test_global_json_is_honoured_or_refused_never_ignored(rules):
    without = [path for path, command in leaf_commands()
               if not any(p.name == "as_json" for p in command.params)]
    assert ["fw", "save"] in without
    for path in without:
        proc = tw("--json", *path, "--help")
        assert proc.returncode == 2 and "has no JSON output" in proc.stderr, path
    proc = tw("--json", "fw", "save", "-f", rules)
    assert proc.returncode == 2 and proc.stdout == ""


def test_one_state_dir_option_everywhere(tmp_path):
    found = {}
    for path, command in leaf_commands():
        for param in command.params:
            if "--state-dir" in param.opts:
                found[" ".join(path)] = (param.envvar, param.default, param.help,
                                         type(param.type), param.callback)
    assert {"ca install", "ca remove", "fix", "log", "undo", "fw apply", "fw allow",
            "fw confirm", "fw expire"} <= set(found)
    assert len(set(found.values())) == 1, found
    assert next(iter(found.values()))[0] == "TRUSTWALL_STATE_DIR"


def test_state_dir_is_made_absolute_but_a_symlink_is_not_followed(tmp_path, monkeypatch):
    from trustwall.cli.options import state_dir_option

    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    monkeypatch.chdir(tmp_path)
    seen = []

    import click
    from click.testing import CliRunner

    @click.command()
    @state_dir_option
    def probe_dir(state_dir):
        seen.append(state_dir)

    for given in ("link", "./sub/../link"):
        assert CliRunner().invoke(probe_dir, ["--state-dir", given]).exit_code == 0
    assert seen == [str(tmp_path / "link")] * 2


def test_verify_sends_the_clients_through_proxy():
    """curl is sent to a proxy port nothing listens on (loopback): its error names that port,
    not the target's."""
    import socket

    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        target, proxy = a.getsockname()[1], b.getsockname()[1]
        proc = tw("verify", f"https://127.0.0.1:{target}/", "--proxy",
                  f"http://127.0.0.1:{proxy}", "--clients", "curl", "--timeout", "5")
    assert proc.returncode == 1
    assert f"port {proxy}" in proc.stdout, proc.stdout
    assert "--proxy" in tw("verify", "--help").stdout


def test_journal_reads_one_line_per_change_and_one_hash_length(image, tmp_path):
    import re

    bundle, args = image
    assert tw(*args, "--yes").returncode == 0
    state = ["--state-dir", str(tmp_path / "state")]
    log = tw("log", *state)
    assert log.returncode == 0
    lines = log.stdout.splitlines()
    assert len(lines) == 1 and "ca-install: trust CN=Confirm Test Root" in lines[0]
    verbose = tw("log", "-v", *state).stdout
    assert str(bundle) in verbose
    verified = tw("log", "--verify", *state)
    assert verified.returncode == 0
    assert verified.stdout.splitlines() == ["audit log intact (1 records, chain ok)"]
    undone = tw("undo", *state)
    assert undone.returncode == 0, undone.stderr
    assert "undid #1: trust CN=Confirm Test Root" in undone.stdout
    assert bundle.read_text() == ""
    for text in (verbose, undone.stdout, tw("log", "-v", *state).stdout):
        assert not re.search(r"[0-9a-f]{13,}", text), text  # 12 hex digits, everywhere
    assert re.search(r"\b[0-9a-f]{12}\b", undone.stdout)
