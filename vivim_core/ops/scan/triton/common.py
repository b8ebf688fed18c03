"""Triton pieces shared by the scan kernels (`chunk`, `rows`, `one_pass`), and compiled as Gluon by the Gluon
kernels (`gluon.jit(fn.fn)`). Imported only with them.

The element-wise functions with "approx" in their name run on the GPU's special-function unit (one instruction
each, subnormal results flushed to zero): Triton's precise exp and log cost ~25 instructions, which dominated the
inference kernels' instruction count. Under Triton's CPU interpreter (TRITON_INTERPRET=1, used by the tests on
machines without a GPU) they fall back to Triton's own exp2 and log2, since the interpreter runs no PTX.
"""

from __future__ import annotations

import os

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


@triton.jit
def softplus(x):
    """log(1 + e^x) (x itself above 20, as PyTorch's softplus), with Triton's precise exp and log."""
    return tl.where(x > 20.0, x, tl.log(1.0 + tl.exp(x)))


if os.environ.get("TRITON_INTERPRET") == "1":  # Triton's CPU interpreter runs no PTX

    @triton.jit
    def exp2_approx(x):
        return tl.exp2(x)

    @triton.jit
    def log2_approx(x):
        return tl.log2(x)

else:

    @triton.jit
    def exp2_approx(x):
        """2^x on the special-function unit, subnormal results flushed to zero (one instruction)."""
        return tl.inline_asm_elementwise("ex2.approx.ftz.f32 $0, $1;", "=r,r", [x], dtype=tl.float32,
                                         is_pure=True, pack=1)

    @triton.jit
    def log2_approx(x):
        """log2(x) on the special-function unit (one instruction)."""
        return tl.inline_asm_elementwise("lg2.approx.ftz.f32 $0, $1;", "=r,r", [x], dtype=tl.float32,
                                         is_pure=True, pack=1)


@triton.jit
def softplus_approx(x):
    """log(1 + e^x) from the approximate exp2 and log2 (x itself above 20, as PyTorch's softplus)."""
    return tl.where(x > 20.0, x, 0.6931471805599453 * log2_approx(1.0 + exp2_approx(x * 1.4426950408889634)))


@triton.jit
def silu_gate(y, z):
    """y * silu(z) = y z / (1 + e^-z)."""
    return y * z / (1.0 + exp2_approx(z * -1.4426950408889634))


@triton.jit
def split_columns(values):
    """(R, 4) values, the 4 inside each thread -> its 4 columns as (R,) tensors."""
    even, odd = tl.split(tl.reshape(values, (values.shape[0], 2, 2)))
    c0, c2 = tl.split(even)
    c1, c3 = tl.split(odd)
    return c0, c1, c2, c3


@triton.jit
def join_columns(c0, c1, c2, c3):
    """Four (R,) columns -> one (R, 4) tensor (the inverse of `split_columns`)."""
    return tl.reshape(tl.join(tl.join(c0, c2), tl.join(c1, c3)), (c0.shape[0], 4))
