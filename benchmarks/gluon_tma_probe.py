"""Building block of the TMA-staged B/C Gluon scan, `scan_gluon_tma_bc` (GPU or offline sm_90 compile): a
program of ROWS x 4 warps
TMA-copies one chunk of B (1024 float32 steps of one (batch, state) row, as a [32, 32] box, 128-byte swizzle) into
shared memory and every group of 4 warps reads it back in the scan's layout (thread t of a group: steps 8t..8t+7),
as the per-row tensors of a program scanning ROWS channels of one batch element would see it, and writes what it
read to out[group, t, 0:8].

Why: the one-pass scans' B and C (the same for all channels of a batch element) are ~80 % of the L1 traffic and
are re-read from L2 by every channel's program (NOTES.md, session 11). Offline sm_90 SASS of this probe (session
11): one UTMALDG.2D, two LDS.128 a thread for its 8 steps, no other shared-memory traffic (the reshape and layout
conversion into the per-row layout are free), stores unpredicated (each group writes its own copy). On an H100
(session 12): every value read back in order ("ok").

    python benchmarks/gluon_tma_probe.py            # on a GPU: runs it and checks every value
    python benchmarks/gluon_tma_probe.py --sass     # anywhere with Triton: offline sm_90 SASS summary
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import torch
import triton
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import mbarrier, tma

ROWS, WARPS, ITEMS = 4, 4, 8


@gluon.jit
def _probe_kernel(B_desc, out_ptr, chunk_row, ROWS: gl.constexpr, WARPS: gl.constexpr, ITEMS: gl.constexpr):
    # The [32, 32] tile: thread (warp k of a group, lane) holds tile row 8k + lane // 4, columns 8 (lane % 4) ..
    # +7, i.e. steps 8 t .. 8 t + 7 with t = 32 k + lane. ROWS x WARPS warps wrap around the tile's 32 rows, so
    # each group of WARPS warps holds the whole tile (replicated), group g = warp // WARPS.
    tile: gl.constexpr = gl.BlockedLayout([1, ITEMS], [8, 4], [ROWS * WARPS, 1], [1, 0])
    smem = gl.allocate_shared_memory(gl.float32, [32, 32], B_desc.layout)
    bar = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
    mbarrier.init(bar, count=1)
    mbarrier.expect(bar, 32 * 32 * 4)
    tma.async_copy_global_to_shared(B_desc, [chunk_row, 0], bar, smem)
    mbarrier.wait(bar, phase=0)
    values = smem.load(tile)  # (32, 32)
    mbarrier.invalidate(bar)
    # The same registers seen as the scan's per-row tensors: (ROWS, THREADS, ITEMS), group g = row g of a program
    # that scans ROWS channels of one batch element, thread t of a group holding steps 8t..8t+7. B is the same for
    # every row: a (THREADS, ITEMS) slice of that layout, broadcast along rows. The reshape and conversion must
    # cost nothing (no shared memory in the SASS beyond the two reads).
    rows3: gl.constexpr = gl.BlockedLayout([1, 1, ITEMS], [1, 32, 1], [ROWS, WARPS, 1], [2, 1, 0])
    per_row_b: gl.constexpr = gl.SliceLayout(0, rows3)
    values = gl.convert_layout(gl.reshape(values, [32 * WARPS, ITEMS]), per_row_b)
    values = gl.expand_dims(values, 0) + gl.zeros([ROWS, 32 * WARPS, ITEMS], gl.float32, rows3)
    # out[g, t, i] (as per-row data is written: every group stores its own copy)
    g = gl.arange(0, ROWS, layout=gl.SliceLayout(1, gl.SliceLayout(2, rows3)))
    t = gl.arange(0, 32 * WARPS, layout=gl.SliceLayout(0, gl.SliceLayout(2, rows3)))
    i = gl.arange(0, ITEMS, layout=gl.SliceLayout(0, gl.SliceLayout(1, rows3)))
    at = (gl.expand_dims(gl.expand_dims(g, 1), 2) * (32 * WARPS * ITEMS) + gl.expand_dims(gl.expand_dims(t, 0), 2)
          * ITEMS + gl.expand_dims(gl.expand_dims(i, 0), 1))
    gl.store(out_ptr + at, values)


def _descriptor(B2d: torch.Tensor):
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

    layout = gl.NVMMASharedLayout(swizzle_byte_width=128, element_bitwidth=32, rank=2)
    return TensorDescriptor.from_tensor(B2d, [32, 32], layout)


def run_on_gpu() -> None:
    batch, n_state, length = 2, 16, 4096
    B = torch.randn(batch, n_state, length, device="cuda")
    B2d = B.view(-1, 32)  # rows of 32 steps
    desc = _descriptor(B2d)
    ok = True
    for b, n, chunk in ((0, 0, 0), (1, 5, 3), (1, 15, 2)):
        out = torch.full((ROWS, 1024), float("nan"), device="cuda")
        chunk_row = ((b * n_state + n) * length + chunk * 1024) // 32
        _probe_kernel[(1,)](desc, out, chunk_row, ROWS=ROWS, WARPS=WARPS, ITEMS=ITEMS, num_warps=ROWS * WARPS)
        expected = B[b, n, chunk * 1024:(chunk + 1) * 1024]
        same = all(torch.equal(out[g], expected) for g in range(ROWS))
        print(f"b {b} n {n} chunk {chunk}: every group read the chunk in order: {same}")
        ok &= same
    print("ok" if ok else "MISMATCH")


def offline_sass() -> None:
    """Compile for sm_90 without a GPU and print the shared-memory traffic of the read-back."""
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource
    from triton.runtime.jit import mangle_type

    desc = _descriptor(torch.zeros(2 * 16 * 4096 // 32, 32))  # a CPU tensor: only its type matters here
    names = _probe_kernel.arg_names
    sig = {"B_desc": mangle_type(desc), "out_ptr": "*fp32", "chunk_row": "i32", "ROWS": "constexpr",
           "WARPS": "constexpr", "ITEMS": "constexpr"}
    const = {"ROWS": ROWS, "WARPS": WARPS, "ITEMS": ITEMS}
    attrs = {(names.index("out_ptr"),): [["tt.divisibility", 16]]}
    kernel = triton.compile(GluonASTSource(_probe_kernel, sig, const, attrs), target=GPUTarget("cuda", 90, 32),
                            options=dict(num_warps=ROWS * WARPS))
    bin_dir = os.path.join(os.path.dirname(triton.__file__), "backends/nvidia/bin")
    path = "/tmp/gluon_tma_probe.cubin"
    with open(path, "wb") as f:
        f.write(kernel.asm["cubin"])
    sass = subprocess.run([bin_dir + "/cuobjdump", "-sass", path], capture_output=True, text=True).stdout
    lines = [line for line in sass.splitlines() if re.match(r"\s+/\*[0-9a-f]{4}\*/", line)]
    print("instructions", len(lines))
    for op in ("UTMALDG", "LDS", "STS", "BAR", "SYNCS", "STG"):
        hits = [line.split(";")[0].split("*/")[1].strip() for line in lines if re.search(r"\b" + op, line)]
        print(op, len(hits), hits[:4])
    with open("/tmp/gluon_tma_probe.ttgir", "w") as f:
        f.write(kernel.asm["ttgir"])


if __name__ == "__main__":
    if "--sass" in sys.argv:
        offline_sass()
    else:
        run_on_gpu()
