"""GPU time of the Temporal Mamba blocks' two memory-bound kernels at each vivim-b3 stage (batch 8, T=5,
256x256 input, bf16), against the bytes they must move, and whole-model A/B of the choices.

    python benchmarks/mamba_block_kernels.py [--kernels] [--model] [--out results.json]

--kernels: for each stage,
  * the convs in scan orders (x (B, L, d_inner) in token order -> each branch's causal conv1d + SiLU in its scan
    order, (B, L, 3 d_inner)): the one-pass Triton kernel (`causal_conv1d_orders_triton`), the eager path before
    it (copies into scan order + token-major Triton conv), and that path under torch.compile (what Inductor
    made of it inside the compiled model);
  * the DSF's depthwise 3x3x3 conv + GELU at a few tiles (`DSF_CONFIGS`);
  * the dt projection of the token path with K = 12 (the dt columns alone) and K = 16 (with the zero padding).
--model: compiled vivim-b3 (bf16 weights, reduce-overhead, batch 8 x 5 frames) with the fused conv on and off
and DSF tiles, the basic ablation in the same process; alternating rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import json

import torch

from vivim_core.bench.common import environment, gpu_ms_per_call
from vivim_core.bench.scan import measured_bandwidth_gbs

STAGES = [(64, 64), (128, 32), (320, 16), (512, 8)]  # (dim, feature-map side) of vivim-b3's four stages
BATCH, FRAMES = 8, 5
DSF_CONFIGS = [  # the DSF conv kernel: "generic" (dwconv3d_triton.DSF_TUNING, session 9's default first), "default"
    # (the shipped choice: the bf16 kernel on large frames), or the bf16 one at every stage (BF16_TUNING: rows x
    # block_w columns x block_p channel pairs a program)
    {"kernel": "generic", "block_w": 16, "block_c": 128, "warps": 4},
    {"kernel": "default"},
    {"kernel": "bf16", "rows": 2, "block_w": 16, "block_p": 32, "warps": 4},
    {"kernel": "bf16", "rows": 1, "block_w": 16, "block_p": 64, "warps": 4},
    {"kernel": "bf16", "rows": 4, "block_w": 8, "block_p": 32, "warps": 4},
    {"kernel": "bf16", "rows": 2, "block_w": 8, "block_p": 64, "warps": 4},
    {"kernel": "bf16", "rows": 2, "block_w": 16, "block_p": 64, "warps": 8},
    {"kernel": "bf16", "rows": 4, "block_w": 16, "block_p": 32, "warps": 8},
    {"kernel": "bf16", "rows": 2, "block_w": 32, "block_p": 32, "warps": 8},
    {"kernel": "bf16", "rows": 2, "block_w": 16, "block_p": 16, "warps": 2},
    {"kernel": "bf16", "rows": 2, "block_w": 16, "block_p": 64, "warps": 4},
]


def _shipped_tuning() -> tuple[dict, dict]:
    try:
        from vivim_core.ops import dwconv3d_triton
    except ImportError:  # no Triton: nothing to run anyway
        return {}, {}
    return dict(dwconv3d_triton.DSF_TUNING), dict(dwconv3d_triton.BF16_TUNING)


SHIPPED_TUNING = _shipped_tuning()


@contextlib.contextmanager
def _dsf_tuning_restored():
    """Whatever use_dsf_config changes inside, dwconv3d_triton's tunings are as before afterwards."""
    from vivim_core.ops import dwconv3d_triton

    tunings = (dwconv3d_triton.DSF_TUNING, dwconv3d_triton.BF16_TUNING)
    saved = [dict(t) for t in tunings]
    try:
        yield
    finally:
        for tuning, values in zip(tunings, saved):
            tuning.clear()
            tuning.update(values)


def use_dsf_config(config: dict) -> None:
    """Point dwconv3d_triton's tuning at one DSF_CONFIGS entry."""
    from vivim_core.ops import dwconv3d_triton

    tile = {k: v for k, v in config.items() if k != "kernel"}
    if config["kernel"] == "default":
        dwconv3d_triton.DSF_TUNING.update(SHIPPED_TUNING[0])
        dwconv3d_triton.BF16_TUNING.update(SHIPPED_TUNING[1])
    elif config["kernel"] == "bf16":
        dwconv3d_triton.BF16_TUNING.update(enabled=True, min_plane=0, **tile)
    else:
        dwconv3d_triton.BF16_TUNING["enabled"] = False
        dwconv3d_triton.DSF_TUNING.update(tile)


