"""Selective-scan backends against the sequential reference, and the dispatcher's errors."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from vivim_core import ops
from vivim_core.ops.scan.cpu import chunked as scan_chunked
from vivim_core.ops.conv.causal import causal_conv1d_torch
from vivim_core.ops.scan.cpu.chunked import plan_chunks, selective_scan_chunked
from vivim_core.ops.scan.reference import selective_scan_reference

# what `auto` runs on a CPU: the compiled kernels when numba is installed (a dependency), else PyTorch
CPU_SCAN = "numba" if importlib.util.find_spec("numba") else "chunked"
RTOL = 1e-5  # fp32: relative error of the whole tensor (norm)


def rel_err(x: torch.Tensor, ref: torch.Tensor) -> float:
    x, ref = x.detach().float(), ref.detach().float()
    return float((x - ref).norm() / ref.norm().clamp_min(1e-30))


def make_inputs(batch, dim, length, n_state, bc="variable", dtype=torch.float32, requires_grad=True):
    def t(*shape, scale=1.0):
        return (torch.randn(*shape) * scale).to(dtype).requires_grad_(requires_grad)

    if bc == "variable":
        B, C = t(batch, n_state, length), t(batch, n_state, length)
    elif bc == "grouped":
        B, C = t(batch, 2, n_state, length), t(batch, 2, n_state, length)
    else:  # time-invariant B, input-dependent C
        B, C = t(dim, n_state), t(batch, n_state, length)
    A = (-torch.rand(dim, n_state) * 4 - 0.1).requires_grad_(requires_grad)
    return dict(u=t(batch, dim, length), delta=t(batch, dim, length, scale=0.5), A=A, B=B, C=C,
                D=t(dim), z=t(batch, dim, length), delta_bias=t(dim, scale=0.5))


SHAPES = [  # (batch, dim, L, N, B/C form)
    (1, 4, 1, 3, "variable"),
    (2, 8, 37, 4, "variable"),
    (1, 6, 300, 5, "grouped"),
    (2, 6, 50, 4, "time_invariant"),
    (1, 16, 1500, 16, "variable"),
]


@pytest.mark.parametrize("shape", SHAPES, ids=[f"b{s[0]}d{s[1]}L{s[2]}N{s[3]}-{s[4]}" for s in SHAPES])
@pytest.mark.parametrize("segment_elements", [64 * 6 * 5, scan_chunked.CPU_SEGMENT_ELEMENTS], ids=["many-segments", "default"])
@pytest.mark.parametrize("step_by_step", [True, False], ids=["cpu-sweeps", "gpu-sweeps"])
def test_chunked_matches_reference_forward_and_gradients(shape, segment_elements, step_by_step, monkeypatch):
    """Both sweep strategies (step by step, as on the CPU; whole tensors, as on a GPU) on the CPU."""
    monkeypatch.setattr(scan_chunked, "CPU_SEGMENT_ELEMENTS", segment_elements)
    monkeypatch.setattr(scan_chunked, "_fuse_steps", lambda device: step_by_step)
    inputs = make_inputs(*shape)
    names = list(inputs)
    ref = selective_scan_reference(**inputs, delta_softplus=True)
    out = selective_scan_chunked(**inputs, delta_softplus=True)
    assert out.shape == ref.shape and out.dtype == ref.dtype
    assert rel_err(out, ref) < RTOL
    grad_out = torch.randn_like(ref)
    ref_grads = torch.autograd.grad(ref, [inputs[n] for n in names], grad_out)
    grads = torch.autograd.grad(out, [inputs[n] for n in names], grad_out)
    for name, g, g_ref in zip(names, grads, ref_grads):
        assert g.shape == g_ref.shape, name
        if g_ref.norm() > 0:
            assert rel_err(g, g_ref) < RTOL, f"gradient of {name}: relative error {rel_err(g, g_ref):.2e}"
        else:
            assert g.abs().max() < 1e-6, name


def test_chunked_with_decays_that_underflow_matches_reference():
    """Large dt and A: a chunk's decay exponents fall far below what float32 can represent (the clamped path)."""
    inputs = make_inputs(1, 8, 400, 16)
    with torch.no_grad():
        inputs["A"].mul_(4.0)  # A down to -16.4
        inputs["delta_bias"].add_(8.0)  # dt ~ 8: dt * A down to ~ -130 per step
    A6 = scan_chunked._A_layout(inputs["A"].detach(), 1)
    assert scan_chunked._steps_may_underflow(torch.full((1,), 8.0), A6)  # the per-step clamp is on
    ref = selective_scan_reference(**inputs, delta_softplus=True)
    out = selective_scan_chunked(**inputs, delta_softplus=True)
    assert torch.isfinite(out).all() and rel_err(out, ref) < RTOL
    grads = torch.autograd.grad(out.sum(), [inputs["u"], inputs["delta"], inputs["A"]])
    ref_grads = torch.autograd.grad(ref.sum(), [inputs["u"], inputs["delta"], inputs["A"]])
    for g, g_ref in zip(grads, ref_grads):
        assert torch.isfinite(g).all() and rel_err(g, g_ref) < RTOL


