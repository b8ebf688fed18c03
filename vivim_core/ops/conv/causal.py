"""Causal depthwise conv1d: PyTorch implementations, and which implementation runs for which call.

x: (batch, dim, L); weight: (dim, width); bias: (dim,) or None. Output (batch, dim, L):
out[:, c, t] = bias[c] + sum_k weight[c, k] * x[:, c, t - (width - 1) + k], zero before the start.

Three entry points, by layout:

* `causal_conv1d_torch` (channel-major, the `torch` backend of `vivim_core.ops.causal_conv1d`): F.conv1d in eager
  mode; under torch.compile a sum of shifted, scaled copies (pointwise ops that Inductor fuses with the copies
  into scan order around them and the SiLU into one pass over memory).
* `causal_conv1d_tokens` (token-major, (batch, L, dim)): on CUDA in eager mode the Triton kernel of
  `causal_triton` (one pass along channels); otherwise the shifted sum.
* `causal_conv1d_in_scan_orders` (the model's token-major inference path): every scan branch's conv of x read in
  that branch's order. For inference on CUDA the Triton kernel reads x in each order as it convolves (a custom op
  under torch.compile); otherwise `causal_conv1d_in_scan_orders_by_copies` (copies into scan order, then the
  token-major conv).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..optional import optional_kernel
from ..scan.common import needs_grad
from ..scan_orders import ORDER_CODES, to_scan_order

ACTIVATIONS = (None, "silu", "swish")


def check_conv_args(x: Tensor, weight: Tensor, bias: Tensor | None, activation: str | None) -> None:
    if x.dim() != 3:
        raise ValueError(f"causal_conv1d: x must be (batch, dim, L), got shape {tuple(x.shape)}")
    if weight.dim() != 2 or weight.shape[0] != x.shape[1]:
        raise ValueError(f"causal_conv1d: weight must be (dim={x.shape[1]}, width), got {tuple(weight.shape)}")
    if bias is not None and bias.shape != (x.shape[1],):
        raise ValueError(f"causal_conv1d: bias must be ({x.shape[1]},), got {tuple(bias.shape)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"causal_conv1d: activation must be one of {ACTIVATIONS}, got {activation!r}")


def causal_conv1d_torch(x: Tensor, weight: Tensor, bias: Tensor | None = None, activation: str | None = None) -> Tensor:
    check_conv_args(x, weight, bias, activation)
    if torch.compiler.is_compiling():
        return causal_conv1d_shifts(x, weight, bias, activation)
    width = weight.shape[1]
    out = F.conv1d(x, weight.unsqueeze(1).to(x.dtype), None if bias is None else bias.to(x.dtype),
                   padding=width - 1, groups=x.shape[1])[..., : x.shape[-1]]
    return F.silu(out) if activation in ("silu", "swish") else out


def causal_conv1d_shifts(x: Tensor, weight: Tensor, bias: Tensor | None = None,
                         activation: str | None = None) -> Tensor:
    """The same function as a sum of `width` shifted, scaled copies of x, computed in float32.

    Used under torch.compile: these are pointwise ops, which Inductor fuses with the copies into scan order
    around them and the SiLU into one pass over memory. In eager mode it would be width passes over memory:
    F.conv1d is used.
    """
    return _shifted_sum(x, weight, bias, activation in ("silu", "swish"), tokens=False)


def _shifted_sum(x: Tensor, weight: Tensor, bias: Tensor | None, silu: bool, tokens: bool) -> Tensor:
    """sum_k weight[:, k] * x shifted by width - 1 - k steps (+ bias, SiLU), in float32, cast back to x's dtype.
    x: (batch, dim, L), or (batch, L, dim) with tokens."""
    width, time_dim = weight.shape[1], (1 if tokens else 2)
    length = x.shape[time_dim]
    padded = F.pad(x, (0, 0, width - 1, 0) if tokens else (width - 1, 0)).float()
    taps = weight.float() if tokens else weight.float()[:, None, :]  # channels broadcast along their own axis
    out = padded.narrow(time_dim, 0, length) * taps[..., 0]
    for k in range(1, width):
        out = out + padded.narrow(time_dim, k, length) * taps[..., k]
    if bias is not None:
        out = out + (bias.float() if tokens else bias.float()[:, None])
    return (F.silu(out) if silu else out).to(x.dtype)


def causal_conv1d_tokens(x: Tensor, weight: Tensor, bias: Tensor | None = None,
                         activation: str | None = None) -> Tensor:
    """The same convolution on token-major input: x (batch, L, dim) -> (batch, L, dim), token-major.

    Eager on CUDA: the Triton kernel reading and writing along channels, one pass. Otherwise (CPU, under
    torch.compile, or no Triton) a sum of shifted, scaled copies along L, in float32.
    """
    check_conv_args(x.transpose(1, 2), weight, bias, activation)
    silu = activation in ("silu", "swish")
    kernel = optional_kernel("causal_conv1d_orders") if x.is_cuda and not torch.compiler.is_compiling() else None
    if kernel is not None:
        return kernel(x, weight, bias, silu)  # one forward branch: the plain conv
    return _shifted_sum(x, weight, bias, silu, tokens=True)


def causal_conv1d_in_scan_orders(x: Tensor, weight: Tensor, bias: Tensor | None, branches: tuple[str, ...],
                                 clip_shape: tuple[int, int, int], activation: str | None = None) -> Tensor:
    """Each branch's causal conv of token-major x read in that branch's scan order, stacked along channels.

    x: (batch, L, dim), tokens of a clip of shape (T, H, W) in (T, H, W) order; weight (k*dim, width) and bias
    (k*dim,) stacked in branch order, k = len(branches) -> (batch, L, k*dim) token-major, branch i's channels
    [i*dim, (i+1)*dim) in its scan order (`scan_orders`). Inference on CUDA: one Triton pass that reads x in each
    order as it convolves (a custom op under torch.compile). Otherwise `causal_conv1d_in_scan_orders_by_copies`.
    """
    fused = x.is_cuda and not needs_grad(x, weight, bias) and len(branches) <= 3
    if fused and optional_kernel("causal_conv1d_orders") is not None:
        silu = activation in ("silu", "swish")
        orders = [ORDER_CODES[b] for b in branches]
        if torch.compiler.is_compiling():
            return torch.ops.vivim.causal_conv1d_orders(x, weight, bias, silu, orders, clip_shape[0])
        return optional_kernel("causal_conv1d_orders")(x, weight, bias, silu, orders, clip_shape[0])
    return causal_conv1d_in_scan_orders_by_copies(x, weight, bias, branches, clip_shape, activation)


def causal_conv1d_in_scan_orders_by_copies(x: Tensor, weight: Tensor, bias: Tensor | None,
                                           branches: tuple[str, ...], clip_shape: tuple[int, int, int],
                                           activation: str | None = None) -> Tensor:
    """`causal_conv1d_in_scan_orders` as copies of x into each scan order, then `causal_conv1d_tokens` (training,
    the CPU, no Triton)."""
    xs = torch.cat([to_scan_order(x, b, clip_shape, dim=1) for b in branches], dim=2)
    return causal_conv1d_tokens(xs, weight, bias, activation)


# torch.compile: the Triton kernel as an opaque custom op (Inductor's own fusion of the copies into scan order with
# the shifted-sum conv moves several times the bytes of the one-pass kernel).
@torch.library.custom_op("vivim::causal_conv1d_orders", mutates_args=())
def causal_conv1d_orders_op(x: Tensor, weight: Tensor, bias: Tensor | None, silu: bool, orders: list[int],
                            frames: int) -> Tensor:
    """`conv.causal_triton.causal_conv1d_orders_triton` as `torch.ops.vivim.causal_conv1d_orders` (inference)."""
    return optional_kernel("causal_conv1d_orders")(x, weight, bias, silu, orders, frames)


@causal_conv1d_orders_op.register_fake
def _(x, weight, bias, silu, orders, frames):
    return x.new_empty(x.shape[0], x.shape[1], len(orders) * x.shape[2])
