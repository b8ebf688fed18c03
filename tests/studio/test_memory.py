"""Memory stays bounded on a long video: the benchmark script run small (the full 10,000-frame 1080p figure is
in benchmarks/results/document_memory.json)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_stepping_through_a_long_video_keeps_memory_bounded(tmp_path):
    out = tmp_path / "memory.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "document_memory.py"), "--frames", "1000",
                    "--size", "640x480", "--cache-mb", "16", "--mask-every", "4", "--proposal-every", "100",
                    "--workdir", str(tmp_path / "work"), "--out", str(out)],
                   check=True, cwd=ROOT, capture_output=True)
    results = json.loads(out.read_text())["results"]
    assert results["all_frames_decoded_would_be_mb"] > 800
    assert results["frame_cache_mb"] <= 16
    assert results["mask_store_bytes_mb"] < 2  # 250 masks of 640x480, compressed
    growth = results["rss_peak_mb"] - results["rss_after_open_mb"]
    assert growth < 120, results  # cache budget + working buffers, nowhere near the 880 MB of decoded frames
