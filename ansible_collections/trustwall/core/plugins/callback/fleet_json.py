# ruff: noqa: E402  (Ansible: DOCUMENTATION comes before the imports)
"""Stdout callback trustwall.core.fleet_json: one JSON document for the whole run.

ansible-core ships no JSON stdout callback (it lives in ansible.posix); this small one gives
CI jobs and tests each task's result per host and the recap, in the same shape:
``{"plays": [{"play": {"name"}, "tasks": [{"task": {"name"}, "hosts": {host: result}}]}],
"stats": ...}``; each result carries ``seconds`` since its task started (wall time).
Recap shape: ``
"stats": {host: {"ok", "changed", "failures", "unreachable", "skipped"}}}``.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_json
type: stdout
short_description: The whole run as one JSON document (tasks per host, recap)
description:
  - Set ANSIBLE_STDOUT_CALLBACK=trustwall.core.fleet_json.
"""

import json
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "trustwall.core.fleet_json"

    def __init__(self):
        super().__init__()
        self.plays = []

    def v2_playbook_on_play_start(self, play):
        self.plays.append({"play": {"name": play.get_name()}, "tasks": []})

    def v2_playbook_on_task_start(self, task, is_conditional):
        self.plays[-1]["tasks"].append({"task": {"name": task.get_name(),
                                                  "started": time.monotonic()}, "hosts": {}})

    def _record(self, result, **flags):
        data = dict(result._result)
        data.update(flags)
        task = self.plays[-1]["tasks"][-1]["task"]
        data["seconds"] = round(time.monotonic() - task["started"], 3)  # since the task began
        self.plays[-1]["tasks"][-1]["hosts"][result._host.get_name()] = data

    def v2_runner_on_ok(self, result, **kwargs):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False, **kwargs):
        self._record(result, failed=True)

    def v2_runner_on_unreachable(self, result, **kwargs):
        self._record(result, unreachable=True)

    def v2_runner_on_skipped(self, result, **kwargs):
        self._record(result, skipped=True)

    def v2_playbook_on_stats(self, stats):
        recap = {host: stats.summarize(host) for host in sorted(stats.processed)}
        self._display.display(json.dumps({"plays": self.plays, "stats": recap}, default=str))
