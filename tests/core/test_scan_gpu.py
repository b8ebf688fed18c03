"""The GPU implementations (our Triton and Gluon kernels, the fused conv kernels, and mamba-ssm where installed)
against the reference and the chunked scan, and the policy's choices on this GPU.

Run on a CUDA machine (`python -m pytest -q tests/core/test_scan_gpu.py`); skipped without one (CI has no GPU).
"""

from __future__ import annotations

import pytest
import torch

from vivim_core import ops
from vivim_core.ops.scan.cpu.chunked import selective_scan_chunked
from vivim_core.ops.scan.reference import selective_scan_reference

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def rel_err(x, ref):
    x, ref = x.detach().double(), ref.detach().double()
    return float((x - ref).norm() / ref.norm().clamp_min(1e-30))


def inputs(batch, dim, length, n_state, bc="variable", dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=1.0, dt=dtype):
        return (torch.randn(*shape, generator=g) * scale).to("cuda", dt).requires_grad_()

    if bc == "variable":
        B, C = r(batch, n_state, length), r(batch, n_state, length)
    else:
        B, C = r(batch, 2, n_state, length), r(batch, 2, n_state, length)
    A = (-torch.rand(dim, n_state, generator=g) * 4 - 0.1).cuda().requires_grad_()
    return dict(u=r(batch, dim, length), delta=r(batch, dim, length, scale=0.5), A=A, B=B, C=C,
                D=r(dim, dt=torch.float32), z=r(batch, dim, length), delta_bias=r(dim, scale=0.5, dt=torch.float32))


def inference_case(shape, dtype):
    """Inputs without gradients at `shape` (per-step inputs in `dtype`) and the float32 reference output: the
    sequential scan, or the chunked one for long sequences (the sequential one would take minutes)."""
    x = {k: v.detach() for k, v in inputs(*shape).items()}
    if dtype != torch.float32:
        x = {k: (v.to(dtype) if k in ("u", "delta", "B", "C", "z") else v) for k, v in x.items()}
    with torch.no_grad():
        ref = (selective_scan_reference if shape[2] < 5000 else selective_scan_chunked)(
            **{k: v.float() for k, v in x.items()}, delta_softplus=True)
    return x, ref


def grads(out, x, seed=1):
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed)).to(out)
    names = list(x)
    return dict(zip(names, torch.autograd.grad(out, [x[n] for n in names], g)))


def test_auto_picks_a_gpu_kernel_on_cuda():
    assert ops.chosen_backend("scan", on_cuda=True) in ("mamba_ssm", "triton")


@pytest.mark.parametrize("shape", [(2, 8, 300, 16, "variable"), (1, 16, 1000, 16, "grouped"), (2, 4, 77, 8, "variable")])
def test_triton_fp32_matches_sequential_reference(shape):
    x = inputs(*shape)
    ref = selective_scan_reference(**x, delta_softplus=True)
    out = ops.selective_scan(**x, delta_softplus=True, backend="triton")
    assert rel_err(out, ref) < 1e-4
    g_ref, g_out = grads(ref, x), grads(out, x)
    for name in g_ref:
        assert rel_err(g_out[name], g_ref[name]) < 1e-4, name


@pytest.mark.parametrize("shape", [(2, 8, 300, 16, "variable"), (1, 16, 1000, 16, "grouped")])
def test_chunked_on_the_gpu_matches_sequential_reference(shape):
    """The chunked scan's GPU path (decays and inputs for all steps at once) in fp32, forward and gradients."""
    x = inputs(*shape)
    ref = selective_scan_reference(**x, delta_softplus=True)
    out = selective_scan_chunked(**x, delta_softplus=True)
    assert rel_err(out, ref) < 1e-5
    g_ref, g_out = grads(ref, x), grads(out, x)
    for name in g_ref:
        assert rel_err(g_out[name], g_ref[name]) < 1e-5, name


