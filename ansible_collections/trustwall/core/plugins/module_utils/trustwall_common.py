"""Shared by the trustwall.core modules: import trustwall on the managed host, turn its typed
results into Ansible return values and its errors into ``fail_json``.

The modules run under the managed host's Python; trustwall must be importable there (set
``ansible_python_interpreter`` to the interpreter of trustwall's virtualenv).
"""

from __future__ import annotations

import sys
import traceback


def require_trustwall(module):
    """Fail the task with a clear message when trustwall is not importable."""
    try:
        import trustwall  # noqa: F401
    except ImportError:
        module.fail_json(msg=f"trustwall is not importable by {sys.executable}; set "
                             "ansible_python_interpreter to the python of trustwall's venv",
                         exception=traceback.format_exc())


def jsonable(value):
    from trustwall.jsonable import to_jsonable

    return to_jsonable(value)


def fail(module, exc, **extra):
    """``fail_json`` for a TrustwallError: its one-line message, hint and kind."""
    module.fail_json(msg=str(exc), hint=getattr(exc, "hint", None),
                     error=type(exc).__name__, **extra)


def text_diff(before, after, prepared):
    """Ansible's diff value: before/after text plus trustwall's semantic diff lines."""
    return {"before": before, "after": after, "prepared": "\n".join(prepared) + "\n"}
