"""Temporal Mamba block: ST-Mamba (spatiotemporal selective scan) + DSF (detail-specific feed-forward).

    h = h + ST-Mamba(LN(h));   h = h + DSF(LN(h))        h: (B, T*H*W, C) tokens of a whole clip

ST-Mamba flattens the clip's tokens into one sequence of length L = T*H*W in (T, H, W) order. One shared
input projection gives x and the gate z. Each scan branch has its own causal depthwise conv1d, x_proj,
dt_proj, A_log and D (Mamba v1 parameterisation) and reads the sequence in its own order:

    forward   (T, H, W) order
    backward  the same sequence reversed
    spatial   (H, W, T) order: each pixel's T frames are consecutive (any T >= 1)

Each branch output is gated by SiLU(z), the branches are averaged, then one output projection. Every branch
gates a token with that token's own z, so the gate is applied once, after the branches are summed back into
token order: silu(z) * sum_b y_b equals sum_b silu(z) * y_b, without reordering z three times or gating inside
each scan. `SpatioTemporalMamba.gate_after_branches` chooses: after the sum on the CPU and under torch.compile
(Inductor fuses the gate into the sum); inside the scans in eager CUDA, as mamba_ssm.Mamba does (the kernels gate in
registers, where gating after the sum would be separate passes over memory).

Two memory layouts, the same function: channel-major (B, D, L), Mamba's, used for training and on the CPU; and
token-major (B, L, D), used for inference on CUDA with our scan kernels (`SpatioTemporalMamba.layout`). There the
row scan kernel's neighbouring threads read neighbouring channels (coalesced loads; see `vivim_core.ops.scan.policy`),
and the input projection's output needs no transposes. `channel_scan_arguments` and `token_scan_arguments` build
the scan's arguments of each layout (the scan benchmark times exactly these calls). Parameter names are those of `mamba_ssm.Mamba` (forward branch: conv1d, x_proj, dt_proj, A_log,
D) with suffixes _b and _s for the other branches (A_b_log, A_s_log), as in the official code, so weights move
both ways.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import SCAN_BRANCHES
from ..ops import causal_conv1d, chosen_backend, selective_scan
from ..ops.conv.causal import causal_conv1d_in_scan_orders
from ..ops.conv.dwconv3d import depthwise_conv3d_gelu
from ..ops.scan_orders import from_scan_order, to_scan_order
from .layers import DropPath

BRANCH_SUFFIX = {"forward": "", "backward": "_b", "spatial": "_s"}


def a_log_name(suffix: str) -> str:
    """A_log, A_b_log, A_s_log: the official code's names (the suffix sits inside; older checkpoints of ours,
    with A_log_b / A_log_s, are renamed on load by `vivim_core.model.legacy_names`)."""
    return f"A{suffix}_log"


class SpatioTemporalMamba(nn.Module):
    """ST-Mamba mixer. forward(x (B, L, C), clip_shape (T, H, W)) -> (B, L, C), L = T*H*W."""

    # "auto": token-major for inference on CUDA when our scan kernels serve it (backend "triton"), else
    # channel-major; "tokens" or "channels" forces one (tests set it on an instance).
    layout = "auto"
    # None: after the branch sum on the CPU and under torch.compile, inside the scans in eager CUDA (see the module
    # docstring); True or False forces one (tests).
    gate_after_branches: bool | None = None

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | str = "auto",
        branches: tuple[str, ...] = SCAN_BRANCHES,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init_floor: float = 1e-4,
        conv_bias: bool = True,
        bias: bool = False,
    ):
        super().__init__()
        if not branches:
            raise ValueError("SpatioTemporalMamba needs at least one scan branch")
        self.d_model, self.d_state, self.d_conv = d_model, d_state, d_conv
        self.d_inner = expand * d_model
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        self.branches = tuple(branches)
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=bias)
        for branch in self.branches:
            self._add_branch(BRANCH_SUFFIX[branch], conv_bias, dt_min, dt_max, dt_init_floor)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)
        self.conv1d_bias = conv_bias

    def _add_branch(self, suffix: str, conv_bias: bool, dt_min: float, dt_max: float, dt_floor: float) -> None:
        """One scan branch's parameters, initialised as mamba_ssm.Mamba initialises its own."""
        d_inner, n = self.d_inner, self.d_state
        conv = nn.Conv1d(d_inner, d_inner, self.d_conv, groups=d_inner, padding=self.d_conv - 1, bias=conv_bias)
        x_proj = nn.Linear(d_inner, self.dt_rank + 2 * n, bias=False)
        dt_proj = nn.Linear(self.dt_rank, d_inner, bias=True)
        # dt projection: weights keep the variance of dt, bias puts softplus(bias) in [dt_min, dt_max].
        std = self.dt_rank**-0.5
        nn.init.uniform_(dt_proj.weight, -std, std)
        dt = torch.exp(torch.rand(d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=dt_floor)
        with torch.no_grad():
            dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        dt_proj.bias._no_reinit = True
        # S4D-real A = -(1..N) per channel, stored as log; D skip = 1. Both kept in fp32, no weight decay.
        A_log = nn.Parameter(torch.log(torch.arange(1, n + 1, dtype=torch.float32)).repeat(d_inner, 1))
        D = nn.Parameter(torch.ones(d_inner))
        A_log._no_weight_decay = True
        D._no_weight_decay = True
        self.add_module("conv1d" + suffix, conv)
        self.add_module("x_proj" + suffix, x_proj)
        self.add_module("dt_proj" + suffix, dt_proj)
        self.register_parameter(a_log_name(suffix), A_log)
        self.register_parameter("D" + suffix, D)

    def _stacked(self, name: str, attribute: str | None = None) -> Tensor:
        """A per-branch parameter (e.g. 'A_log', or 'conv1d' + 'weight') of every branch, concatenated along
        its first (channel) axis in branch order."""
        names = [a_log_name(BRANCH_SUFFIX[b]) if name == "A_log" else name + BRANCH_SUFFIX[b] for b in self.branches]
        parts = [getattr(self, n) for n in names]
        if attribute is not None:
            parts = [getattr(p, attribute) for p in parts]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)

    def scan_branches(self, x: Tensor, z: Tensor | None = None) -> Tensor:
        """All branches at once on sequences already in their scan orders, stacked along channels.

        x, z: (B, k*d_inner, L), branch i in channels [i*d_inner, (i+1)*d_inner) -> (B, k*d_inner, L), gated by
        silu(z) when z is given.
        Each branch keeps its own conv1d, x_proj, dt_proj, A_log and D: the convs and projections run as
        grouped convolutions (k groups) and the scan sees B and C as k groups, so one launch of each kernel
        serves every branch.
        """
        conv_bias = self._stacked("conv1d", "bias") if self.conv1d_bias else None
        x = causal_conv1d(x, self._stacked("conv1d", "weight").squeeze(1), conv_bias, activation="silu")
        return selective_scan(**self.channel_scan_arguments(x, z))

    def channel_scan_arguments(self, x: Tensor, z: Tensor | None = None) -> dict:
        """The `selective_scan` keyword arguments of `scan_branches` for x after the convs: x, z (B, k*d_inner, L)
        -> u, delta (B, k*d_inner, L); A (k*d_inner, N) float32; B, C (B, k, N, L) views of the projection; D,
        delta_bias (k*d_inner,) float32; z; delta_softplus."""
        k, d_inner, n, r = len(self.branches), self.d_inner, self.d_state, self.dt_rank
        batch, _, length = x.shape
        # Per-branch projections as one batched matmul (k branches x batch): cuDNN's grouped 1x1 convolutions
        # cost two layout conversions each on the GPU.
        x_dbl = torch.matmul(self._stacked("x_proj", "weight").view(k, r + 2 * n, d_inner),
                             x.view(batch, k, d_inner, length))  # (B, k, r+2N, L)
        dt = torch.matmul(self._stacked("dt_proj", "weight").view(k, d_inner, r), x_dbl[:, :, :r])
        dt = dt.view(batch, k * d_inner, length)  # the bias goes in as delta_bias
        A = -torch.exp(self._stacked("A_log").float())  # (k*d_inner, N)
        return dict(u=x, delta=dt, A=A, B=x_dbl[:, :, r : r + n], C=x_dbl[:, :, r + n :], D=self._stacked("D").float(),
                    z=z, delta_bias=self._stacked("dt_proj", "bias").float(), delta_softplus=True)

    def uses_token_layout(self, hidden: Tensor) -> bool:
        """Whether this call runs token-major (see `layout`)."""
        if self.layout != "auto":
            return self.layout == "tokens"
        return hidden.is_cuda and not torch.is_grad_enabled() and chosen_backend("scan", True) == "triton"

    def _token_projection(self) -> Tensor:
        """Every branch's x_proj as one (k*d_inner, P) matrix for token-major x: columns [B of each branch | C
        of each | dt of each | zeros], block-diagonal per branch; P is padded to a multiple of 8 so that each
        token's row, and each branch's B and C in it, start 16-byte aligned (the row kernel's vector loads)."""
        n, r = self.d_state, self.dt_rank
        weights = [getattr(self, "x_proj" + BRANCH_SUFFIX[b]).weight for b in self.branches]  # (r + 2N, d)
        columns = (slice(r, r + n), slice(r + n, None), slice(0, r))  # B, C, dt rows of each x_proj weight
        parts = [torch.block_diag(*[w[rows].T for w in weights]) for rows in columns]
        pad = -sum(p.shape[1] for p in parts) % 8
        if pad:
            parts.append(weights[0].new_zeros(parts[0].shape[0], pad))
        return torch.cat(parts, dim=1)

    def convolved_in_scan_orders(self, x: Tensor, clip_shape: tuple[int, int, int]) -> Tensor:
        """Token-major x (B, L, d_inner) in (T, H, W) order -> (B, L, k*d_inner): branch i's causal conv1d and
        SiLU of x read in its scan order, in channels [i*d_inner, (i+1)*d_inner). One Triton pass on CUDA
        inference (`causal_conv1d_in_scan_orders`)."""
        conv_bias = self._stacked("conv1d", "bias") if self.conv1d_bias else None
        weight = self._stacked("conv1d", "weight").squeeze(1)
        return causal_conv1d_in_scan_orders(x, weight, conv_bias, self.branches, clip_shape, activation="silu")

    def scan_branches_tokens(self, x: Tensor, z: Tensor | None = None) -> Tensor:
        """`scan_branches` on token-major tensors, after the convs: x (B, L, k*d_inner) from
        `convolved_in_scan_orders`, z (B, L, k*d_inner) in scan orders or None; branch i in channels
        [i*d_inner, (i+1)*d_inner) -> (B, L, k*d_inner), gated by silu(z) when z is given. The tensors reach
        the scan as (B, k*d_inner, L) views of token-major memory."""
        return selective_scan(**self.token_scan_arguments(x, z)).transpose(1, 2)

    def token_scan_arguments(self, x: Tensor, z: Tensor | None = None) -> dict:
        """The `selective_scan` keyword arguments of `scan_branches_tokens`: x, z (B, L, k*d_inner) -> u, delta, z
        as (B, k*d_inner, L) views of token-major memory; B, C (B, k, N, L) views of the projection; A, D,
        delta_bias float32; delta_softplus."""
        k, n, r = len(self.branches), self.d_state, self.dt_rank
        x_dbl = torch.matmul(x, self._token_projection())  # (B, L, P)
        # dt from the dt columns and the zero padding after them, times zero rows: the same product, with K a
        # multiple of 8 (16-byte rows). With K = k*r = 12 (vivim-b3, stage 1) cuBLAS took an align-2 kernel.
        dt_columns = x_dbl[..., 2 * k * n :]
        dt_weights = [getattr(self, "dt_proj" + BRANCH_SUFFIX[b]).weight.T for b in self.branches]  # (r, d)
        dt_projection = torch.block_diag(*dt_weights)  # (k*r, k*d_inner)
        dt_projection = F.pad(dt_projection, (0, 0, 0, dt_columns.shape[-1] - k * r))
        dt = torch.matmul(dt_columns, dt_projection)
        B = x_dbl[..., : k * n].unflatten(-1, (k, n)).permute(0, 2, 3, 1)  # (B, k, N, L) views
        C = x_dbl[..., k * n : 2 * k * n].unflatten(-1, (k, n)).permute(0, 2, 3, 1)
        A = -torch.exp(self._stacked("A_log").float())
        return dict(u=x.transpose(1, 2), delta=dt.transpose(1, 2), A=A, B=B, C=C, D=self._stacked("D").float(),
                    z=None if z is None else z.transpose(1, 2), delta_bias=self._stacked("dt_proj", "bias").float(),
                    delta_softplus=True)

    def gates_after_sum(self, on_cuda: bool) -> bool:
        """Whether SiLU(z) is applied once after the branch sum (else inside each branch's scan); see
        `gate_after_branches`. Under torch.compile this is decided while tracing, and the graph keeps it."""
        if self.gate_after_branches is not None:
            return self.gate_after_branches
        return not on_cuda or torch.compiler.is_compiling()

    def forward(self, hidden: Tensor, clip_shape: tuple[int, int, int]) -> Tensor:
        batch, length, _ = hidden.shape
        if length != math.prod(clip_shape):
            raise ValueError(f"ST-Mamba got {length} tokens for a clip of shape (T, H, W) = {clip_shape}")
        tokens = self.uses_token_layout(hidden)
        if tokens:
            x, z = self.in_proj(hidden).chunk(2, dim=-1)  # (B, L, d_inner) each
        else:
            x, z = self.in_proj(hidden).transpose(1, 2).chunk(2, dim=1)  # (B, d_inner, L) each
        seq, channels = (1, 2) if tokens else (2, 1)  # the sequence and channel axes
        gate_after = self.gates_after_sum(hidden.is_cuda)
        zs = None if gate_after else torch.cat([to_scan_order(z, b, clip_shape, seq) for b in self.branches],
                                               dim=channels)
        if tokens:  # the convs read x in each scan order themselves
            ys = self.scan_branches_tokens(self.convolved_in_scan_orders(x, clip_shape), zs)
        else:
            xs = torch.cat([to_scan_order(x, b, clip_shape, seq) for b in self.branches], dim=channels)
            ys = self.scan_branches(xs, zs)
        ys = ys.split(self.d_inner, dim=channels)
        total = from_scan_order(ys[0], self.branches[0], clip_shape, seq)
        for y, branch in zip(ys[1:], self.branches[1:]):
            total = total + from_scan_order(y, branch, clip_shape, seq)
        if gate_after:  # in float32, as the scans gate
            total = (total.float() * F.silu(z.float())).to(total.dtype)
        total = total / len(self.branches)
        return self.out_proj(total if tokens else total.transpose(1, 2))


