"""The Gluon scan kernels compile for sm_90 (H100) on a machine without a GPU.

Gluon has no CPU interpreter, so this is what a machine without a GPU can check of them: each launcher is called
with CPU tensors while Triton's driver is replaced by one that reports an sm_90 target and its launches are
turned into compile-only warm-ups. The GPU tests (`test_scan_gpu.py`) run the kernels. Skips where this Triton has
no Gluon with Hopper TMA (CI's CPU install has no Triton at all).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import torch
    from triton.backends.compiler import GPUTarget
    from triton.runtime import driver
    from triton.runtime.jit import JITFunction

    compiled = []

    class Sm90:
        def get_current_device(self):
            return 0

        def get_current_stream(self, device=None):
            return 0

        def get_current_target(self):
            return GPUTarget("cuda", 90, 32)

    launch = JITFunction.run

    def compile_only(self, *args, grid, warmup, **kwargs):
        kernel = launch(self, *args, grid=grid, warmup=True, **kwargs)
        compiled.append((self.fn.__name__, len(kernel.asm["cubin"])))
        return kernel

    JITFunction.run = compile_only
    driver.set_active(Sm90())

    from vivim_core.ops.scan.gluon.one_pass import scan_one_pass_gluon
    from vivim_core.ops.scan.gluon.one_pass_tma import scan_one_pass_tma

    def args(length, dtype, z=True):
        batch, dim, n = 2, 8, 16
        r = lambda *s: torch.randn(*s).to(dtype)
        u = r(batch, dim, length)
        B, C = torch.randn(batch, 1, n, length), torch.randn(batch, 1, n, length)
        return (u, r(batch, dim, length), -torch.rand(dim, n), B.to(dtype), C.to(dtype), torch.randn(dim),
                r(batch, dim, length) if z else None, torch.randn(dim), True, torch.empty_like(u))

    for dtype in (torch.float32, torch.bfloat16):
        for length in (2048, 1001):  # whole chunks (the chunk's last pair loads the next: float32), and a tail
            scan_one_pass_gluon(*args(length, dtype))
    u, delta, A, B, C, D, z, bias, softplus, out = args(2048, torch.float32)
    scan_one_pass_tma(u, delta, A, B, C, D, z, bias, softplus, out)
    scan_one_pass_tma(u.bfloat16(), delta.bfloat16(), A, B, C, None, None, None, False, out.bfloat16())
    names = [name for name, size in compiled if size > 0]
    assert names.count("_one_pass_gluon_kernel") == 4 and names.count("_one_pass_tma_kernel") == 2, compiled
    print("ok")
""")


def test_gluon_kernels_compile_for_sm90():
    try:
        from vivim_core.ops.scan.gluon import common
    except ImportError:
        pytest.skip("Triton not installed")
    if not common.tma_available():
        pytest.skip("this Triton has no Gluon with Hopper TMA")
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
