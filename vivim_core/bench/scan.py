"""Selective-scan kernels side by side at one shape: time, achieved bandwidth, speed-up over the reference."""

from __future__ import annotations

import statistics

import torch

from ..ops import backend_status
from ..ops.backends import SCAN_BACKENDS, runs_on, resolve
from .common import gpu_ms_graphed, gpu_ms_per_call, host_us_per_call, time_call


def scan_inputs(batch: int, dim: int, length: int, n_state: int, device: torch.device, dtype=torch.float32,
                requires_grad: bool = False, seed: int = 0) -> dict:
    """Random inputs shaped as a Mamba layer feeds the scan (variable B and C, z gate, D, dt bias)."""
    g = torch.Generator(device="cpu").manual_seed(seed)

    def r(*shape, scale=1.0):
        t = (torch.randn(*shape, generator=g) * scale).to(device=device, dtype=dtype)
        return t.requires_grad_(requires_grad)

    A = (-torch.rand(dim, n_state, generator=g) * 4 - 0.1).to(device).requires_grad_(requires_grad)
    return dict(u=r(batch, dim, length), delta=r(batch, dim, length, scale=0.5), A=A,
                B=r(batch, n_state, length), C=r(batch, n_state, length), D=r(dim).float(),
                z=r(batch, dim, length), delta_bias=r(dim, scale=0.5).float())


def minimum_bytes(batch: int, dim: int, length: int, n_state: int, elem: int) -> int:
    """Fewest bytes the forward must move: read u, delta, z, B, C once, write out once (A, D, bias negligible)."""
    return elem * (4 * batch * dim * length + 2 * batch * n_state * length)


