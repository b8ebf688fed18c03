"""The one-pass Triton scan kernels (`one_pass`, `warps`) on the CPU, through Triton's interpreter
(TRITON_INTERPRET=1).

Lets a machine without a GPU check changes to the kernel's logic (tails, several rows a program, grouped B/C,
odd N, the optional inputs). Runs where Triton is importable (GPU machines, or `pip install triton`); CI's CPU
install has no Triton, so it skips there. The GPU tests (`test_scan_gpu.py`) check the compiled kernel.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None,
                                reason="Triton not installed (CPU-only install): the interpreter test needs it")

SCRIPT = textwrap.dedent("""
    import torch
    from vivim_core.ops import scan_triton_onepass as one_pass, scan_triton_warps as warps_kernel
    from vivim_core.ops.scan_reference import selective_scan_reference
    from vivim_core.ops.scan_triton import _as_groups

    def case(batch, dim, length, n_state, groups, optional):
        g = torch.Generator().manual_seed(length)
        r = lambda *s: torch.randn(*s, generator=g)
        u, dt = r(batch, dim, length), r(batch, dim, length) * 0.5
        A = -torch.rand(dim, n_state, generator=g) * 4 - 0.1
        B, C = r(batch, groups, n_state, length), r(batch, groups, n_state, length)
        D, z, bias = (r(dim), r(batch, dim, length), r(dim) * 0.5) if optional else (None, None, None)
        ref = selective_scan_reference(u, dt, A, B, C, D, z, bias, delta_softplus=optional)
        args = (u, dt, A, _as_groups(B, batch, length), _as_groups(C, batch, length), D, z, bias, optional,
                torch.empty_like(u))
        return args, ref

    def check(batch, dim, length, n_state, groups, items, warps, rows, optional, pair=False, hoist_z=False):
        args, ref = case(batch, dim, length, n_state, groups, optional)
        one_pass.ONE_PASS_TUNING.update(items=items, num_warps=warps, rows=rows, pair_states=pair, hoist_z=hoist_z,
                                        maxnreg=128 if pair else None)
        out = one_pass.scan_one_pass(*args)
        err = float((out - ref).abs().max() / ref.abs().max())
        assert err < 1e-5, (batch, dim, length, n_state, groups, items, warps, rows, optional, pair, hoist_z, err)

    def check_warps(batch, dim, length, n_state, groups, items, split, optional):
        args, ref = case(batch, dim, length, n_state, groups, optional)
        warps_kernel.WARPS_TUNING.update(items=items, split=split)
        out = warps_kernel.scan_warps(*args)
        err = float((out - ref).abs().max() / ref.abs().max())
        assert err < 1e-5, (batch, dim, length, n_state, groups, items, split, optional, err)

    check(2, 4, 256, 16, 1, 8, 1, 2, True)     # whole chunks, 2 rows a program
    check(1, 4, 300, 16, 2, 4, 2, 4, True)     # a tail; 4 rows asked, groups of 2 channels give 2
    check(2, 3, 37, 3, 1, 4, 1, "auto", False)  # shorter than a chunk, odd N, no D / z / bias / softplus
    check(1, 4, 300, 16, 2, 4, 2, 2, True, pair=True, hoist_z=True)  # two states an iteration, z loaded early
    check(2, 3, 37, 3, 1, 4, 1, 1, False, pair=True, hoist_z=True)   # odd N: one state an iteration; no z
    check_warps(2, 4, 512, 16, 1, 8, 4, True)   # whole chunks, 4 warps of 4 states
    check_warps(1, 4, 300, 16, 2, 4, 2, True)   # a tail, grouped B/C
    check_warps(2, 3, 37, 3, 1, 4, 4, False)    # shorter than a chunk; odd N: 1 warp; no optional inputs
    check_warps(1, 2, 700, 8, 1, 16, 8, True)   # 8 warps asked, N = 8: 8 warps of 1 state
    print("ok")
""")


def test_one_pass_kernels_in_the_triton_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1")
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
