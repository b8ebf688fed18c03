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


def test_benchmark_scan_suite_writes_a_table_and_json(tmp_path):
    """The scan suite on the CPU at a tiny shape: every CPU backend timed against the reference, table and JSON."""
    out = tmp_path / "scan.json"
    result = run_cli("benchmark", "--suite", "scan", "--device", "cpu", "--scan-shape", "1,8,64,4", "--no-backward",
                     "--reference-repeats", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "selective scan" in result.stdout and "x_vs_reference" in result.stdout
    report = json.loads(out.read_text())
    rows = {row["backend"]: row for row in report["results"]["scan"]}
    assert list(rows)[0] == "reference" and "triton" not in rows  # reference timed first; no GPU kernels on a CPU
    assert rows["reference"]["x_vs_reference"] == 1.0
    assert rows["chunked"]["fwd_ms"] > 0 and rows["chunked"]["x_vs_reference"] > 0
    assert report["environment"]["device"] == "cpu"
