"""`trustwall lab up|down|status|exec|shell|demo`: the lab from the command line (parse, call,
render)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import click

from trustwall.cli.lazy import JsonCheckedGroup
from trustwall.cli.output import (
    console,
    emit,
    json_option,
    json_wanted,
    print_command,
    print_table,
    styled,
)


@dataclass(frozen=True)
class DownResult:
    removed: tuple[str, ...]


@dataclass(frozen=True)
class StatusResult:
    labs: tuple[Any, ...]


@click.group(cls=JsonCheckedGroup)
def lab() -> None:
    """Build, inspect and tear down the lab (network namespaces; needs root); run the demo."""


@lab.command()
@click.option("--chain", type=click.Choice(["leaf", "leaf+root", "leaf+intermediate"]),
              default="leaf", show_default=True,
              help="What the inspection proxy presents: its forged leaf only (like most "
                   "appliances), with its root, or with an issuing CA.")
@json_option
def up(chain: str, as_json: bool) -> None:
    """Build a lab that stays up until `trustwall lab down`, with a playground: `trustwall lab
    exec client|server -- CMD` runs any command there, on sandboxed stores and the lab's own
    firewall, never on this host."""
    from trustwall.lab.proxy import ChainMode
    from trustwall.lab.topology import start_held_lab

    emit(start_held_lab(chain=ChainMode(chain)), _render_up)


_PLAYGROUND_HELP = ("Runs on the lab's ROLE host (client or server): its network namespace "
                    "and firewall, a private copy of every trust store and of the journal "
                    "(TRUSTWALL_STATE_DIR); nothing persists on this host.")


@lab.command("exec", context_settings={"ignore_unknown_options": True,
                                       "allow_interspersed_args": False})
@click.option("--lab", "lab_id", metavar="ID", help="Which lab, when several are up.")
@click.argument("role", type=click.Choice(["client", "server"]))
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(lab_id: str | None, role: str, command: tuple[str, ...]) -> None:
    """Run COMMAND on the playground's ROLE host; exit with its exit status."""
    from trustwall.lab.playground import run_in_playground

    argv = list(command[1:] if command[:1] == ("--",) else command)
    raise click.exceptions.Exit(run_in_playground(role, argv, lab_id=lab_id).returncode)


exec_.help = f"{exec_.help} {_PLAYGROUND_HELP}"


@lab.command()
@click.option("--lab", "lab_id", metavar="ID", help="Which lab, when several are up.")
@click.argument("role", type=click.Choice(["client", "server"]))
def shell(lab_id: str | None, role: str) -> None:
    """An interactive shell on the playground's ROLE host (exit to leave)."""
    from trustwall.lab.playground import shell as enter

    enter(role, lab_id=lab_id)


shell.help = f"{shell.help} {_PLAYGROUND_HELP}"


@lab.command()
@click.option("--id", "ids", multiple=True, metavar="LAB",
              help="Only this lab (repeatable), whoever owns it.")
@click.option("--stale", is_flag=True, help="Only labs whose owner process is gone.")
@click.option("--all", "all_of_them", is_flag=True,
              help="Also labs owned by running processes (e.g. a test session).")
@json_option
def down(ids: tuple[str, ...], stale: bool, all_of_them: bool, as_json: bool) -> None:
    """Tear down labs from `lab up` and any left by killed processes (by recorded PID and
    namespace name only)."""
    from trustwall.lab.netns import require_root
    from trustwall.lab.topology import cleanup_labs

    require_root()
    removed = cleanup_labs(all_of_them=all_of_them, kinds=() if stale else ("up",), ids=ids)
    emit(DownResult(tuple(removed)), _render_down)


@lab.command()
@json_option
def status(as_json: bool) -> None:
    """Show recorded labs and whether their namespaces and processes are really there."""
    from trustwall.lab.topology import lab_status

    emit(StatusResult(tuple(lab_status())), _render_status)


