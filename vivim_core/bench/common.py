"""Timing, environment capture and table printing shared by the benchmark suites."""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

import torch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gpu_ms_per_call(fn: Callable[[], object], calls: int = 20) -> float:
    """GPU time per call in ms: CUDA events around `calls` back-to-back calls, queued without a sync in between,
    so host-side launch overhead overlaps the GPU work (time_call's per-call sync exposes it)."""
    fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(calls):
        fn()
    stop.record()
    stop.synchronize()
    return start.elapsed_time(stop) / calls


def host_us_per_call(fn: Callable[[], object], calls: int = 20) -> float:
    """Host time per call in microseconds: `calls` calls queued without a sync (the GPU drains afterwards). Where it
    exceeds the kernels' GPU time, back-to-back timing (`gpu_ms_per_call`) measures the host, not the kernels."""
    fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    elapsed = time.perf_counter() - start
    torch.cuda.synchronize()
    return elapsed / calls * 1e6


def gpu_ms_graphed(fn: Callable[[], object], calls: int = 20, replays: int = 3) -> float:
    """GPU time per call in ms with the host out of the picture: `calls` calls captured in one CUDA graph, each
    replay timed between CUDA events, the median of `replays`. Back-to-back timing (`gpu_ms_per_call`) reads the
    host instead where a call's Python and launch overhead exceeds its kernels' time (a 0.17 ms kernel behind
    ~0.2 ms of host work); this reads what the kernels take, as they run inside the compiled model's graphs."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm up (compile, allocate) outside the capture, as CUDA graphs require
        fn()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            fn()
    graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(replays):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) / calls)
    del graph
    return statistics.median(times)


def time_call(fn: Callable[[], object], device: torch.device, warmup: int = 3, repeats: int = 10,
              min_seconds: float = 0.0) -> dict:
    """Median/min wall time of fn() in ms after `warmup` calls, device-synchronised around each call."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    start_all = time.perf_counter()
    while len(times) < repeats or (time.perf_counter() - start_all) < min_seconds:
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1000.0)
        if len(times) >= 10 * repeats:
            break
    return {"median_ms": statistics.median(times), "min_ms": min(times), "repeats": len(times)}


def environment(device: torch.device) -> dict:
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    cuda=torch.version.cuda, multiprocessors=props.multi_processor_count)
        try:
            import triton

            info["triton"] = triton.__version__
        except ImportError:
            pass
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def print_table(title: str, rows: list[dict], columns: Iterable[str]) -> None:
    columns = list(columns)
    cells = [[_fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    print(f"\n{title}")
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))


def _fmt(value) -> str:
    if isinstance(value, float):
        if value == 0 or 0.01 <= abs(value) < 1e5:
            return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
        return f"{value:.2e}"
    return str(value)


def write_report(path: str | os.PathLike, report: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return path
