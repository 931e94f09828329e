"""The command layer's contract: fast top-level help identical to click's, exit codes, errors."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from trustwall.cli import main as cli_main
from trustwall.errors import BadInput, EnvironmentMissing, ProblemFound, Unreachable

TRUSTWALL = [sys.executable, "-m", "trustwall"]


def click_help(columns: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
               ) -> str:
    from trustwall.cli.app import cli

    monkeypatch.setenv("COLUMNS", str(columns))
    with pytest.raises(SystemExit):
        cli.main(["--help"], prog_name="trustwall")
    return capsys.readouterr().out


@pytest.mark.parametrize("columns", [40, 60, 80, 200])
def test_fast_help_is_exactly_what_click_prints(columns, monkeypatch, capsys):
    expected = click_help(columns, monkeypatch, capsys)
    monkeypatch.setenv("COLUMNS", str(columns))
    assert cli_main.main(["--help"]) == 0
    assert capsys.readouterr().out == expected


def test_help_and_version_do_not_import_click():
    code = ("import sys; from trustwall.cli.main import main; main(['--help']); "
            "main(['--version']); sys.stderr.write(str('click' in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stderr == "False"
    assert "trustwall, version " in proc.stdout


def test_every_listed_command_has_help_text():
    for name, (target, help_text) in cli_main.COMMANDS.items():
        assert ":" in target, name
        assert help_text and len(help_text) < 70, name


def test_unknown_command_is_usage_error_exit_2():
    proc = subprocess.run([*TRUSTWALL, "no-such-command"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "No such command" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("error", "code"),
    [(BadInput("bad pem"), 2), (Unreachable("refused"), 3), (EnvironmentMissing("no root"), 3),
     (ProblemFound("untrusted"), 1), (RuntimeError("bug"), 70)],
)
def test_errors_map_to_exit_codes_and_one_line(error, code, monkeypatch, capsys):
    from trustwall.cli import app

    @click.command("boom")
    def boom() -> None:
        raise error

    monkeypatch.setitem(app.cli.commands, "boom", boom)
    assert cli_main.main(["boom"]) == code
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert str(error) in err
    assert "Traceback" not in err


def test_debug_shows_the_traceback(monkeypatch):
    from trustwall.cli import app

    @click.command("boom")
    def boom() -> None:
        raise BadInput("bad pem")

    monkeypatch.setitem(app.cli.commands, "boom", boom)
    with pytest.raises(BadInput):
        cli_main.main(["--debug", "boom"])


def test_ctx_exit_code_of_a_command_is_the_process_exit_code(monkeypatch):
    from trustwall.cli import app

    @click.command("findings")
    @click.pass_context
    def findings(ctx: click.Context) -> None:
        ctx.exit(1)

    monkeypatch.setitem(app.cli.commands, "findings", findings)
    assert cli_main.main(["findings"]) == 1


def test_every_public_name_resolves():
    import trustwall

    for name in dir(trustwall):
        if not name.startswith("_"):
            assert getattr(trustwall, name) is not None, name
    assert trustwall.Cert.__name__ == "Cert"
    assert callable(trustwall.apply_policy)
