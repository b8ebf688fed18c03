"""ST-Mamba: the three-branch mixer equals an explicit per-branch computation; Mamba naming and init kept."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vivim_core.config import SCAN_BRANCHES
from vivim_core.model.temporal_mamba import BRANCH_SUFFIX, SpatioTemporalMamba, from_scan_order, to_scan_order
from vivim_core.ops import use_backends
from vivim_core.ops.scan.reference import selective_scan_reference


def scan_order_indices(branch: str, t: int, h: int, w: int) -> torch.Tensor:
    """Token index (in (T, H, W) order) visited at each step of the branch's scan, built independently."""
    tokens = torch.arange(t * h * w).reshape(t, h, w)
    if branch == "forward":
        return tokens.flatten()
    if branch == "backward":
        return tokens.flatten().flip(0)
    return tokens.permute(1, 2, 0).flatten()  # (H, W, T): each pixel's frames consecutive


def explicit_st_mamba(module: SpatioTemporalMamba, hidden: torch.Tensor, clip_shape) -> torch.Tensor:
    """ST-Mamba written out branch by branch with index gathers and the sequential reference scan."""
    xz = hidden @ module.in_proj.weight.T  # (B, L, 2*d_inner)
    x, z = xz.split(module.d_inner, dim=-1)
    outputs = []
    for branch in module.branches:
        s = BRANCH_SUFFIX[branch]
        order = scan_order_indices(branch, *clip_shape)
        xb, zb = x[:, order].transpose(1, 2), z[:, order].transpose(1, 2)  # (B, d_inner, L)
        conv = getattr(module, "conv1d" + s)
        xb = F.silu(F.conv1d(F.pad(xb, (module.d_conv - 1, 0)), conv.weight, conv.bias, groups=module.d_inner))
        proj = xb.transpose(1, 2) @ getattr(module, "x_proj" + s).weight.T
        dt, B, C = proj.split([module.dt_rank, module.d_state, module.d_state], dim=-1)
        dt_proj = getattr(module, "dt_proj" + s)
        delta = (dt @ dt_proj.weight.T).transpose(1, 2)
        y = selective_scan_reference(xb, delta, -torch.exp(getattr(module, f"A{s}_log")), B.transpose(1, 2),
                                     C.transpose(1, 2), getattr(module, "D" + s), zb, dt_proj.bias, True)
        restored = torch.empty_like(y)
        restored[:, :, order] = y  # step i of the scan belongs to token order[i]
        outputs.append(restored)
    return (sum(outputs) / len(outputs)).transpose(1, 2) @ module.out_proj.weight.T


@pytest.mark.parametrize("clip_shape", [(1, 2, 3), (3, 2, 2), (5, 4, 4), (7, 1, 3)])
@pytest.mark.parametrize("branches", [SCAN_BRANCHES, ("forward",), ("forward", "backward"), ("spatial",)])
@pytest.mark.parametrize("layout", ["channels", "tokens"])
@pytest.mark.parametrize("gate_after_branches", [True, False])
def test_st_mamba_equals_explicit_per_branch_computation(clip_shape, branches, layout, gate_after_branches):
    module = SpatioTemporalMamba(d_model=12, d_state=4, branches=branches)
    module.layout = layout  # channel-major (B, D, L) or token-major (B, L, D) all the way to the scan
    module.gate_after_branches = gate_after_branches  # silu(z) once after the branch sum, or inside each scan
    hidden = torch.randn(2, math.prod(clip_shape), 12)
    expected = explicit_st_mamba(module, hidden, clip_shape)
    for backend in ("reference", "chunked"):
        with use_backends(scan=backend):
            out = module(hidden, clip_shape)
        assert torch.allclose(out, expected, rtol=1e-4, atol=1e-5), backend


def test_gate_placement_default_follows_device_and_compilation(monkeypatch):
    """None: after the branch sum on the CPU and while torch.compile traces, inside the scans in eager CUDA;
    an explicit setting wins."""
    module = SpatioTemporalMamba(d_model=12, d_state=4)
    assert module.gates_after_sum(on_cuda=False)
    assert not module.gates_after_sum(on_cuda=True)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert module.gates_after_sum(on_cuda=True)
    module.gate_after_branches = False
    assert not module.gates_after_sum(on_cuda=True) and not module.gates_after_sum(on_cuda=False)