def measured_bandwidth_gbs(device: torch.device, mib: int = 1024, clock: str = "gpu") -> float:
    """Device-to-device copy rate (bytes read + written per second), the practical HBM ceiling.

    clock "gpu" (the default): GPU time of back-to-back copies (`gpu_ms_per_call`, the clock of the kernels'
    gpu_ms), median of 3 rounds of 20. clock "wall": median wall time of host-synchronised copies, what this
    measured until session 11 of 2026-11-27; its per-call sync made the rate 2-5 % low and the roofline that much
    easier to meet (H100: 2.79-2.96 TB/s between runs)."""
    if device.type != "cuda":
        return float("nan")
    src = torch.empty(mib * 2**20, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    if clock == "wall":
        ms = time_call(lambda: dst.copy_(src), device, warmup=3, repeats=20)["median_ms"]
    else:
        ms = sorted(gpu_ms_per_call(lambda: dst.copy_(src), 20) for _ in range(3))[1]
    return 2 * src.numel() / (ms / 1000) / 1e9


def roofline_ms(batch: int, dim: int, length: int, n_state: int, dtype: torch.dtype, bandwidth_gbs: float) -> float:
    """Time to move the forward's fewest bytes (`minimum_bytes`) at the measured copy rate, in ms."""
    return minimum_bytes(batch, dim, length, n_state, torch.finfo(dtype).bits // 8) / (bandwidth_gbs * 1e9) * 1000


def tuning_cases(shape: str, device: torch.device, bandwidth_gbs: float, groups: int = 1):
    """For the tune scripts: yields (dtype, inputs, roofline ms) at `shape` ("batch,dim,L,N") for float32 and
    bfloat16; with groups > 1, B and C as (batch, groups, N, L)."""
    b, d, length, n = (int(v) for v in shape.split(","))
    for dtype in (torch.float32, torch.bfloat16):
        x = scan_inputs(b, d, length, n, device, dtype)
        if groups > 1:
            x["B"] = x["B"][:, None].expand(b, groups, n, length).contiguous()
            x["C"] = x["C"][:, None].expand(b, groups, n, length).contiguous()
        yield dtype, x, roofline_ms(b, d, length, n, dtype, bandwidth_gbs)


def _paired_speedups(fns: dict, inputs: dict, device: torch.device, rounds: int, calls: int = 3) -> dict:
    """Speed-up over the reference of each backend, from paired timings: for one backend after another, each
    round times one reference call and then `calls` calls of the backend; the result is the median over rounds
    of the reference's time over the backend's median. On a shared machine whose speed drifts by 1.5x over
    seconds (this project's 2-core CI VM), timing the reference first and the backends later compares different
    machine states; pairs do not. Backends go in the order given (numba last: its idle threads keep spinning
    for a while after each call and slow whatever runs next)."""

    def median_ms(fn, repeats: int) -> float:
        return time_call(lambda: fn(**inputs, delta_softplus=True), device, warmup=0, repeats=repeats)["median_ms"]

    speedups = {}
    for name, fn in fns.items():
        if name == "reference":
            continue
        ratios = [median_ms(fns["reference"], 1) / median_ms(fn, calls) for _ in range(max(rounds, 1))]
        speedups[name] = statistics.median(ratios)
    return speedups


def bench_scan(device: torch.device, batch: int, dim: int, length: int, n_state: int, dtype=torch.float32,
               backends: list[str] | None = None, backward: bool = True, reference_repeats: int = 1) -> list[dict]:
    status = backend_status("scan")
    on_device = {n for n, b in SCAN_BACKENDS.items() if runs_on(b, device.type == "cuda")}
    names = backends or [n for n, s in status.items() if s["available"] and n in on_device]
    # The reference first; numba last: its worker threads keep spinning after a call and slow the PyTorch
    # backends timed after it on a small CPU (~1.5x on 2 cores).
    names = sorted(names, key=lambda n: (n != "reference", n == "numba"))
    inputs = scan_inputs(batch, dim, length, n_state, device, dtype)
    floor_bytes = minimum_bytes(batch, dim, length, n_state, torch.finfo(dtype).bits // 8)
    bandwidth = measured_bandwidth_gbs(device)
    rows, reference_ms, fns = [], None, {}
    for name in names:
        if not status.get(name, {}).get("available"):
            rows.append({"backend": name, "note": "not available: " + status.get(name, {}).get("reason", "?")})
            continue
        _, fn = resolve("scan", name, device.type == "cuda")
        fns[name] = fn
        repeats = reference_repeats if name == "reference" else 20
        fwd = time_call(lambda: fn(**inputs, delta_softplus=True), device, warmup=1 if name == "reference" else 3,
                        repeats=repeats)
        row = {"backend": name, "shape": f"b{batch} d{dim} L{length} N{n_state}", "dtype": str(dtype).split(".")[-1],
               "fwd_ms": fwd["median_ms"], "fwd_GB/s": floor_bytes / (fwd["median_ms"] / 1000) / 1e9}
        if bandwidth == bandwidth:  # not NaN: a GPU
            row["roofline_ms"] = roofline_ms(batch, dim, length, n_state, dtype, bandwidth)
            row["x_roofline"] = fwd["median_ms"] / row["roofline_ms"]
            if name != "reference":  # back-to-back calls hide per-call host overhead where the host is the faster
                row["gpu_ms"] = gpu_ms_per_call(lambda: fn(**inputs, delta_softplus=True))
                row["x_roofline_gpu"] = row["gpu_ms"] / row["roofline_ms"]
                row["host_us"] = host_us_per_call(lambda: fn(**inputs, delta_softplus=True))
                # the kernels alone (CUDA graph replay): back-to-back calls read the host where it is the slower
                try:
                    row["graph_ms"] = gpu_ms_graphed(lambda: fn(**inputs, delta_softplus=True))
                    row["x_roofline_graph"] = row["graph_ms"] / row["roofline_ms"]
                except RuntimeError as error:  # a backend with a host sync cannot be captured: say so, go on
                    row["note"] = f"no CUDA-graph time: {error}"[:160]
        if backward and name != "reference":
            grads = scan_inputs(batch, dim, length, n_state, device, dtype, requires_grad=True)
            out_grad = torch.randn(batch, dim, length, device=device, dtype=dtype)

            def step():
                y = fn(**grads, delta_softplus=True)
                torch.autograd.grad(y, [grads["u"], grads["delta"], grads["A"], grads["B"], grads["C"]], out_grad)

            row["fwd_bwd_ms"] = time_call(step, device, warmup=2, repeats=10)["median_ms"]
        if name == "reference":
            reference_ms = fwd["median_ms"]
        rows.append(row)
    paired = _paired_speedups(fns, inputs, device, reference_repeats) if reference_ms else {}
    for row in rows:
        if reference_ms and "fwd_ms" in row:
            row["x_vs_reference"] = paired.get(row["backend"], 1.0)
            row["x_vs_reference_unpaired"] = reference_ms / row["fwd_ms"]
    wall_rate = measured_bandwidth_gbs(device, clock="wall")
    for row in rows:
        row["hbm_GB/s_measured"] = bandwidth
        row["hbm_GB/s_wall_clock"] = wall_rate  # the older, host-synchronised measure, for comparison
    return rows
