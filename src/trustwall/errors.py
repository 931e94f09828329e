"""One exception hierarchy for the whole tool; the CLI maps each class to an exit code.

Exit codes (the contract scripts rely on):
  0  ok
  1  a problem was found (a diagnosis: untrusted chain, lint findings, rulesets differ)
  2  bad input or usage (malformed certificate, broken policy file, unknown option)
  3  cannot reach / environment missing (unreachable host, not root, missing tool)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3


class TrustwallError(Exception):
    """Base of every error trustwall raises on purpose. ``str(err)`` is the one-line message."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class BadInput(TrustwallError):
    """The user gave us something we cannot use: a malformed file, a wrong option value."""

    exit_code = EXIT_BAD_INPUT


class ParseError(BadInput):
    """Text that does not parse; carries where (file, line, token) so the message can say so."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        token: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = ""
        if source is not None:
            where += f"{source}:"
        if line is not None:
            where += f"{line}:"
        if where:
            message = f"{where} {message}"
        if token is not None:
            message = f"{message} (at {token!r})"
        super().__init__(message, hint=hint)
        self.source = source
        self.line = line
        self.token = token


class Unreachable(TrustwallError):
    """A network endpoint could not be reached (DNS, refused, timeout, proxy refusal)."""

    exit_code = EXIT_UNREACHABLE


class EnvironmentMissing(TrustwallError):
    """Something the host must provide is absent: root, a program, a kernel feature."""

    exit_code = EXIT_UNREACHABLE


class StoreError(TrustwallError):
    """A trust store could not be read or changed as asked."""

    exit_code = EXIT_BAD_INPUT


class LockoutRisk(TrustwallError):
    """A firewall change would cut the operator's own connection; refused unless forced."""

    exit_code = EXIT_PROBLEM


class ProblemFound(TrustwallError):
    """Not a failure of trustwall: the diagnosis itself is bad news (exit 1)."""

    exit_code = EXIT_PROBLEM
