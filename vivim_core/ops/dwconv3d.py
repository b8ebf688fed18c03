"""Depthwise 3x3x3 convolution of a channels-last clip, followed by GELU: the DSF's middle.

    x: (B, T, H, W, C); weight: (C, 1, 3, 3, 3) as nn.Conv3d stores it; bias: (C,)
    -> GELU(conv(x) + bias): (B, T, H, W, C)

Same function as nn.Conv3d(C, C, 3, padding=1, groups=C) on (B, C, T, H, W) then GELU, without the
layout transposes. Two implementations:

* on CUDA without autograd (inference), a fused Triton kernel: each input element read about once (the 27
  neighbours come from cache), each output written once, bias and GELU applied in registers;
* otherwise (CPU, training), three depthwise 3x3 convolutions of every frame, one per temporal tap, added
  with a shift in time. Both cuDNN's grouped 3-D kernel and a 2-D kernel with 3 outputs per channel are
  several times slower on GPUs than PyTorch's depthwise (one output per channel) kernel used here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import needs_grad
from ._optional import optional_kernel


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


def depthwise_conv3d_gelu(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """GELU(depthwise 3x3x3 conv(x) + bias) on a (B, T, H, W, C) clip; see the module docstring."""
    if x.is_cuda and not needs_grad(x, weight, bias):
        kernel = _triton_kernel()
        if kernel is not None:
            if torch.compiler.is_compiling():  # an opaque op keeps the compiled graph whole
                return torch.ops.vivim.dwconv3d_gelu_triton(x, weight, bias)
            return kernel(x, weight, bias)
    return depthwise_conv3d_gelu_torch(x, weight, bias)


def _triton_kernel():
    return optional_kernel("dwconv3d_triton", "depthwise_conv3d_gelu_triton")