def test_triton_matches_chunked_at_paper_stage1_length():
    x = inputs(1, 32, 5 * 64 * 64, 16)
    ref = selective_scan_chunked(**x, delta_softplus=True)
    out = ops.selective_scan(**x, delta_softplus=True, backend="triton")
    assert rel_err(out, ref) < 1e-4
    g_ref, g_out = grads(ref, x), grads(out, x)
    for name in g_ref:
        assert rel_err(g_out[name], g_ref[name]) < 1e-4, name


def test_triton_bf16_inputs_within_1e2():
    x32 = inputs(2, 16, 2000, 16)
    x16 = {k: (v.detach().to(torch.bfloat16).requires_grad_() if k in ("u", "delta", "B", "C", "z") else v)
           for k, v in x32.items()}
    ref = selective_scan_reference(**{k: v.detach().float() for k, v in x16.items()}, delta_softplus=True)
    out = ops.selective_scan(**x16, delta_softplus=True, backend="triton")
    assert out.dtype == torch.bfloat16
    assert rel_err(out, ref) < 1e-2
    g = grads(out, x16)
    assert all(torch.isfinite(v).all() for v in g.values())


def test_mamba_ssm_matches_reference_when_installed():
    pytest.importorskip("mamba_ssm")
    x = inputs(2, 8, 300, 16)
    ref = selective_scan_reference(**x, delta_softplus=True)
    out = ops.selective_scan(**x, delta_softplus=True, backend="mamba_ssm")
    assert rel_err(out, ref) < 1e-4


