"""Triton pieces shared by the scan kernels (`scan_triton`, `scan_triton_rows`, `scan_triton_onepass`). Imported
only with them."""

from __future__ import annotations

import triton
import triton.language as tl  # noqa: F401  (Triton's CPU interpreter looks it up when jit functions call these)


@triton.jit
def recurrence_combine(a_left, x_left, a_right, x_right):
    """Combine for `tl.associative_scan` over the linear recurrence h -> a h + x:
    (a_l, x_l) then (a_r, x_r) is h -> a_r (a_l h + x_l) + x_r."""
    return a_left * a_right, a_right * x_left + x_right
