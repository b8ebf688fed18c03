"""The scan policy (`vivim_core.ops.scan.policy`): which backend `auto` takes and which of our CUDA kernels runs
for which call, checked on described calls (no GPU, no Triton needed)."""

from __future__ import annotations

import dataclasses
import importlib.util

import pytest

from vivim_core.ops.scan import policy
from vivim_core.ops.scan.policy import ScanCall, choose_kernel, use_kernel

H100 = (9, 0)
A100 = (8, 0)
T4 = (7, 5)


def call(**changes) -> ScanCall:
    """A channel-major float32 inference call at vivim-b3's stage-1 length on an H100 with Gluon and TMA, B and C
    float32 packed: the TMA kernel's case. `changes` override fields."""
    base = ScanCall(needs_grad=False, capability=H100, gluon=True, gluon_tma=True, element_size=4, n_state=16,
                    length=20480, steps_contiguous=True, token_major=False, bc_vary=True, bc_contiguous_steps=True,
                    bc_float32_packed=True)
    return dataclasses.replace(base, **changes)


# The model's token-major inference call: u, delta, z views of (B, L, k*d_inner) memory, B and C views of the
# token projection (unit stride along channels, not along L), bf16 activations.
MODEL_TOKENS = dict(steps_contiguous=False, token_major=True, bc_contiguous_steps=False, bc_float32_packed=False,
                    element_size=2)


@pytest.mark.parametrize("changes, kernel", [
    ({}, "gluon_one_pass_tma"),
    ({"length": 20480 + 512}, "gluon_one_pass"),  # not whole TMA chunks
    ({"bc_float32_packed": False}, "gluon_one_pass"),  # bf16 or strided B/C: no TMA boxes
    ({"element_size": 2, "bc_float32_packed": False}, "gluon_one_pass"),
    ({"gluon_tma": False}, "gluon_one_pass"),  # a Triton with Gluon but without its Hopper API
    ({"capability": A100}, "gluon_one_pass"),  # TMA kernel on Hopper only
    ({"capability": T4}, "triton_one_pass"),  # Gluon kernels need compute capability >= 8
    ({"gluon": False, "gluon_tma": False}, "triton_one_pass"),
    ({"n_state": 1, "capability": A100}, "triton_one_pass"),  # paired states need N even
    (MODEL_TOKENS, "triton_rows"),
    (dict(MODEL_TOKENS, element_size=4), "triton_rows"),  # token-major float32 too
    ({"steps_contiguous": False, "element_size": 2}, "triton_rows"),  # 16-bit, strided along L, channel-major
    ({"steps_contiguous": False}, "triton_chunk"),  # float32, strided along L, channel-major
    (dict(MODEL_TOKENS, n_state=2), "triton_chunk"),  # the row kernel loads states 4 at a time
    (dict(MODEL_TOKENS, bc_vary=False), "triton_chunk"),  # time-invariant B and C
    ({"bc_vary": False, "bc_contiguous_steps": False, "bc_float32_packed": False}, "triton_chunk"),
    ({"needs_grad": True}, "triton_chunk"),  # training: the chunk kernel's forward and backward
    (dict(MODEL_TOKENS, needs_grad=True), "triton_chunk"),
])
def test_kernel_for_each_case(changes, kernel):
    assert choose_kernel(call(**changes)) == kernel


def test_every_inference_call_has_a_kernel_and_the_last_rule_takes_anything():
    assert policy.INFERENCE_KERNELS[-1].requires == policy.INFERENCE_KERNELS[-1].chosen_where == ()
    worst = call(capability=(6, 0), gluon=False, gluon_tma=False, n_state=3, length=7, steps_contiguous=False,
                 bc_vary=False, bc_contiguous_steps=False, bc_float32_packed=False)
    assert choose_kernel(worst) == "triton_chunk"


def test_use_kernel_forces_a_kernel_that_applies_and_refuses_one_that_does_not():
    with use_kernel("triton_one_pass"):
        assert choose_kernel(call()) == "triton_one_pass"
        assert choose_kernel(call(needs_grad=True)) == "triton_chunk"  # training is not affected
        with pytest.raises(ValueError, match="channel-major"):
            choose_kernel(call(**MODEL_TOKENS))
    assert choose_kernel(call()) == "gluon_one_pass_tma"  # restored on leaving the block
    with use_kernel("triton_chunk"):
        assert choose_kernel(call(**MODEL_TOKENS)) == "triton_chunk"
    with use_kernel("triton_rows"):  # where the policy would not choose it, but it can run
        assert choose_kernel(call()) == "triton_rows"
        with pytest.raises(ValueError, match="N multiple of 4"):
            choose_kernel(call(n_state=2))
    with pytest.raises(ValueError, match="unknown scan kernel"):
        with use_kernel("warps"):
            pass