def test_causal_conv1d_package_matches_ours_when_installed():
    pytest.importorskip("causal_conv1d")
    x, weight, bias = torch.randn(2, 24, 300, device="cuda"), torch.randn(24, 4, device="cuda"), torch.randn(24, device="cuda")
    for activation in (None, "silu"):
        ours = ops.causal_conv1d(x, weight, bias, activation, backend="torch")
        theirs = ops.causal_conv1d(x, weight, bias, activation, backend="causal_conv1d")
        assert rel_err(theirs, ours) < 1e-5


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_model_with_the_official_kernels_matches_the_reference(dtype):
    """vivim-tiny with mamba-ssm's scan and causal-conv1d's conv against the sequential reference scan and the
    PyTorch conv, forward and backward (bf16: autocast, as training runs)."""
    pytest.importorskip("mamba_ssm")
    pytest.importorskip("causal_conv1d")
    from vivim_core.model import build_model

    torch.manual_seed(0)
    model = build_model("vivim-tiny", drop_path_rate=0.0).cuda().eval()
    clip = torch.randn(1, 3, 3, 64, 64, device="cuda")
    results = {}
    for name, backends in (("official", dict(scan="mamba_ssm", conv="causal_conv1d")),
                           ("reference", dict(scan="reference", conv="torch"))):
        model.zero_grad(set_to_none=True)
        with ops.use_backends(**backends), torch.autocast("cuda", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            out = model(clip).mask_logits
        out.float().square().mean().backward()
        results[name] = (out.float().detach(), {n: p.grad.float().clone() for n, p in model.named_parameters()
                                                if p.grad is not None and "A_log" in n})
    (out_o, grads_o), (out_r, grads_r) = results["official"], results["reference"]
    tolerance = 1e-3 if dtype == torch.float32 else 3e-2
    assert rel_err(out_o, out_r) < tolerance
    assert grads_o.keys() == grads_r.keys() and grads_o
    assert max(rel_err(grads_o[k], grads_r[k]) for k in grads_o) < 10 * tolerance


def test_model_on_gpu_matches_cpu():
    from vivim_core.model import build_model

    model = build_model("vivim-tiny").eval()
    clip = torch.randn(1, 3, 3, 64, 64)
    with torch.no_grad():
        cpu = model(clip).mask_logits
        gpu = model.cuda()(clip.cuda()).mask_logits.cpu()
    assert rel_err(gpu, cpu) < 1e-3  # TF32/cuDNN convolutions on the GPU


def launch(launcher, x: dict, softplus: bool = True, **params) -> torch.Tensor:
    """Run one kernel's launcher directly (bypassing the policy) on inference inputs `x`, with launch `params`."""
    from vivim_core.ops.scan.common import as_groups

    batch, _, length = x["u"].shape
    out = torch.empty_like(x["u"])
    with torch.no_grad():
        return launcher(x["u"], x["delta"], x["A"], as_groups(x["B"], batch, length), as_groups(x["C"], batch, length),
                        x["D"], x["z"], x["delta_bias"], softplus, out, **params)


def chosen(x: dict) -> str:
    from vivim_core.ops.scan.cuda import chosen_kernel

    return chosen_kernel(x["u"], x["delta"], x["A"], x["B"], x["C"], x["D"], x["z"], x["delta_bias"])


def needs_gluon(tma: bool = False) -> None:
    from vivim_core.ops.scan.gluon import common

    if not common.available():
        pytest.skip("this Triton has no Gluon")
    if tma and (not common.tma_available() or torch.cuda.get_device_capability()[0] != 9):
        pytest.skip("needs Gluon with Hopper TMA and a compute capability 9.x GPU")


SHAPES = [(2, 8, 300, 16, "variable"), (1, 40, 1001, 16, "grouped"), (2, 4, 77, 8, "variable"),
          (3, 5, 2048, 16, "variable"), (1, 64, 5 * 64 * 64, 16, "variable")]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", SHAPES)
def test_row_kernel_matches_reference(shape, dtype):
    """The row kernel with one segment and with many (L not a multiple of 4, rows not a multiple of 32, grouped B
    and C), through the policy (`use_kernel`) and at other thread targets, against the sequential reference."""
    from vivim_core.ops.scan.policy import use_kernel
    from vivim_core.ops.scan.triton import rows

    x, ref = inference_case(shape, dtype)
    tolerance = 1e-4 if dtype == torch.float32 else 1e-2
    with use_kernel("triton_rows"), torch.no_grad():
        out = ops.selective_scan(**x, delta_softplus=True, backend="triton")
    assert out.dtype == dtype and rel_err(out, ref) < tolerance
    for threads in (1, rows.THREADS):  # one segment a row; the default target whatever the dtype
        assert rel_err(launch(rows.scan_rows, x, threads=threads), ref) < tolerance, threads


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", SHAPES)
def test_triton_one_pass_kernel_matches_reference(shape, dtype):
    """The Triton one-pass kernel through the policy and at other launch configurations: L shorter than a chunk,
    not a multiple of it, or exactly one; grouped B and C; 1 or 2 rows a program (a dim of 5 in groups of 5 gets
    1); against the reference."""
    from vivim_core.ops.scan.policy import use_kernel
    from vivim_core.ops.scan.triton import one_pass

    x, ref = inference_case(shape, dtype)
    tolerance = 1e-4 if dtype == torch.float32 else 1e-2
    with use_kernel("triton_one_pass"), torch.no_grad():
        out = ops.selective_scan(**x, delta_softplus=True, backend="triton")
    assert out.dtype == dtype and rel_err(out, ref) < tolerance
    channels_per_group = shape[1] // (2 if shape[4] == "grouped" else 1)
    for items, warps, rows in ((4, 1, 2), (16, 2, 1), (8, 4, 1)):
        rows = rows if channels_per_group % rows == 0 else 1
        out = launch(one_pass.scan_one_pass, x, items=items, num_warps=warps, rows=rows)
        assert rel_err(out, ref) < tolerance, (items, warps, rows)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", SHAPES)
def test_gluon_one_pass_kernel_matches_reference(shape, dtype):
    """The Gluon one-pass kernel through the policy, and with and without the next chunk loaded ahead and the
    register cap: L shorter than a chunk, not a multiple of it, or several exactly (the prefetching path); grouped
    B and C; N=8; against the reference."""
    from vivim_core.ops.scan.gluon import one_pass
    from vivim_core.ops.scan.policy import use_kernel

    needs_gluon()
    x, ref = inference_case(shape, dtype)
    tolerance = 1e-4 if dtype == torch.float32 else 1e-2
    with use_kernel("gluon_one_pass"), torch.no_grad():
        out = ops.selective_scan(**x, delta_softplus=True, backend="triton")
    assert out.dtype == dtype and rel_err(out, ref) < tolerance
    for prefetch, maxnreg in ((True, 128), (False, 0), (True, 0), (False, 128)):
        out = launch(one_pass.scan_one_pass_gluon, x, prefetch=prefetch, maxnreg=maxnreg)
        assert rel_err(out, ref) < tolerance, (prefetch, maxnreg)


@pytest.mark.parametrize("rows_stages_span", [(1, 2, 2), (1, 3, 2), (2, 3, 4), (4, 2, 8)])
@pytest.mark.parametrize("shape", [(2, 8, 2048, 16, "variable"), (1, 16, 3072, 16, "grouped"),
                                   (2, 4, 1024, 8, "variable"), (1, 64, 5 * 64 * 64, 16, "variable")])
def test_gluon_one_pass_tma_kernel_matches_reference(shape, rows_stages_span):
    """The TMA kernel (B and C staged through shared memory; with ROWS > 1 shared by ROWS channels of a program):
    float32, L a multiple of 1024, time-varying and grouped B/C, N 8 and 16; the policy's choice for these
    inputs on Hopper; against the reference."""
    from vivim_core.ops.scan.gluon import one_pass_tma

    needs_gluon(tma=True)
    rows, stages, span = rows_stages_span
    if shape[3] % span:
        pytest.skip(f"N = {shape[3]} is not a multiple of the span {span}")
    x, ref = inference_case(shape, torch.float32)
    assert chosen(x) == "gluon_one_pass_tma"
    with torch.no_grad():
        assert rel_err(ops.selective_scan(**x, delta_softplus=True, backend="triton"), ref) < 1e-4
    out = launch(one_pass_tma.scan_one_pass_tma, x, rows=rows, stages=stages, span=span)
    assert rel_err(out, ref) < 1e-4


def test_gluon_one_pass_tma_kernel_optional_inputs_and_16_bit_steps():
    """The TMA kernel's other branches: no D, z, dt bias or softplus; and bf16 u, delta, z (the per-step inputs,
    loaded and widened by the kernel) with float32 B and C, bf16 out."""
    needs_gluon(tma=True)
    x = {k: v.detach() for k, v in inputs(2, 6, 2048, 16).items()}
    bare = dict(x, D=None, z=None, delta_bias=None, delta=x["delta"].abs())
    assert chosen(bare) == "gluon_one_pass_tma"
    with torch.no_grad():
        assert rel_err(ops.selective_scan(**bare, backend="triton"), selective_scan_reference(**bare)) < 1e-4
        half = dict(x, **{k: x[k].bfloat16() for k in ("u", "delta", "z")})
        assert chosen(half) == "gluon_one_pass_tma"
        out = ops.selective_scan(**half, delta_softplus=True, backend="triton")
        ref = selective_scan_reference(**{k: (v.float() if v is not None else None) for k, v in half.items()},
                                       delta_softplus=True)
    assert out.dtype == torch.bfloat16
    assert rel_err(out, ref) < 1e-2


@pytest.mark.parametrize("kernel", ["triton_one_pass", "gluon_one_pass", "triton_rows", "triton_chunk"])
def test_inference_kernels_without_optional_inputs(kernel):
    """No D, no z, no dt bias, no softplus: every inference kernel's optional branches off."""
    from vivim_core.ops.scan.policy import use_kernel

    if kernel.startswith("gluon"):
        needs_gluon()
    x = {k: v.detach() for k, v in inputs(2, 6, 700, 16).items()}
    x.update(D=None, z=None, delta_bias=None, delta=x["delta"].abs())
    with use_kernel(kernel), torch.no_grad():
        ref = selective_scan_reference(**x)
        out = ops.selective_scan(**x, backend="triton")
    assert rel_err(out, ref) < 1e-4


@pytest.mark.parametrize("activation", [None, "silu"])
def test_token_major_causal_conv_on_cuda_matches_conv1d(activation):
    """The Triton kernel that causal_conv1d_tokens runs in eager mode on CUDA."""
    from vivim_core.ops.conv.causal import causal_conv1d_tokens, causal_conv1d_torch

    x, weight = torch.randn(2, 300, 24, device="cuda"), torch.randn(24, 4, device="cuda")
    bias = torch.randn(24, device="cuda")
    expected = causal_conv1d_torch(x.transpose(1, 2), weight, bias, activation).transpose(1, 2)
    out = causal_conv1d_tokens(x, weight, bias, activation)
    assert out.shape == x.shape and out.stride(-1) == 1
    assert rel_err(out, expected) < 1e-5


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_model_token_layout_matches_channel_layout_on_cuda(dtype):
    """Inference on CUDA runs token-major by default; the channel-major path gives the same masks."""
    from vivim_core.model import build_model
    from vivim_core.model.temporal_mamba import SpatioTemporalMamba

    model = build_model("vivim-tiny").eval().cuda().to(dtype)
    mixers = [m for m in model.modules() if isinstance(m, SpatioTemporalMamba)]
    clip = torch.randn(2, 5, 3, 64, 64, device="cuda", dtype=dtype)
    with torch.inference_mode():
        assert all(m.uses_token_layout(clip) for m in mixers)
        tokens = model(clip).mask_logits.float()
        for m in mixers:
            m.layout = "channels"
        channels = model(clip).mask_logits.float()
    assert rel_err(tokens, channels) < (1e-4 if dtype == torch.float32 else 2e-2)


def test_row_kernel_reads_token_major_views_without_copies():
    """B and C as a mamba_ssm-style x_proj gives them, transposed slices of a (batch, G, L, r+2N) tensor starting 4
    and 20 elements in: read in place (with 4-value vector loads: see `rows._step_values`)."""
    from vivim_core.ops.scan.policy import use_kernel
    from vivim_core.ops.scan.triton import rows

    for dtype in (torch.float32, torch.bfloat16):
        x = {k: v.detach() for k, v in inputs(2, 48, 2003, 16, "grouped", dtype=dtype).items()}
        buf = torch.randn(2, 2, 2003, 4 + 32, device="cuda", dtype=dtype)
        x["B"], x["C"] = buf[..., 4:20].transpose(-1, -2), buf[..., 20:].transpose(-1, -2)
        assert rows.token_major(x["B"]).data_ptr() == x["B"].data_ptr()
        with use_kernel("triton_rows"), torch.no_grad():
            ref = selective_scan_chunked(**{k: v.float() for k, v in x.items()}, delta_softplus=True)
            out = ops.selective_scan(**x, delta_softplus=True, backend="triton")
        assert rel_err(out, ref) < (1e-4 if dtype == torch.float32 else 1e-2)


def test_the_policy_on_this_gpu():
    """The policy's choice for real tensors on this GPU: the one-pass kernels wherever the per-step inputs are
    contiguous along L (Gluon's where Triton has Gluon; on Hopper the TMA kernel for float32 contiguous B and C and
    L a multiple of 1024), otherwise the row kernel for 16-bit or token-major inputs, the chunk kernel for
    channel-major float32 and for time-invariant B and C, and for anything that needs gradients."""
    from vivim_core.ops.scan.gluon import common

    x = {k: v.detach() for k, v in inputs(1, 4, 64, 16).items()}

    def kernel(u, B=x["B"], C=x["C"]):
        return chosen(dict(x, u=u, delta=u, z=None, B=B, C=C))

    gluon = common.available() and torch.cuda.get_device_capability()[0] >= 8
    one_pass = "gluon_one_pass" if gluon else "triton_one_pass"
    assert kernel(x["u"]) == kernel(x["u"].bfloat16()) == one_pass
    token_major = x["u"].transpose(1, 2).contiguous().transpose(1, 2)  # the model's layout for inference
    assert kernel(token_major) == kernel(token_major.bfloat16()) == "triton_rows"
    time_invariant_B = x["B"][0, :, :4].T.contiguous()
    assert kernel(token_major.bfloat16(), B=time_invariant_B) == "triton_chunk"
    strided, B2, C2 = x["u"][..., ::2], x["B"][..., ::2], x["C"][..., ::2]  # channel-major, stride 2 along L
    assert kernel(strided, B=B2, C=C2) == "triton_chunk"
    assert kernel(strided.bfloat16(), B=B2, C=C2) == "triton_rows"
    assert chosen({k: v for k, v in inputs(1, 4, 64, 16).items()}) == "triton_chunk"  # gradients
    if common.tma_available() and torch.cuda.get_device_capability()[0] == 9:  # Hopper: B/C through TMA
        y = {k: v.detach() for k, v in inputs(1, 4, 2048, 16).items()}
        assert kernel(y["u"], B=y["B"], C=y["C"]) == "gluon_one_pass_tma"
        assert kernel(y["u"], B=y["B"].bfloat16(), C=y["C"].bfloat16()) == one_pass  # the tiles are float32
        assert kernel(y["u"][..., :1024], B=y["B"][..., :1024], C=y["C"][..., :1024]) == one_pass  # B not contiguous


def test_chunk_kernel_inference_path_matches():
    """Without gradients the chunk kernel's forward (the policy's last resort) gives the same result."""
    from vivim_core.ops.scan.policy import use_kernel

    x = {k: v.detach() for k, v in inputs(2, 16, 5 * 64 * 64, 16).items()}
    with use_kernel("triton_chunk"), torch.no_grad():
        ref = selective_scan_chunked(**x, delta_softplus=True)
        out = ops.selective_scan(**x, delta_softplus=True, backend="triton")
    assert rel_err(out, ref) < 1e-4


@pytest.mark.parametrize("tile", [{}, {"block_w": 32, "block_c": 64, "warps": 4}, {"block_w": 8, "block_c": 32, "warps": 2}])
@pytest.mark.parametrize("shape", [(2, 5, 16, 20, 48), (1, 1, 8, 8, 100), (1, 3, 64, 64, 256)])
def test_generic_depthwise_conv3d_gelu_kernel_matches_conv3d(shape, tile):
    from vivim_core.ops.conv import dwconv3d_triton

    c = shape[-1]
    conv = torch.nn.Conv3d(c, c, 3, padding=1, groups=c).cuda()
    x = torch.randn(*shape, device="cuda")
    with torch.no_grad():
        expected = torch.nn.functional.gelu(conv(x.permute(0, 4, 1, 2, 3))).permute(0, 2, 3, 4, 1)
        out = dwconv3d_triton.dwconv3d_gelu_generic(x, conv.weight, conv.bias, **tile)
        assert rel_err(out, expected) < 1e-5
        out16 = dwconv3d_triton.dwconv3d_gelu_generic(x.bfloat16(), conv.weight.bfloat16(), conv.bias.bfloat16(),
                                                      **tile)
        assert rel_err(out16, expected) < 2e-2


@pytest.mark.parametrize("tile", [{}, {"rows": 1, "block_w": 8, "block_p": 64}, {"rows": 4, "block_w": 4, "block_p": 8,
                                                                                "warps": 2}])
@pytest.mark.parametrize("shape", [(2, 5, 16, 20, 48), (1, 1, 8, 8, 100), (1, 3, 64, 64, 256), (1, 2, 7, 9, 6)])
def test_bf16_depthwise_conv3d_gelu_kernel_matches_float32(shape, tile):
    """The bf16 kernel (channel pairs as int32, R rows a program) against the float32 conv of the same bf16 values:
    equal up to the final rounding to bf16 (and float32 summation order)."""
    from vivim_core.ops.conv import dwconv3d_triton

    c = shape[-1]
    conv = torch.nn.Conv3d(c, c, 3, padding=1, groups=c).cuda().bfloat16()
    x = torch.randn(*shape, device="cuda").bfloat16()
    with torch.no_grad():
        for bias in (conv.bias, None):
            expected = torch.nn.functional.gelu(torch.nn.functional.conv3d(
                x.float().permute(0, 4, 1, 2, 3), conv.weight.float(), None if bias is None else bias.float(),
                padding=1, groups=c)).permute(0, 2, 3, 4, 1)
            out = dwconv3d_triton.dwconv3d_gelu_bf16(x, conv.weight, bias, **tile)
            assert out.dtype == torch.bfloat16 and out.shape == x.shape
            assert ((out.float() - expected).abs() <= expected.abs() * 2**-8 + 1e-5).all()


def test_depthwise_conv3d_gelu_takes_the_bf16_kernel_on_large_bf16_frames():
    from vivim_core.ops.conv import dwconv3d

    conv = torch.nn.Conv3d(64, 64, 3, padding=1, groups=64).cuda()
    for side, kernel in ((32, "dwconv3d_gelu_bf16"), (16, "dwconv3d_gelu_generic")):
        x = torch.randn(1, 2, side, side, 64, device="cuda")
        assert dwconv3d.triton_kernel_for(x.bfloat16()) == kernel
        assert dwconv3d.triton_kernel_for(x) == "dwconv3d_gelu_generic"
        with torch.no_grad():
            expected = torch.nn.functional.gelu(conv(x.permute(0, 4, 1, 2, 3))).permute(0, 2, 3, 4, 1)
            out = dwconv3d.depthwise_conv3d_gelu(x.bfloat16(), conv.weight.bfloat16(), conv.bias.bfloat16())
        assert rel_err(out, expected) < 2e-2


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("branches", [("forward", "backward", "spatial"), ("spatial", "backward"), ("backward",)])
def test_causal_conv_in_scan_orders_on_cuda_matches_copies_then_conv(branches, dtype):
    """The one-pass Triton kernel against the copies into scan order followed by the token-major conv, on a
    strided x as the model passes it (the x half of in_proj's output)."""
    from vivim_core.ops.conv import causal

    clip_shape, dim, k = (5, 6, 7), 72, len(branches)
    length = 5 * 6 * 7
    xz = torch.randn(2, length, 2 * dim, device="cuda", dtype=dtype)
    x = xz[..., :dim]
    weight = torch.randn(k * dim, 4, device="cuda", dtype=dtype)
    bias = torch.randn(k * dim, device="cuda", dtype=dtype)
    with torch.no_grad():
        fused = causal.causal_conv1d_in_scan_orders(x, weight, bias, branches, clip_shape, "silu")
        expected = causal.causal_conv1d_in_scan_orders_by_copies(x.float(), weight.float(), bias.float(), branches,
                                                                 clip_shape, "silu")
    assert fused.shape == (2, length, k * dim) and fused.dtype == dtype
    assert rel_err(fused, expected) < (1e-6 if dtype == torch.float32 else 1e-2)


def test_compiled_model_is_one_graph_and_matches_eager():
    """torch.compile sees the Triton scan and the fused DSF conv as opaque custom ops: no graph breaks, and
    the compiled model gives the eager model's output."""
    from vivim_core.model import build_model

    model = build_model("vivim-tiny").eval().cuda()
    clip = torch.randn(2, 3, 3, 64, 64, device="cuda")
    with torch.inference_mode():
        eager = model(clip).mask_logits
        explanation = torch._dynamo.explain(model)(clip)
        compiled = torch.compile(model)(clip).mask_logits
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert rel_err(compiled, eager) < 1e-3


def test_compiled_model_is_one_graph_from_a_fresh_process():
    """Compiled before any eager call (as `vivim-core benchmark --compile` does), after `load_backends`: still
    one graph (a first backend probe inside the trace used to split the model into a graph per block)."""
    import subprocess
    import sys

    code = (
        "import torch\n"
        "from vivim_core.model import build_model\n"
        "from vivim_core.ops import load_backends\n"
        "load_backends(True)\n"
        "model = build_model('vivim-tiny').eval().cuda()\n"
        "clip = torch.randn(2, 3, 3, 64, 64, device='cuda')\n"
        "with torch.inference_mode():\n"
        "    explanation = torch._dynamo.explain(model)(clip)\n"
        "assert explanation.graph_break_count == 0, explanation.break_reasons\n"
        "assert explanation.graph_count == 1, explanation.graph_count\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_custom_scan_op_matches_autograd_function():
    x = {k: v.detach() for k, v in inputs(2, 8, 300, 16).items()}
    with torch.no_grad():
        expected = ops.selective_scan(**x, delta_softplus=True, backend="triton")
        out = torch.ops.vivim.selective_scan_inference(*x.values(), True)
    assert torch.equal(out, expected)
