"""`vivim-core info` as a user runs it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vivim_core", *args], capture_output=True, text=True)


def test_info_json_lists_backends_and_variant_parameter_count():
    result = run_cli("info", "--json", "--variant", "vivim-b3")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["chosen_scan_backend"]["cpu"] == ("numba" if importlib.util.find_spec("numba") else "chunked")
    assert info["scan_backends"]["reference"]["available"]
    assert info["variant"]["name"] == "vivim-b3"
    assert 55e6 < info["variant"]["parameters"] < 65e6
    assert {"vivim-tiny", "vivim-b3"} <= set(info["variants"])


def test_info_text_and_unknown_variant_error():
    ok = run_cli("info", "--variant", "vivim-tiny")
    assert ok.returncode == 0 and "parameters" in ok.stdout and "cpu -> " in ok.stdout
    bad = run_cli("info", "--variant", "vivim-giant")
    assert bad.returncode == 2
    assert "unknown variant 'vivim-giant'" in bad.stderr and "Traceback" not in bad.stderr