@lab.command()
@json_option
def demo(as_json: bool) -> None:
    """The guided story: interception breaks every client; a firewall hides the JMX port."""
    from trustwall.lab.demo import run_demo

    if json_wanted():
        emit(run_demo(), lambda _r: None)
        return
    renderer = _DemoRenderer(console())
    report = run_demo(on_step=renderer.step, on_progress=renderer.progress)
    renderer.finish(report)


def _render_up(state: Any) -> None:
    out = console()
    out.print(styled(("lab up", "bold green"), f" {state.id} in {state.startup_seconds:.2f} s "
                     f"(held by pid {state.owner_pid})"), soft_wrap=True)
    for role, name in state.namespaces.items():
        out.print(f"  {role:<7} ip netns exec {name} …")
    out.print(f"  proxy   https_proxy={state.proxy_url}")
    out.print(f"  CA files {state.workdir}/ca/")
    out.print(f"  hosts   {state.workdir}/hosts")
    out.print(f"  proxy presents: {state.chain}")
    out.print("  try anything:  trustwall lab exec client -- trustwall verify "
              "https://good.lab.test/", soft_wrap=True)
    out.print("                 trustwall lab shell server", soft_wrap=True)
    out.print("  tear down with: trustwall lab down")


def _render_down(result: DownResult) -> None:
    out = console()
    if not result.removed:
        out.print("no lab to tear down")
    for lab_id in result.removed:
        out.print(styled(("removed", "green"), f" {lab_id}"))


def _render_status(result: StatusResult) -> None:
    out = console()
    if not result.labs:
        out.print("no lab recorded (start one with: trustwall lab up)")
        return
    rows = []
    for entry in result.labs:
        state = entry.state
        present = sum(entry.namespaces_present.values())
        alive = sum(entry.processes_alive.values())
        rows.append([state.id, styled(("up", "green")) if entry.healthy else
                     styled(("broken", "red"), " (trustwall lab down)"), state.kind,
                     f"{state.owner_pid}" + ("" if entry.owner_alive else " (dead)"),
                     f"{present}/{len(entry.namespaces_present)}",
                     f"{alive}/{len(entry.processes_alive)}", state.proxy_url])
    # The state comes second: at 60 columns it must not be the column that is dropped.
    print_table(out, ["lab", "state", "kind", "owner", "netns", "procs", "proxy"], rows)


class _DemoRenderer:
    """Draws the demo as a story: a panel per step, a spinner while the lab works."""

    _STYLE: ClassVar[dict[str, str]] = {"OK": "bold green", "FAIL": "bold red", "INFO": "cyan"}

    def __init__(self, out: Any) -> None:
        self.out = out
        self.number = 0
        self.chapter = ""
        self.status: Any = None

    def progress(self, message: str) -> None:
        if self.status is None:
            self.status = self.out.status(message)
            self.status.start()
        else:
            self.status.update(message)

    def _pause_status(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def step(self, step: Any) -> None:
        self._pause_status()
        if step.chapter != self.chapter:
            self.chapter = step.chapter
            self.out.rule(styled((step.chapter, "bold")))
        self.number += 1
        # No box around a step: a command copied from inside one picks up its border.
        self.out.print(styled((f"{self.number}. {step.title}", "bold"),
                              (f"  ({step.seconds:.1f} s)", "dim")), soft_wrap=True)
        self.out.print(styled(f"  {step.story}"))
        print_command(self.out, f"$ {step.command}")
        print_table(self.out, ["", "verdict", "detail"],
                    [[row.subject, styled((row.verdict, self._STYLE.get(row.verdict, ""))),
                      row.detail] for row in step.rows], header=False)

    def finish(self, report: Any) -> None:
        self._pause_status()
        verdict = ("nothing left behind", "green") if not report.left_behind else (
            f"left behind: {', '.join(report.left_behind)}", "red")
        self.out.print(styled(f"lab start-up {report.startup_seconds:.2f} s · demo "
                              f"{report.total_seconds:.1f} s · ", verdict), soft_wrap=True)
