"""The Triton scan kernels (`one_pass`, `rows`, and `chunk` forward and backward behind autograd), the convs in
scan orders and the DSF conv kernels on the CPU, through Triton's interpreter (TRITON_INTERPRET=1).

Lets a machine without a GPU check changes to the kernels' logic (tails, one or two rows a program, grouped and
time-invariant B/C, odd N, the optional inputs; the row kernel's segments and B/C read in place from x_proj-like
slices; the training gradients). Runs where
Triton is importable (GPU machines, or `pip install triton`); CI's CPU install has no Triton, so it skips there.
The Gluon kernels have no interpreter: `test_scan_offline_compile.py` compiles them, the GPU tests
(`test_scan_gpu.py`) run them.
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
    from vivim_core.ops.scan.common import as_groups
    from vivim_core.ops.scan.reference import selective_scan_reference
    from vivim_core.ops.scan.triton import chunk, one_pass, rows as rows_kernel

    def case(batch, dim, length, n_state, groups, optional):
        g = torch.Generator().manual_seed(length)
        r = lambda *s: torch.randn(*s, generator=g)
        u, dt = r(batch, dim, length), r(batch, dim, length) * 0.5
        A = -torch.rand(dim, n_state, generator=g) * 4 - 0.1
        B, C = r(batch, groups, n_state, length), r(batch, groups, n_state, length)
        D, z, bias = (r(dim), r(batch, dim, length), r(dim) * 0.5) if optional else (None, None, None)
        ref = selective_scan_reference(u, dt, A, B, C, D, z, bias, delta_softplus=optional)
        args = (u, dt, A, as_groups(B, batch, length), as_groups(C, batch, length), D, z, bias, optional,
                torch.empty_like(u))
        return args, ref

    def rel(out, ref):
        return float((out - ref).abs().max() / ref.abs().max())

    def check(batch, dim, length, n_state, groups, items, warps, rows, optional):
        args, ref = case(batch, dim, length, n_state, groups, optional)
        out = one_pass.scan_one_pass(*args, items=items, num_warps=warps, rows=rows)
        err = rel(out, ref)
        assert err < 1e-5, (batch, dim, length, n_state, groups, items, warps, rows, optional, err)

    check(2, 4, 256, 16, 1, 8, 1, 2, True)     # whole chunks, 2 rows a program
    check(1, 4, 300, 16, 2, 4, 2, 2, True)     # a tail, groups of 2 channels
    check(2, 3, 37, 3, 1, 4, 1, None, False)   # shorter than a chunk, odd N, no D / z / bias / softplus; 1 row
    check(1, 4, 300, 16, 2, 4, 2, 1, True)     # a tail, 1 row a program

    def check_rows_on_views(threads):
        # u, dt, z token-major, B and C slices of an x_proj-like (batch, G, L, dt_rank + 2N) tensor (in place)
        g = torch.Generator().manual_seed(threads)
        r = lambda *s: torch.randn(*s, generator=g)
        batch, groups, dim, length, n, rank = 2, 3, 6, 203, 16, 4
        x_proj = r(batch, groups, length, rank + 2 * n)
        Bg, Cg = x_proj[..., rank:rank + n].transpose(-1, -2), x_proj[..., rank + n:].transpose(-1, -2)
        assert rows_kernel.token_major(Bg).data_ptr() == Bg.data_ptr()
        u, dt, z = (r(batch, length, dim).transpose(1, 2) for _ in range(3))
        A, D, bias = -torch.rand(dim, n, generator=g) * 4 - 0.1, r(dim), r(dim) * 0.5
        ref = selective_scan_reference(u, dt * 0.5, A, Bg.repeat_interleave(2, 1), Cg.repeat_interleave(2, 1), D, z,
                                       bias, delta_softplus=True)
        out = torch.empty(batch, length, dim).transpose(1, 2)
        rows_kernel.scan_rows(u, dt * 0.5, A, Bg, Cg, D, z, bias, True, out, threads=threads)
        assert rel(out, ref) < 1e-5, ("rows on views", threads, rel(out, ref))

    def check_rows(batch, dim, length, n_state, groups, threads, optional):
        args, ref = case(batch, dim, length, n_state, groups, optional)
        out = rows_kernel.scan_rows(*args, threads=threads)
        assert rel(out, ref) < 1e-5, ("rows", batch, dim, length, n_state, groups, threads, optional, rel(out, ref))

    rows_kernel.MIN_SEGMENT = 16  # more segments at these short lengths
    check_rows_on_views(100)                   # several segments, B/C read in place from x_proj-like slices
    check_rows_on_views(1)                     # one segment
    check_rows(1, 24, 300, 16, 3, 1, True)     # one segment, grouped B/C, rows not a program's multiple
    check_rows(2, 3, 37, 8, 1, 64, False)      # L not a multiple of 4, several segments, no optional inputs
    rows_kernel.MIN_SEGMENT = 64
    assert rows_kernel.plan_segments(24576, 320, True) == (320, 1)   # rows enough on their own: one pass
    assert rows_kernel.plan_segments(3072, 20480, True)[1] == 87     # else about THREADS_16BIT threads
    assert rows_kernel.plan_segments(3072, 20480, False)[1] == 44    # float32: THREADS

    for optional in (True, False):              # the chunk kernel's forward without gradients
        args, ref = case(2, 3, 300, 8, 1, optional)
        assert rel(chunk.scan_chunks(*args), ref) < 1e-5, ("chunk", optional)

    from vivim_core.ops.scan.cuda import _CudaScan  # training: the chunk kernels' forward and backward
    g = torch.Generator().manual_seed(1)
    for B_shape, optional in (((2, 8, 150), True), ((2, 2, 8, 150), True), ((6, 8), False)):
        x = dict(u=torch.randn(2, 6, 150, generator=g), delta=torch.randn(2, 6, 150, generator=g) * 0.5,
                 A=-torch.rand(6, 8, generator=g) * 4 - 0.1, B=torch.randn(*B_shape, generator=g),
                 C=torch.randn(*B_shape, generator=g))
        if optional:
            x.update(D=torch.randn(6, generator=g), z=torch.randn(2, 6, 150, generator=g),
                     delta_bias=torch.randn(6, generator=g) * 0.5)
        x = {k: v.requires_grad_() for k, v in x.items()}
        names = list(x)
        full = [x.get(k) for k in ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")]
        out = _CudaScan.apply(*full, optional)
        ref = selective_scan_reference(**x, delta_softplus=optional)
        assert rel(out, ref) < 1e-5, ("chunk training forward", B_shape)
        grad_out = torch.randn(out.shape, generator=g)
        mine = torch.autograd.grad(out, [x[k] for k in names], grad_out)
        theirs = torch.autograd.grad(ref, [x[k] for k in names], grad_out)
        for name, a, b in zip(names, mine, theirs):
            assert rel(a, b) < 1e-4, ("chunk gradient", name, B_shape, rel(a, b))
    print("ok")
""")


