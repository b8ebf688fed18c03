"""Triton pieces shared by the scan kernels (`scan_triton`, `scan_triton_rows`, `scan_triton_onepass`,
`scan_triton_warps`). Imported only with them."""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def skip_and_bias(D_ptr, bias_ptr, d, HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr):
    """Channel d's skip weight D_d and dt bias, as float32 (0.0 for an input not given)."""
    skip = 0.0
    if HAS_D:
        skip = tl.load(D_ptr + d).to(tl.float32)
    bias = 0.0
    if HAS_BIAS:
        bias = tl.load(bias_ptr + d).to(tl.float32)
    return skip, bias


@triton.jit
def recurrence_combine(a_left, x_left, a_right, x_right):
    """Combine for `tl.associative_scan` over the linear recurrence h -> a h + x:
    (a_l, x_l) then (a_r, x_r) is h -> a_r (a_l h + x_l) + x_r."""
    return a_left * a_right, a_right * x_left + x_right
