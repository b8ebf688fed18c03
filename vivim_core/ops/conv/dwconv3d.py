"""Depthwise 3x3x3 convolution of a channels-last clip, followed by GELU: the DSF's middle.

    x: (B, T, H, W, C); weight: (C, 1, 3, 3, 3) as nn.Conv3d stores it; bias: (C,)
    -> GELU(conv(x) + bias): (B, T, H, W, C)

Same function as nn.Conv3d(C, C, 3, padding=1, groups=C) on (B, C, T, H, W) then GELU, without the layout
transposes. Which implementation runs:

* on CUDA without autograd (inference), a fused Triton kernel (`dwconv3d_triton`): each input element read about
  once (the 27 neighbours come from cache), each output written once, bias and GELU applied in registers; the
  bf16 kernel for bfloat16 clips with an even number of channels and frames of at least BF16_MIN_PLANE pixels,
  the generic kernel otherwise; a custom op under torch.compile;
* otherwise (CPU, training), three depthwise 3x3 convolutions of every frame, one per temporal tap, added with a
  shift in time. Both cuDNN's grouped 3-D kernel and a 2-D kernel with 3 outputs per channel are several times
  slower on GPUs than PyTorch's depthwise (one output per channel) kernel used here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..optional import optional_kernel
from ..scan.common import needs_grad

# Frames (H x W pixels) from which bfloat16 clips take the bf16 kernel; the generic kernel is faster on smaller ones
# (chosen with benchmarks/tune_dwconv3d.py at vivim-b3's four stages).
BF16_MIN_PLANE = 1024


def depthwise_conv3d_gelu_torch(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    b, t, h, w, c = x.shape
    frames = x.reshape(b * t, h, w, c).permute(0, 3, 1, 2).contiguous()  # (B*T, C, H, W)
    taps = [F.conv2d(frames, weight[:, :, k], None, padding=1, groups=c).view(b, t, c, h, w) for k in range(3)]
    out = taps[1]  # tap k multiplies frame t + k - 1
    if t > 1:
        out = out + F.pad(taps[0][:, :-1], (0, 0, 0, 0, 0, 0, 1, 0)) + F.pad(taps[2][:, 1:], (0, 0, 0, 0, 0, 0, 0, 1))
    if bias is not None:
        out = out + bias.view(1, 1, c, 1, 1)
    return F.gelu(out.permute(0, 1, 3, 4, 2))  # (B, T, H, W, C), channels-last memory


def triton_kernel_for(x: Tensor) -> str:
    """Which Triton kernel takes this CUDA clip: "dwconv3d_gelu_bf16" or "dwconv3d_gelu_generic"."""
    _, _, h, w, c = x.shape
    bf16 = x.dtype == torch.bfloat16 and c % 2 == 0 and h * w >= BF16_MIN_PLANE
    return "dwconv3d_gelu_bf16" if bf16 else "dwconv3d_gelu_generic"


def depthwise_conv3d_gelu(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """GELU(depthwise 3x3x3 conv(x) + bias) on a (B, T, H, W, C) clip; see the module docstring."""
    if x.is_cuda and not needs_grad(x, weight, bias):
        kernel = optional_kernel(triton_kernel_for(x))
        if kernel is not None:
            if torch.compiler.is_compiling():  # an opaque op keeps the compiled graph whole
                return torch.ops.vivim.dwconv3d_gelu(x, weight, bias)
            return kernel(x, weight, bias)
    return depthwise_conv3d_gelu_torch(x, weight, bias)


# torch.compile: the fused kernels as an opaque custom op, so the graph around them is not broken.
@torch.library.custom_op("vivim::dwconv3d_gelu", mutates_args=())
def dwconv3d_gelu_op(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """The Triton kernel `triton_kernel_for(x)` as `torch.ops.vivim.dwconv3d_gelu` (inference only)."""
    return optional_kernel(triton_kernel_for(x))(x, weight, bias)


@dwconv3d_gelu_op.register_fake
def _(x, weight, bias):
    return torch.empty(x.shape, dtype=x.dtype, device=x.device)
