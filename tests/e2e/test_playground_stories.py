"""The README's two stories, walked in the playground exactly as written: every line of the
``playground-stories`` block is run and must end with the exit status it states. Getting out:
verify fails -> fix (with the CA from IT) -> verify passes -> undo -> verify fails again.
Letting in: connect fails -> fw allow --apply -> connect works -> undo -> connect fails again.
Nothing of it may reach this host (the suite's fingerprint checks the stores and firewall)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")]

README = Path(__file__).resolve().parents[2] / "README.md"
TRUSTWALL = [sys.executable, "-m", "trustwall"]
_LINE = re.compile(r"^(?P<command>.*?)\s+# exit (?P<status>\d+)$")


def readme_story_lines() -> list[str]:
    """The lines of the fenced block after the ``playground-stories`` marker."""
    text = README.read_text()
    block = text.split("<!-- playground-stories -->", 1)[1].split("```sh\n", 1)[1]
    return [line for line in block.split("```", 1)[0].splitlines()
            if line.strip() and not line.startswith("#")]


def _argv(command: str, lab_id: str) -> list[str]:
    words = shlex.split(command.removeprefix("sudo "))
    assert words[0] == "trustwall", command
    if words[1:3] == ["lab", "exec"]:  # other labs may be up on this machine: name ours
        words[3:3] = ["--lab", lab_id]
    return [*TRUSTWALL, *words[1:]]


def test_readme_stories_run_as_written_in_the_playground() -> None:
    lines = readme_story_lines()
    assert lines[0] == "sudo trustwall lab up" and lines[-1] == "sudo trustwall lab down"
    steps = [_LINE.match(line) for line in lines[1:-1]]
    assert all(steps), [line for line, m in zip(lines[1:-1], steps, strict=True) if not m]
    up = subprocess.run([*TRUSTWALL, "lab", "up", "--json"], capture_output=True, text=True,
                        timeout=120)
    assert up.returncode == 0, up.stderr
    lab_id = json.loads(up.stdout)["id"]
    try:
        transcript = []
        for step in steps:
            assert step is not None
            proc = subprocess.run(_argv(step["command"], lab_id), capture_output=True,
                                  text=True, timeout=300, stdin=subprocess.DEVNULL)
            transcript.append(f"$ {step['command']}  -> {proc.returncode}\n"
                              f"{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
            assert proc.returncode == int(step["status"]), "\n".join(transcript)
            if "trustwall probe" in step["command"] or "trustwall why-in" in step["command"]:
                # probe and why agree, and why-in hands over to trustwall's own command.
                assert ("next:\nsudo trustwall fix https://good.lab.test" in proc.stdout
                        if "probe" in step["command"] else
                        "next: sudo trustwall fw allow -p tcp --dport 18745 --apply"
                        in proc.stdout), proc.stdout
    finally:
        down = subprocess.run([*TRUSTWALL, "lab", "down", "--id", lab_id], capture_output=True,
                              text=True, timeout=120)
    assert down.returncode == 0 and lab_id in down.stdout, down.stderr


def test_lab_up_chain_leaf_root_lets_ca_fetch_find_the_root_and_nothing_stays_behind(
        tmp_path: Path) -> None:
    up = subprocess.run([*TRUSTWALL, "lab", "up", "--chain", "leaf+root", "--json"],
                        capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stderr
    state = json.loads(up.stdout)
    assert state["chain"] == "leaf+root" and set(state["playground"]) == {"client", "server"}
    try:
        fetched = subprocess.run(
            [*TRUSTWALL, "lab", "exec", "--lab", state["id"], "client", "--", "trustwall", "ca",
             "fetch", "https://good.lab.test/", "-o", "ca.pem", "--json"],
            capture_output=True, text=True, timeout=120)
        assert fetched.returncode == 0, fetched.stderr
        assert json.loads(fetched.stdout)["root_found"] is True
        home = Path(state["playground"]["client"]["home"])
        assert b"BEGIN CERTIFICATE" in (home / "ca.pem").read_bytes()
        wrong = subprocess.run([*TRUSTWALL, "lab", "exec", "--lab", state["id"], "router",
                                "--", "true"], capture_output=True, text=True, timeout=60)
        assert wrong.returncode == 2
    finally:
        subprocess.run([*TRUSTWALL, "lab", "down", "--id", state["id"]], capture_output=True,
                       timeout=120, check=True)
    assert not Path(state["playground"]["client"]["root"]).exists()
