"""The scan suite: the model's own scan calls at the model's shapes against the HBM roofline, and the scan
backends side by side at one shape.

Model path (`bench_model_scans`): for every encoder stage of a variant (vivim-b3 by default) at the model suite's
input (batch x T frames of size x size), the exact `selective_scan` call the model makes, built by the model's own
code (`SpatioTemporalMamba.token_scan_arguments` / `channel_scan_arguments`, all scan branches in one call):

* inference as the compiled model runs it: the layout `SpatioTemporalMamba.uses_token_layout` picks (token-major
  on CUDA with our kernels), bfloat16 activations on CUDA (float32 on the CPU), the gate applied after the branch
  sum (z not passed to the scan); timed as kernels alone (`graph_ms`, CUDA-graph replay, as inside the compiled
  model's graphs) and back-to-back (`gpu_ms`);
* training as the training loop runs it (eager, bfloat16 autocast on CUDA): channel-major, the gate inside the
  scan, forward and backward (`fwd_bwd_ms`).

The roofline is the time to move the fewest bytes a call must move at the device's measured copy rate: inference
reads u, delta, (z,) B and C once and writes the output once; a forward and backward reads them once more, reads
the output's gradient and writes the inputs' gradients. x_roofline = time / roofline.

Backends (`bench_scan`): every scan backend on random channel-major inputs at one shape (`--scan-shape`), with the
sequential reference as the baseline for speed-ups.
"""

from __future__ import annotations

import contextlib
import statistics
from typing import Callable

import torch

from ..ops import backend_status, chosen_backend
from ..ops.backends import SCAN_BACKENDS, resolve, runs_on
from .common import (environment, gpu_ms_graphed, gpu_ms_per_call, host_us_per_call, print_table, time_call,
                     write_report)

PER_STEP = ("u", "delta", "z", "B", "C")  # the scan's inputs with one value a step (A, D and delta_bias are tiny)


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


def call_bytes(args: dict, backward: bool = False) -> int:
    """Fewest bytes a scan call on `args` must move: its per-step inputs read and its output written once; with
    `backward`, also the inputs read again, the output's gradient read and the inputs' gradients written."""
    inputs = sum(args[k].numel() * args[k].element_size() for k in PER_STEP if args.get(k) is not None)
    output = args["u"].numel() * args["u"].element_size()
    return 3 * inputs + 2 * output if backward else inputs + output