def test_chunked_reuses_its_workspace_across_shapes_modes_and_threads():
    """The CPU workspace outlives a call: calls of other shapes in between, inference mode, and other threads
    must not change any result (nor fail: a buffer made under inference mode cannot be written outside it)."""
    shapes = [(1, 16, 1500, 16), (2, 8, 37, 4), (1, 32, 700, 8)]
    cases = [make_inputs(*s, requires_grad=False) for s in shapes]
    expected = [selective_scan_reference(**x, delta_softplus=True) for x in cases]
    for x, ref in zip(cases * 2, expected * 2):
        with torch.inference_mode():
            assert rel_err(selective_scan_chunked(**x, delta_softplus=True), ref) < RTOL
        assert rel_err(selective_scan_chunked(**x, delta_softplus=True), ref) < RTOL
    trainable = make_inputs(2, 8, 37, 4)
    out = selective_scan_chunked(**trainable, delta_softplus=True)
    out.sum().backward()  # after inference-mode calls filled the workspace
    assert torch.isfinite(trainable["u"].grad).all()

    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda x: selective_scan_chunked(**x, delta_softplus=True), cases * 3))
    for out, ref in zip(results, expected * 3):
        assert rel_err(out, ref) < RTOL


def test_chunked_at_the_benchmark_shape_matches_reference():
    """b1 d64 L4096 N16 (the README's CPU figure): one segment of 128 chunks of 32 steps."""
    inputs = make_inputs(1, 64, 4096, 16, requires_grad=False)
    assert plan_chunks(4096, 64 * 16, on_cuda=False) == (32, 4096)
    out = selective_scan_chunked(**inputs, delta_softplus=True)
    assert rel_err(out, selective_scan_reference(**inputs, delta_softplus=True)) < RTOL


def test_chunked_without_optional_arguments_matches_reference():
    inputs = make_inputs(2, 5, 64, 3)
    args = (inputs["u"], inputs["delta"], inputs["A"], inputs["B"], inputs["C"])
    assert rel_err(selective_scan_chunked(*args), selective_scan_reference(*args)) < RTOL


def test_low_precision_inputs_compute_in_float32():
    inputs = make_inputs(1, 8, 200, 4, requires_grad=False)
    ref = selective_scan_reference(**inputs, delta_softplus=True)
    half = {k: v.to(torch.bfloat16) if k in ("u", "delta", "z") else v for k, v in inputs.items()}
    out = selective_scan_chunked(**half, delta_softplus=True)
    assert out.dtype == torch.bfloat16
    assert rel_err(out.float(), ref) < 2e-2


def test_plan_bounds_cpu_segments_and_chunks_near_sqrt():
    chunk, segment = plan_chunks(4096, 1 * 64 * 16, on_cuda=False)
    assert segment % chunk == 0 and segment * 64 * 16 <= scan_chunked.CPU_SEGMENT_ELEMENTS
    assert chunk <= scan_chunked.CPU_CHUNK
    chunk, segment = plan_chunks(4096, 64, on_cuda=True)
    assert segment >= 4096 and 32 <= chunk <= 128