def test_policy_tables_are_immutable():
    with pytest.raises(TypeError):
        policy.CONDITIONS["hopper"] = lambda c: True
    with pytest.raises(TypeError):
        policy.AUTO_BACKENDS["scan"]["cpu"] = ("reference",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.INFERENCE_KERNELS[0].kernel = "triton_rows"
    assert isinstance(policy.INFERENCE_KERNELS, tuple)


def test_auto_backends_by_device():
    assert policy.AUTO_BACKENDS["scan"]["cuda"] == ("mamba_ssm", "triton", "chunked")
    assert policy.AUTO_BACKENDS["scan"]["cpu"] == ("numba", "chunked")
    assert "reference" not in policy.AUTO_BACKENDS["scan"]["cpu"]
    assert policy.AUTO_BACKENDS["conv"]["cpu"] == ("torch",)


def test_every_kernel_has_a_launcher_and_the_tma_chunk_agrees():
    """The CUDA side of the policy: one launcher per kernel of the table, and the TMA kernel's chunk equal to the
    policy's (where Triton is installed)."""
    if importlib.util.find_spec("triton") is None:
        pytest.skip("Triton not installed")
    from vivim_core.ops.scan import cuda
    from vivim_core.ops.scan.gluon import one_pass_tma

    assert set(cuda.load_kernels()) == set(policy.KERNELS)
    assert one_pass_tma.CHUNK_STEPS == policy.TMA_CHUNK_STEPS


def _mixer_arguments(layout: str, dtype, grad: bool, gate: bool = False):
    """The scan arguments vivim-tiny's first ST-Mamba builds for a 5 x 16 x 16 clip (three branches grouped)."""
    import torch

    from vivim_core.model.temporal_mamba import SpatioTemporalMamba

    torch.manual_seed(0)
    mixer = SpatioTemporalMamba(32).to(dtype)
    k_inner = 3 * mixer.d_inner
    shape = (2, 5 * 16 * 16, k_inner) if layout == "tokens" else (2, k_inner, 5 * 16 * 16)
    x = torch.randn(*shape, dtype=dtype, requires_grad=grad)
    z = torch.randn(*shape, dtype=dtype) if gate else None
    with torch.set_grad_enabled(grad):
        if layout == "tokens":
            return mixer.token_scan_arguments(x, z)
        return mixer.channel_scan_arguments(x, z)


@pytest.mark.parametrize("gate", [False, True])
@pytest.mark.parametrize("capability, gluon", [(H100, True), (A100, True), (T4, False)])
def test_the_models_token_major_inference_call_takes_the_row_kernel(capability, gluon, gate):
    """What `SpatioTemporalMamba.token_scan_arguments` passes (the compiled model's call, bf16, z=None; eager: z
    given) is token-major: the row kernel, whatever the GPU."""
    import torch

    args = _mixer_arguments("tokens", torch.bfloat16, grad=False, gate=gate)
    described = policy.describe(args["u"], args["delta"], args["z"], args["B"], args["C"], False, capability, gluon,
                                gluon)
    assert described.token_major and not described.steps_contiguous and described.element_size == 2
    assert choose_kernel(described) == "triton_rows"


def test_the_models_channel_major_calls():
    """Training (channel-major, bf16 under autocast, gradients): the chunk kernel. Channel-major inference: the
    Gluon one-pass kernel on an H100 (B and C are strided slices of the projection, so no TMA boxes)."""
    import torch

    train = _mixer_arguments("channels", torch.bfloat16, grad=True, gate=True)
    described = policy.describe(train["u"], train["delta"], train["z"], train["B"], train["C"], True, H100, True, True)
    assert choose_kernel(described) == "triton_chunk"
    infer = _mixer_arguments("channels", torch.float32, grad=False, gate=True)
    described = policy.describe(infer["u"], infer["delta"], infer["z"], infer["B"], infer["C"], False, H100, True, True)
    assert described.steps_contiguous and described.bc_contiguous_steps and not described.bc_float32_packed
    assert choose_kernel(described) == "gluon_one_pass"
    packed = dict(infer, B=infer["B"].contiguous(), C=infer["C"].contiguous())
    described = policy.describe(packed["u"], packed["delta"], packed["z"], packed["B"], packed["C"], False, H100, True,
                                True)
    assert choose_kernel(dataclasses.replace(described, length=20480)) == "gluon_one_pass_tma"