def measured_bandwidth_gbs(device: torch.device, mib: int = 1024) -> float:
    """Device-to-device copy rate (bytes read + written per second), the practical HBM ceiling: GPU time of
    back-to-back copies (`gpu_ms_per_call`, the clock of the kernels' gpu_ms), median of 3 rounds of 20."""
    if device.type != "cuda":
        return float("nan")
    src = torch.empty(mib * 2**20, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    ms = sorted(gpu_ms_per_call(lambda: dst.copy_(src), 20) for _ in range(3))[1]
    return 2 * src.numel() / (ms / 1000) / 1e9


def roofline_ms(batch: int, dim: int, length: int, n_state: int, dtype: torch.dtype, bandwidth_gbs: float) -> float:
    """Time to move the forward's fewest bytes (`minimum_bytes`) at the measured copy rate, in ms."""
    return minimum_bytes(batch, dim, length, n_state, torch.finfo(dtype).bits // 8) / (bandwidth_gbs * 1e9) * 1000


def stage_mixers(variant: str, size: int):
    """(stage, feature-map side, an ST-Mamba mixer of the stage's width) for every encoder stage of `variant` at
    size x size input, with the variant's state size, conv width, expansion and scan branches."""
    from ..config import get_config
    from ..model.temporal_mamba import SpatioTemporalMamba

    config = get_config(variant)
    for stage, dim in enumerate(config.embed_dims):
        side = size // (4 * 2**stage)
        torch.manual_seed(stage)
        mixer = SpatioTemporalMamba(dim, d_state=config.d_state, d_conv=config.d_conv, expand=config.expand,
                                    branches=config.scan_branches)
        yield stage + 1, side, mixer


def model_scan_arguments(mixer, batch: int, length: int, device: torch.device, training: bool) -> tuple[dict, str]:
    """The model's scan call for x after the convs: (keyword arguments, layout). Inference: the layout the model
    takes here, the gate after the branch sum (z None), bfloat16 on CUDA. Training: channel-major, the gate in
    the scan, bfloat16 autocast on CUDA, every tensor argument a leaf that requires a gradient."""
    cuda = device.type == "cuda"
    channels = len(mixer.branches) * mixer.d_inner
    g = torch.Generator(device="cpu").manual_seed(length)
    if training:
        mixer = mixer.to(device=device, dtype=torch.float32)
        x = torch.randn(batch, channels, length, generator=g).to(device)
        z = torch.randn(batch, channels, length, generator=g).to(device)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
        with torch.no_grad(), autocast:
            if cuda:
                x, z = x.bfloat16(), z.bfloat16()  # the conv's and in_proj's outputs under autocast
            args = mixer.channel_scan_arguments(x, z)
        return {k: (v.detach().requires_grad_() if torch.is_tensor(v) else v) for k, v in args.items()}, "channels"
    dtype = torch.bfloat16 if cuda else torch.float32
    mixer = mixer.to(device=device, dtype=dtype)
    with torch.inference_mode():
        hidden = torch.empty(batch, length, mixer.d_model, device=device, dtype=dtype)
        if mixer.uses_token_layout(hidden):
            x = torch.randn(batch, length, channels, generator=g).to(device=device, dtype=dtype)
            return mixer.token_scan_arguments(x, None), "tokens"
        x = torch.randn(batch, channels, length, generator=g).to(device=device, dtype=dtype)
        return mixer.channel_scan_arguments(x, None), "channels"


def _scan_kernel(args: dict) -> str:
    """What runs a call on these tensors: the backend `auto` takes and, for ours on CUDA, the policy's kernel."""
    backend = chosen_backend("scan", args["u"].is_cuda)
    if backend != "triton":
        return backend
    from ..ops.scan.cuda import chosen_kernel

    return f"triton: {chosen_kernel(**{k: v for k, v in args.items() if k != 'delta_softplus'})}"


def _describe(args: dict) -> dict:
    batch, dim, length = args["u"].shape
    groups = args["B"].shape[1] if args["B"].dim() == 4 else 1
    return {"shape": f"b{batch} d{dim} L{length} N{args['A'].shape[1]} G{groups}",
            "dtype": str(args["u"].dtype).split(".")[-1], "gate": "in scan" if args.get("z") is not None else "after"}


def bench_model_scans(device: torch.device, variant: str = "vivim-b3", batch: int = 8, size: int = 256,
                      frames: int = 5, backward: bool = True, bandwidth_gbs: float | None = None) -> list[dict]:
    """One row per encoder stage for inference and, with `backward`, for training: the model's scan call (see the
    module docstring), its kernel, times and roofline."""
    from ..ops import selective_scan

    cuda = device.type == "cuda"
    bandwidth = measured_bandwidth_gbs(device) if bandwidth_gbs is None else bandwidth_gbs
    rows = []
    for stage, side, mixer in stage_mixers(variant, size):
        length = frames * side * side
        for training in ((False, True) if backward else (False,)):
            args, layout = model_scan_arguments(mixer, batch, length, device, training)
            row = {"variant": variant, "stage": stage, "call": "train fwd+bwd" if training else "inference",
                   "layout": layout, **_describe(args), "kernel": _scan_kernel(args)}
            if training:
                leaves = [v for v in args.values() if torch.is_tensor(v) and v.requires_grad]
                grad_out = torch.randn_like(args["u"])

                def step():
                    torch.autograd.grad(selective_scan(**args), leaves, grad_out)

                row["fwd_bwd_ms"] = time_call(step, device, warmup=2, repeats=10 if cuda else 3)["median_ms"]
                if cuda:
                    row["gpu_ms"] = gpu_ms_per_call(step, 10)
                seconds = row.get("gpu_ms", row["fwd_bwd_ms"])
            else:
                def call():
                    return selective_scan(**args)

                with torch.inference_mode():
                    row["fwd_ms"] = time_call(call, device, warmup=2, repeats=20 if cuda else 3)["median_ms"]
                    if cuda:
                        row["gpu_ms"] = gpu_ms_per_call(call)
                        row["host_us"] = host_us_per_call(call)
                        row["graph_ms"] = gpu_ms_graphed(call)
                seconds = row.get("graph_ms", row["fwd_ms"])
            row["MB"] = call_bytes(args, backward=training) / 1e6
            if cuda:
                row["roofline_ms"] = row["MB"] * 1e6 / (bandwidth * 1e9) * 1000
                row["x_roofline"] = seconds / row["roofline_ms"]
            row["hbm_GB/s_measured"] = bandwidth
            rows.append(row)
    return rows


def tuning_calls(shape: str, device: torch.device, training: bool = False, layout: str | None = None,
                 variant: str = "vivim-b3", batch: int = 8, size: int = 256, frames: int = 5):
    """For the tune scripts: yields (label, scan keyword arguments) to time kernels on. shape "model": the model's
    call at each stage of `variant` (`model_scan_arguments`; layout "tokens" or "channels" forces the layout);
    else "batch,dim,L,N[,G]": random channel-major inputs (B and C in G groups), float32 then bfloat16."""
    if shape == "model":
        for stage, side, mixer in stage_mixers(variant, size):
            if layout is not None:
                mixer.layout = layout
            args, used = model_scan_arguments(mixer, batch, frames * side * side, device, training)
            yield f"{variant} stage {stage} {used}", args
        return
    b, d, length, n, *groups = (int(v) for v in shape.split(","))
    for dtype in (torch.float32, torch.bfloat16):
        args = scan_inputs(b, d, length, n, device, dtype, requires_grad=training)
        if groups and groups[0] > 1:
            with torch.no_grad():
                args["B"], args["C"] = (m[:, None].expand(b, groups[0], n, length).contiguous().requires_grad_(training)
                                        for m in (args["B"], args["C"]))
        yield f"b{b} d{d} L{length} N{n} G{groups[0] if groups else 1} channels", dict(args, delta_softplus=True)


def launch(launcher: Callable, args: dict, **params) -> torch.Tensor:
    """Run one inference kernel's launcher (`vivim_core.ops.scan.cuda.load_kernels()`) on scan keyword
    arguments, bypassing the policy, with launch `params`; returns the output."""
    from ..ops.scan.common import as_groups

    u = args["u"].detach()
    batch, _, length = u.shape
    detached = {k: (v.detach() if torch.is_tensor(v) else v) for k, v in args.items()}
    return launcher(u, detached["delta"], detached["A"], as_groups(detached["B"], batch, length),
                    as_groups(detached["C"], batch, length), detached.get("D"), detached.get("z"),
                    detached.get("delta_bias"), detached.get("delta_softplus", True), torch.empty_like(u), **params)


def sweep(title: str, calls, configurations: dict[str, Callable], device: torch.device, backward: bool = False,
          out: str | None = None) -> list[dict]:
    """Time every configuration (name -> function of the scan arguments that runs the kernels and returns the
    output) on every call: kernel time (CUDA-graph replay), x_roofline at the measured copy rate, and the output's
    largest difference from the first configuration's, relative to its largest value (a broken configuration shows
    there). A configuration that fails to compile or launch is reported, not fatal. Prints a table under `title`
    and, given `out`, writes the rows and the environment there as JSON."""
    bandwidth = measured_bandwidth_gbs(device)
    print(f"{torch.cuda.get_device_name(device)}, copy rate {bandwidth:.0f} GB/s", flush=True)
    rows = []
    for label, args in calls:
        roofline = call_bytes(args, backward) / (bandwidth * 1e9) * 1000
        first = None
        for name, run in configurations.items():
            row = {"call": label, "dtype": str(args["u"].dtype).split(".")[-1], "configuration": name}
            try:
                out = run(args).float()
                first = out if first is None else first
                row["rel_diff"] = float((out - first).abs().max() / first.abs().max().clamp_min(1e-30))
                row["kernel_ms"] = gpu_ms_graphed(lambda: run(args))
                row["x_roofline"] = row["kernel_ms"] / roofline
            except Exception as error:  # noqa: BLE001 - a configuration's failure is a result
                row["error"] = f"{type(error).__name__}: {error}"[:100]
            rows.append(row)
            print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
        torch.cuda.empty_cache()
    print_table(title, rows, ["call", "dtype", "configuration", "kernel_ms", "x_roofline", "rel_diff", "error"])
    if out:
        write_report(out, {"environment": environment(device), "copy_rate_gbs": bandwidth, "rows": rows})
    return rows


def _paired_speedups(fns: dict, inputs: dict, device: torch.device, rounds: int, calls: int = 3) -> dict:
    """Speed-up over the reference of each backend, from paired timings: for one backend after another, each
    round times one reference call and then `calls` calls of the backend; the result is the median over rounds
    of the reference's time over the backend's median. On a shared machine whose speed drifts over seconds,
    timing the reference first and the backends later compares different machine states; pairs do not. Backends
    go in the order given (numba last: its idle threads keep spinning for a while after each call and slow
    whatever runs next)."""

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
               backends: list[str] | None = None, backward: bool = True, reference_repeats: int = 1,
               bandwidth_gbs: float | None = None) -> list[dict]:
    """Every available backend (or `backends`) on random channel-major inputs at one shape: forward time (wall,
    and on a GPU back-to-back, host and CUDA-graph times), achieved bandwidth, roofline, forward+backward time and
    the speed-up over the sequential reference."""
    status = backend_status("scan")
    on_device = {n for n, b in SCAN_BACKENDS.items() if runs_on(b, device.type == "cuda")}
    names = backends or [n for n, s in status.items() if s["available"] and n in on_device]
    # The reference first; numba last: its worker threads keep spinning after a call and slow the PyTorch
    # backends timed after it on a small CPU.
    names = sorted(names, key=lambda n: (n != "reference", n == "numba"))
    inputs = scan_inputs(batch, dim, length, n_state, device, dtype)
    floor_bytes = minimum_bytes(batch, dim, length, n_state, torch.finfo(dtype).bits // 8)
    bandwidth = measured_bandwidth_gbs(device) if bandwidth_gbs is None else bandwidth_gbs
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
        if name == "triton":
            row["kernel"] = _scan_kernel(inputs).removeprefix("triton: ")
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
        row["hbm_GB/s_measured"] = bandwidth
    return rows