def bench_kernels(device, rows: list, only_dsf: bool = False) -> None:
    from vivim_core.ops import causal_conv
    from vivim_core.ops.causal_conv_triton import causal_conv1d_orders_triton
    from vivim_core.ops.scan_orders import ORDER_CODES

    rate = measured_bandwidth_gbs(device)  # the scan suite's copy rate, so x_roofline means the same there
    print(f"copy rate {rate:.0f} GB/s", flush=True)
    branches = ("forward", "backward", "spatial")
    orders = [ORDER_CODES[b] for b in branches]
    compiled_old = torch.compile(lambda x, w, b, shape: causal_conv.causal_conv1d_tokens(
        torch.cat([causal_conv.to_scan_order(x, br, shape, dim=1) for br in branches], dim=2), w, b, "silu"))
    for dim, side in STAGES:
        d_inner, length, shape = 2 * dim, FRAMES * side * side, (FRAMES, side, side)
        if only_dsf:
            bench_dsf(device, rows, dim, side, rate)
            continue
        xz = torch.randn(BATCH, length, 2 * d_inner, device=device, dtype=torch.bfloat16)
        x = xz[..., :d_inner]  # the in_proj output's x half, as the model passes it
        w = torch.randn(3 * d_inner, 4, device=device, dtype=torch.bfloat16)
        bias = torch.randn(3 * d_inner, device=device, dtype=torch.bfloat16)
        ideal = (BATCH * length * d_inner * 2 + BATCH * length * 3 * d_inner * 2)  # read x once, write xs
        causal_conv.FUSED_SCAN_ORDERS = False
        old = lambda: causal_conv.causal_conv1d_in_scan_orders(x, w, bias, branches, shape, "silu")  # noqa: E731
        with torch.inference_mode():
            expected = old()
            fused = causal_conv1d_orders_triton(x, w, bias, True, orders, FRAMES)
            err = ((fused.float() - expected.float()).abs().max() / expected.float().abs().max()).item()
            candidates = {"fused Triton (one pass)": lambda: causal_conv1d_orders_triton(x, w, bias, True, orders,
                                                                                          FRAMES),
                          "copies + Triton conv (eager before)": old,
                          "copies + shifted sum, torch.compile": lambda: compiled_old(x, w, bias, shape)}
            for name, fn in candidates.items():
                ms = gpu_ms_per_call(fn, 50)
                _row(rows, "conv in scan orders", dim, side, name, ms, ideal, rate, err if "fused" in name else None)
        causal_conv.FUSED_SCAN_ORDERS = True

        # The dt projection of the token path: K = k*r dt columns alone, or with the zero padding after them.
        rank = -(-dim // 16)
        x_dbl = torch.randn(BATCH, length, 96 + -(-3 * rank // 8) * 8, device=device, dtype=torch.bfloat16)
        w_dt = torch.randn(3 * rank, 3 * d_inner, device=device, dtype=torch.bfloat16)
        padded = torch.nn.functional.pad(w_dt, (0, 0, 0, x_dbl.shape[-1] - 96 - 3 * rank))
        dt_bytes = BATCH * length * (x_dbl.shape[-1] + 3 * d_inner) * 2
        with torch.inference_mode():
            for name, fn in ((f"K = {3 * rank} (dt columns)", lambda: x_dbl[..., 96:96 + 3 * rank] @ w_dt),
                             (f"K = {x_dbl.shape[-1] - 96} (with padding)", lambda: x_dbl[..., 96:] @ padded)):
                _row(rows, "dt projection", dim, side, name, gpu_ms_per_call(fn, 50), dt_bytes, rate, None)
        bench_dsf(device, rows, dim, side, rate)


def bench_dsf(device, rows: list, dim: int, side: int, rate: float) -> None:
    """The DSF's depthwise conv3d + GELU at every DSF_CONFIGS entry, for one stage (differences against the first)."""
    from vivim_core.ops import dwconv3d_triton

    hidden = 4 * dim
    y = torch.randn(BATCH, FRAMES, side, side, hidden, device=device, dtype=torch.bfloat16)
    wd = torch.randn(hidden, 1, 3, 3, 3, device=device, dtype=torch.bfloat16)
    bd = torch.randn(hidden, device=device, dtype=torch.bfloat16)
    with _dsf_tuning_restored(), torch.inference_mode():
        use_dsf_config(DSF_CONFIGS[0])
        reference = dwconv3d_triton.depthwise_conv3d_gelu_triton(y, wd, bd).float()
        for config in DSF_CONFIGS:
            use_dsf_config(config)
            out = dwconv3d_triton.depthwise_conv3d_gelu_triton(y, wd, bd).float()
            err = ((out - reference).abs().max() / reference.abs().max()).item()
            ms = gpu_ms_per_call(lambda: dwconv3d_triton.depthwise_conv3d_gelu_triton(y, wd, bd), 50)
            _row(rows, "DSF conv3d + GELU", dim, side, json.dumps(config), ms, 2 * y.numel() * 2, rate, err)
    torch.cuda.empty_cache()


def _row(rows, op, dim, side, name, ms, ideal_bytes, rate, err) -> None:
    x_roofline = ms / (ideal_bytes / rate / 1e6)
    rows.append({"op": op, "dim": dim, "side": side, "variant": name, "gpu_ms": ms, "x_roofline": x_roofline,
                 "max_rel_diff": err})
    diff = "" if err is None else f"  max rel diff {err:.1e}"
    print(f"  {op:20s} dim {dim:3d} {side:2d}x{side:<2d} {ms:7.3f} ms  {x_roofline:5.1f}x roofline  {name}{diff}",
          flush=True)


def bench_whole_model(device, rows: list, rounds: int, dsf_configs: list, conv_ab: bool = True) -> None:
    from vivim_core.bench.model import bench_model
    from vivim_core.ops import causal_conv

    settings = [("fused conv on", True, dsf_configs[0])]
    if conv_ab:
        settings.append(("fused conv off", False, dsf_configs[0]))
    settings += [(f"fused conv on, DSF {json.dumps(c)}", True, c) for c in dsf_configs[1:]]
    with _dsf_tuning_restored():
        for round_ in range(rounds):
            for name, fused, dsf in settings + [("basic", True, dsf_configs[0])]:
                causal_conv.FUSED_SCAN_ORDERS = fused
                use_dsf_config(dsf)
                row = bench_model("vivim-b3", device, "bf16-weights", batch=BATCH, compile="reduce-overhead",
                                  repeats=20, ablation="basic" if name == "basic" else None)
                rows.append({"op": "vivim-b3 compiled", "round": round_, "variant": name,
                             "frames_per_s": row["frames_per_s"], "ms_per_batch": row["ms_per_batch"]})
                print(f"  round {round_}  {name:60s} {row['ms_per_batch']:6.2f} ms/batch {row['frames_per_s']:6.0f} "
                      "frames/s", flush=True)
                torch.cuda.empty_cache()
    causal_conv.FUSED_SCAN_ORDERS = True


def _fastest_dsf(rows: list) -> int:
    """Index of the DSF config with the least GPU time summed over the stages (--kernels must have run)."""
    totals = [sum(r["gpu_ms"] for r in rows if r["op"].startswith("DSF") and r["variant"] == json.dumps(c))
              for c in DSF_CONFIGS]
    if not any(totals):
        raise SystemExit("--dsf best needs --kernels in the same run")
    return min(range(len(DSF_CONFIGS)), key=totals.__getitem__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kernels", action="store_true")
    parser.add_argument("--model", action="store_true")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dsf", default="0", help="indices into DSF_CONFIGS for --model (first = baseline), or 'best': "
                        "the row kernel's default and the fastest config of --kernels")
    parser.add_argument("--only-dsf", action="store_true", help="--kernels: the DSF conv only")
    parser.add_argument("--no-conv-ab", action="store_true", help="--model: leave out the fused conv off")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    device = torch.device("cuda")
    env = environment(device)
    print(env.get("gpu"), env["date"], env["command"], flush=True)
    rows: list = []
    if args.kernels:
        bench_kernels(device, rows, args.only_dsf)
    if args.model:
        picks = [0, _fastest_dsf(rows)] if args.dsf == "best" else [int(i) for i in args.dsf.split(",")]
        bench_whole_model(device, rows, args.rounds, [DSF_CONFIGS[i] for i in dict.fromkeys(picks)],
                          conv_ab=not args.no_conv_ab)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"environment": env, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
