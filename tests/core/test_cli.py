"""`vivim-core info` as a user runs it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys


CPU_SCAN = "numba" if importlib.util.find_spec("numba") else "chunked"


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
    """The scan suite on the CPU at tiny settings: the model's own scan calls at each stage (inference and
    training), then every CPU backend timed against the reference; tables and JSON."""
    out = tmp_path / "scan.json"
    result = run_cli("benchmark", "--suite", "scan", "--device", "cpu", "--scan-variant", "vivim-tiny",
                     "--scan-batch", "1", "--size", "32", "--clip-length", "2", "--scan-shape", "1,8,64,4",
                     "--reference-repeats", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "vivim-tiny's calls" in result.stdout and "backends at one shape" in result.stdout
    assert "x_vs_reference" in result.stdout
    report = json.loads(out.read_text())
    model_rows = report["results"]["scan_model"]
    assert [(row["stage"], row["call"]) for row in model_rows] == [
        (stage, call) for stage in (1, 2, 3, 4) for call in ("inference", "train fwd+bwd")]
    first = model_rows[0]  # stage 1 of vivim-tiny: d_inner 64 in 3 branches, 2 frames of 8x8 tokens
    assert first["shape"] == "b1 d192 L128 N16 G3" and first["layout"] == "channels" and first["gate"] == "after"
    assert first["kernel"] == CPU_SCAN and first["fwd_ms"] > 0 and model_rows[1]["fwd_bwd_ms"] > 0
    assert model_rows[1]["gate"] == "in scan" and model_rows[1]["MB"] > first["MB"]
    rows = {row["backend"]: row for row in report["results"]["scan"]}
    assert list(rows)[0] == "reference" and "triton" not in rows  # reference timed first; no GPU kernels on a CPU
    assert rows["reference"]["x_vs_reference"] == 1.0
    assert rows["chunked"]["fwd_ms"] > 0 and rows["chunked"]["x_vs_reference"] > 0
    assert rows["chunked"]["fwd_bwd_ms"] > 0
    assert report["environment"]["device"] == "cpu"