@pytest.mark.parametrize("d_model", [12, 64])  # dt_rank 1 and 4: the projection's zero padding differs
def test_token_projection_holds_every_branch_x_proj(d_model):
    module = SpatioTemporalMamba(d_model=d_model, d_state=4)
    x = torch.randn(5, 3 * module.d_inner)
    W = module._token_projection()
    k, n, r = 3, module.d_state, module.dt_rank
    assert W.shape[1] % 8 == 0 and W.shape[1] >= k * (r + 2 * n)
    out = x @ W
    for i, suffix in enumerate(("", "_b", "_s")):
        own = x[:, i * module.d_inner : (i + 1) * module.d_inner] @ getattr(module, "x_proj" + suffix).weight.T
        dt, B, C = own.split([r, n, n], dim=-1)
        assert torch.allclose(out[:, i * n : (i + 1) * n], B, atol=1e-5)
        assert torch.allclose(out[:, k * n + i * n : k * n + (i + 1) * n], C, atol=1e-5)
        assert torch.allclose(out[:, 2 * k * n + i * r : 2 * k * n + (i + 1) * r], dt, atol=1e-5)
    assert not out[:, k * (r + 2 * n) :].any()  # padding columns are zero


def test_token_layout_is_chosen_for_inference_on_cuda_only():
    module = SpatioTemporalMamba(d_model=12, d_state=4)
    hidden = torch.randn(1, 6, 12)
    assert not module.uses_token_layout(hidden)  # CPU
    with torch.no_grad():
        assert not module.uses_token_layout(hidden)


@pytest.mark.parametrize("branch", SCAN_BRANCHES)
def test_scan_order_round_trip(branch):
    x = torch.randn(2, 3, 4 * 5 * 6)
    assert torch.equal(from_scan_order(to_scan_order(x, branch, (4, 5, 6)), branch, (4, 5, 6)), x)
    order = scan_order_indices(branch, 4, 5, 6)
    assert torch.equal(to_scan_order(x, branch, (4, 5, 6)), x[:, :, order])
    tokens = x.transpose(1, 2).contiguous()  # token-major (B, L, D): the sequence on axis 1
    assert torch.equal(to_scan_order(tokens, branch, (4, 5, 6), dim=1), tokens[:, order])
    assert torch.equal(from_scan_order(to_scan_order(tokens, branch, (4, 5, 6), 1), branch, (4, 5, 6), 1), tokens)


def test_forward_branch_has_mamba_ssm_parameter_names_and_shapes():
    module = SpatioTemporalMamba(d_model=64, d_state=16, d_conv=4, expand=2, branches=("forward",))
    shapes = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    d_inner, dt_rank = 128, 4
    assert shapes == {  # mamba_ssm.Mamba(d_model=64).state_dict() (bias=False, conv_bias=True)
        "in_proj.weight": (2 * d_inner, 64),
        "conv1d.weight": (d_inner, 1, 4),
        "conv1d.bias": (d_inner,),
        "x_proj.weight": (dt_rank + 32, d_inner),
        "dt_proj.weight": (d_inner, dt_rank),
        "dt_proj.bias": (d_inner,),
        "A_log": (d_inner, 16),
        "D": (d_inner,),
        "out_proj.weight": (64, d_inner),
    }
    full = SpatioTemporalMamba(d_model=64)
    for suffix in ("_b", "_s"):
        for name in ("conv1d", "x_proj", "dt_proj"):
            assert f"{name}{suffix}.weight" in full.state_dict()
        assert f"A{suffix}_log" in full.state_dict() and f"D{suffix}" in full.state_dict()


def test_weights_move_to_and_from_mamba_ssm_when_installed():
    mamba_ssm = pytest.importorskip("mamba_ssm", reason="mamba-ssm not installed (the [cuda] extra)")
    ours = SpatioTemporalMamba(d_model=32, branches=("forward",))
    theirs = mamba_ssm.Mamba(d_model=32)
    theirs.load_state_dict(ours.state_dict())
    ours.load_state_dict(theirs.state_dict())


def test_mamba_initialisation_is_kept_inside_a_built_model():
    from vivim_core.model import build_model

    model = build_model("vivim-tiny")
    mixer = model.stages[0].temporal_blocks[0].mamba
    for suffix in ("", "_b", "_s"):
        dt = F.softplus(getattr(mixer, "dt_proj" + suffix).bias)
        assert dt.min() >= 1e-4 - 1e-7 and dt.max() <= 0.1 + 1e-6  # Mamba's dt range, not zeros
        assert torch.allclose(getattr(mixer, f"A{suffix}_log"), torch.log(torch.arange(1, 17.0)).expand(mixer.d_inner, 16))
        bound = mixer.dt_rank ** -0.5
        assert getattr(mixer, "dt_proj" + suffix).weight.abs().max() <= bound


@pytest.mark.parametrize("frames", [1, 2, 5])
def test_channels_last_depthwise_conv_equals_conv3d_then_gelu(frames):
    from vivim_core.ops.conv.dwconv3d import depthwise_conv3d_gelu

    conv = torch.nn.Conv3d(6, 6, 3, padding=1, groups=6)
    x = torch.randn(2, frames, 4, 5, 6)  # (B, T, H, W, C)
    expected = F.gelu(conv(x.permute(0, 4, 1, 2, 3))).permute(0, 2, 3, 4, 1)
    assert torch.allclose(depthwise_conv3d_gelu(x, conv.weight, conv.bias), expected, atol=1e-5)