def test_dispatch_auto_on_cpu_is_chunked_and_reference_never_auto():
    assert ops.chosen_backend("scan", on_cuda=False) == CPU_SCAN
    assert ops.chosen_backend("conv", on_cuda=False) == "torch"
    inputs = make_inputs(1, 4, 20, 3, requires_grad=False)
    with ops.use_backends(scan="reference"):
        forced = ops.selective_scan(**inputs)
    assert torch.allclose(forced, selective_scan_reference(**inputs))


def test_missing_backend_error_names_the_install_command():
    inputs = make_inputs(1, 4, 20, 3, requires_grad=False)
    with pytest.raises(ops.BackendUnavailableError, match=r"pip install|CUDA"):
        ops.selective_scan(**inputs, backend="mamba_ssm")
    with pytest.raises(ValueError, match="unknown scan backend 'fast'"):
        ops.selective_scan(**inputs, backend="fast")


@pytest.mark.parametrize("bad, message", [
    (dict(u=torch.randn(2, 4)), "u must be"),
    (dict(A=torch.randn(5, 3)), "A must be"),
    (dict(B=torch.randn(2, 3, 7)), "B has shape"),
    (dict(D=torch.randn(3)), "D must be"),
])
def test_malformed_arguments_raise_clear_errors(bad, message):
    inputs = make_inputs(2, 4, 10, 3, requires_grad=False)
    inputs.update(bad)
    with pytest.raises(ValueError, match=message):
        ops.selective_scan(**inputs)


def test_causal_conv_is_causal_and_matches_explicit_sum():
    x, weight, bias = torch.randn(2, 3, 11), torch.randn(3, 4), torch.randn(3)
    out = causal_conv1d_torch(x, weight, bias)
    expected = torch.zeros_like(x)
    for t in range(11):
        for k in range(4):
            src = t - 3 + k
            if src >= 0:
                expected[:, :, t] += weight[:, k] * x[:, :, src]
    expected += bias[:, None]
    assert torch.allclose(out, expected, atol=1e-6)
    assert torch.allclose(ops.causal_conv1d(x, weight, bias, "silu"), torch.nn.functional.silu(expected), atol=1e-6)


@pytest.mark.parametrize("activation", [None, "silu"])
def test_causal_conv_shift_form_matches_conv1d(activation):
    """The form torch.compile fuses (sum of shifted copies) is the same function as the F.conv1d one."""
    from vivim_core.ops.conv.causal import causal_conv1d_shifts

    g = torch.Generator().manual_seed(3)
    x, weight, bias = torch.randn(2, 6, 37, generator=g), torch.randn(6, 4, generator=g), torch.randn(6, generator=g)
    expected = causal_conv1d_torch(x, weight, bias, activation)
    assert torch.allclose(causal_conv1d_shifts(x, weight, bias, activation), expected, atol=1e-6)
    assert torch.allclose(causal_conv1d_shifts(x, weight, None, activation),
                          causal_conv1d_torch(x, weight, None, activation), atol=1e-6)


@pytest.mark.parametrize("activation", [None, "silu"])
def test_token_major_causal_conv_matches_conv1d(activation):
    """The token-major form ((batch, L, dim) in and out) is the same function."""
    from vivim_core.ops.conv.causal import causal_conv1d_tokens

    g = torch.Generator().manual_seed(4)
    x, weight, bias = torch.randn(2, 37, 6, generator=g), torch.randn(6, 4, generator=g), torch.randn(6, generator=g)
    expected = causal_conv1d_torch(x.transpose(1, 2), weight, bias, activation).transpose(1, 2)
    out = causal_conv1d_tokens(x, weight, bias, activation)
    assert out.shape == x.shape and torch.allclose(out, expected, atol=1e-6)
