"""The shipped systemd units are valid (systemd-analyze is the oracle) and run `fw expire`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "contrib" / "systemd"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_units_verify_and_run_fw_expire(tmp_path):
    trustwall = Path(sys.executable).with_name("trustwall")
    for unit in ("trustwall-expire.service", "trustwall-expire.timer"):
        text = (UNITS / unit).read_text().replace("/usr/local/bin/trustwall", str(trustwall))
        (tmp_path / unit).write_text(text)
    service = (tmp_path / "trustwall-expire.service").read_text()
    assert f"ExecStart={trustwall} fw expire" in service
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no",
                           str(tmp_path / "trustwall-expire.timer"),
                           str(tmp_path / "trustwall-expire.service")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", proc.stderr