class DetailSpecificFeedForward(nn.Module):
    """DSF: Linear (x ratio) -> 3x3x3 depthwise Conv3d over (T, H, W) -> GELU -> Linear.

    forward(x (B, T*H*W, C), clip_shape) -> (B, T*H*W, C).
    """

    def __init__(self, dim: int, ratio: int = 4):
        super().__init__()
        hidden = dim * ratio
        self.dense1 = nn.Linear(dim, hidden)
        self.dwconv = nn.Conv3d(hidden, hidden, 3, 1, 1, groups=hidden)  # parameters; applied channels-last
        self.dense2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor, clip_shape: tuple[int, int, int]) -> Tensor:
        b, length, _ = x.shape
        x = self.dense1(x).reshape(b, *clip_shape, -1)
        x = depthwise_conv3d_gelu(x, self.dwconv.weight, self.dwconv.bias)  # channels-last, no transposes
        return self.dense2(x.reshape(b, length, -1))


class TemporalMambaBlock(nn.Module):
    """h = h + ST-Mamba(LN(h)); h = h + DSF(LN(h)). forward((B, T*H*W, C), (T, H, W)) -> same shape."""

    def __init__(self, dim: int, branches: tuple[str, ...], d_state: int, d_conv: int, expand: int,
                 dsf_ratio: int, drop_path: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.mamba = SpatioTemporalMamba(dim, d_state=d_state, d_conv=d_conv, expand=expand, branches=branches)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.dsf = DetailSpecificFeedForward(dim, dsf_ratio)

    def forward(self, x: Tensor, clip_shape: tuple[int, int, int]) -> Tensor:
        x = x + self.drop_path(self.mamba(self.norm1(x), clip_shape))
        return x + self.drop_path(self.dsf(self.norm2(x), clip_shape))
