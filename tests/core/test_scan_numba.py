"""The numba CPU scan (the CPU's scan, forward and backward) against the sequential reference."""

from __future__ import annotations

import pytest
import torch

from vivim_core import ops
from vivim_core.ops.scan.reference import selective_scan_reference

from test_scan import RTOL, SHAPES, make_inputs, rel_err  # tests/core is on sys.path (rootdir conftest)

scan_numba = pytest.importorskip("vivim_core.ops.scan.cpu.numba_scan", reason="numba is not installed")


@pytest.mark.parametrize("shape", SHAPES, ids=[f"b{s[0]}d{s[1]}L{s[2]}N{s[3]}-{s[4]}" for s in SHAPES])
@pytest.mark.parametrize("softplus", [True, False])
def test_numba_matches_reference(shape, softplus):
    inputs = make_inputs(*shape, requires_grad=False)
    if not softplus:  # raw dt must stay positive for a decaying recurrence
        inputs["delta"] = inputs["delta"].abs()
        inputs["delta_bias"] = inputs["delta_bias"].abs()
    ref = selective_scan_reference(**inputs, delta_softplus=softplus)
    out = scan_numba.selective_scan_numba(**inputs, delta_softplus=softplus)
    assert out.shape == ref.shape and out.dtype == ref.dtype
    assert rel_err(out, ref) < RTOL


def test_without_optional_arguments_and_split_across_threads(monkeypatch):
    inputs = make_inputs(2, 12, 500, 16, requires_grad=False)
    args = (inputs["u"], inputs["delta"].abs(), inputs["A"], inputs["B"], inputs["C"])  # raw dt: keep it >= 0
    assert rel_err(scan_numba.selective_scan_numba(*args), selective_scan_reference(*args)) < RTOL
    monkeypatch.setattr(scan_numba, "PARALLEL_MIN_WORK", 0)
    monkeypatch.setattr(scan_numba, "_threads", lambda: 3)  # rows split 8 / 8 / 8 over three threads
    ref = selective_scan_reference(**inputs, delta_softplus=True)
    assert rel_err(scan_numba.selective_scan_numba(**inputs, delta_softplus=True), ref) < RTOL


def test_strong_decay_and_strided_bf16_inputs():
    inputs = make_inputs(1, 8, 300, 16, requires_grad=False)
    inputs["A"] = inputs["A"] * 50  # exp(dt A) down to exp(-400): underflows to 0, never NaN
    ref = selective_scan_reference(**inputs, delta_softplus=True)
    out = scan_numba.selective_scan_numba(**inputs, delta_softplus=True)
    assert torch.isfinite(out).all() and rel_err(out, ref) < RTOL
    wide = torch.randn(1, 8, 600)[..., ::2]  # a strided view, as slices of a convolution's output are
    half = {**inputs, "u": wide.to(torch.bfloat16), "z": inputs["z"].to(torch.bfloat16)}
    ref = selective_scan_reference(**{**inputs, "u": wide}, delta_softplus=True)
    out = scan_numba.selective_scan_numba(**half, delta_softplus=True)
    assert out.dtype == torch.bfloat16 and rel_err(out.float(), ref) < 2e-2


@pytest.mark.parametrize("shape", SHAPES, ids=[f"b{s[0]}d{s[1]}L{s[2]}N{s[3]}-{s[4]}" for s in SHAPES])
@pytest.mark.parametrize("checkpoint_every", [64, 7], ids=["default", "short-stretches"])
def test_gradients_match_reference(shape, checkpoint_every, monkeypatch):
    monkeypatch.setattr(scan_numba, "CHECKPOINT_EVERY", checkpoint_every)
    monkeypatch.setattr(scan_numba, "PARALLEL_MIN_WORK", 0)  # threads share B and C: their gradients add up
    inputs = make_inputs(*shape)
    names = list(inputs)
    ref = selective_scan_reference(**inputs, delta_softplus=True)
    out = scan_numba.selective_scan_numba(**inputs, delta_softplus=True)
    grad_out = torch.randn_like(ref)
    ref_grads = torch.autograd.grad(ref, [inputs[n] for n in names], grad_out)
    grads = torch.autograd.grad(out, [inputs[n] for n in names], grad_out)
    for name, g, g_ref in zip(names, grads, ref_grads):
        assert g.shape == g_ref.shape and g.dtype == g_ref.dtype, name
        assert rel_err(g, g_ref) < RTOL, f"gradient of {name}: relative error {rel_err(g, g_ref):.2e}"


def test_auto_uses_it_on_the_cpu_with_and_without_gradients():
    assert ops.chosen_backend("scan", on_cuda=False) == "numba"
    inputs = make_inputs(1, 4, 40, 3)
    out = ops.selective_scan(**inputs, delta_softplus=True)
    assert out.grad_fn is not None and "Numba" in type(out.grad_fn).__name__
    with pytest.raises(ops.BackendUnavailableError, match="CPU tensors only"):
        ops.backends.resolve("scan", "numba", on_cuda=True)


def test_vivim_inference_on_the_cpu_matches_the_chunked_scan():
    from vivim_core.model import build_model

    model = build_model("vivim-tiny").eval()
    clip = torch.randn(1, 3, 3, 64, 64)
    with torch.inference_mode():
        fast = model(clip).mask_logits
        with ops.use_backends(scan="chunked"):
            chunked = model(clip).mask_logits
    assert rel_err(fast, chunked) < 1e-5