CONV_SCRIPT = textwrap.dedent("""
    import torch
    from vivim_core.ops.conv import dwconv3d_triton
    from vivim_core.ops.conv.causal import causal_conv1d_tokens
    from vivim_core.ops.conv.causal_triton import causal_conv1d_orders_triton
    from vivim_core.ops.conv.dwconv3d import depthwise_conv3d_gelu_torch
    from vivim_core.ops.scan_orders import ORDER_CODES, to_scan_order

    g = torch.Generator().manual_seed(0)
    for branches, clip_shape, dim in [(("forward", "backward", "spatial"), (3, 4, 5), 6), (("spatial",), (1, 3, 3), 40),
                                      (("backward", "forward"), (5, 2, 7), 130)]:
        length, k = clip_shape[0] * clip_shape[1] * clip_shape[2], len(branches)
        x = torch.randn(2, length, 2 * dim, generator=g)[..., :dim]  # strided, as in_proj's x half
        weight, bias = torch.randn(k * dim, 4, generator=g), torch.randn(k * dim, generator=g)
        for b, silu in ((bias, True), (None, False)):
            out = causal_conv1d_orders_triton(x, weight, b, silu, [ORDER_CODES[n] for n in branches], clip_shape[0])
            xs = torch.cat([to_scan_order(x, n, clip_shape, dim=1) for n in branches], dim=2)
            ref = causal_conv1d_tokens(xs, weight, b, "silu" if silu else None)
            assert (out - ref).abs().max() < 1e-5, (branches, clip_shape, dim, silu)
    for shape in [(2, 3, 5, 6, 10), (1, 4, 3, 9, 70)]:
        x, c = torch.randn(*shape, generator=g), shape[-1]
        weight, bias = torch.randn(c, 1, 3, 3, 3, generator=g), torch.randn(c, generator=g)
        ref = depthwise_conv3d_gelu_torch(x, weight, bias)
        for block_w, block_c in ((4, 32), (16, 128)):  # tiles smaller and larger than the clip
            out = dwconv3d_triton.dwconv3d_gelu_generic(x, weight, bias, block_w=block_w, block_c=block_c)
            assert (out - ref).abs().max() < 1e-5, (shape, block_w, block_c)
        xb = x.bfloat16()  # the bf16 kernel: channel pairs as int32, R rows a program
        for b, (rows, block_w, block_p) in ((bias, (2, 16, 32)), (None, (4, 2, 8))):
            ref = depthwise_conv3d_gelu_torch(xb.float(), weight, b)
            out = dwconv3d_triton.dwconv3d_gelu_bf16(xb, weight, b, rows=rows, block_w=block_w, block_p=block_p)
            assert out.dtype == torch.bfloat16
            # one bf16 ulp: the interpreter truncates float32 to bf16 (the GPU rounds to nearest: half an ulp)
            assert ((out.float() - ref).abs() <= ref.abs() * 2**-7 + 1e-5).all(), (shape, rows, block_w, block_p)
    print("ok")
""")


def test_conv_kernels_in_the_triton_interpreter():
    """The convs in scan orders (one pass, any subset of branches, strided x) and the DSF conv kernel's tiles."""
    env = dict(os.environ, TRITON_INTERPRET="1")
    done = subprocess.run([sys.executable, "-c", CONV_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


def test_scan_kernels_in_the_triton_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1")
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
