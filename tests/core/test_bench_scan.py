"""The scan suite's model calls (`vivim_core.bench.scan`): the arguments it times are the model's own."""

from __future__ import annotations

import torch

from vivim_core.bench.scan import call_bytes, model_scan_arguments, stage_mixers
from vivim_core.ops import selective_scan


def test_stages_follow_the_variant():
    stages = [(stage, side, mixer.d_model, mixer.branches) for stage, side, mixer in stage_mixers("vivim-b3", 256)]
    assert [s[:3] for s in stages] == [(1, 64, 64), (2, 32, 128), (3, 16, 320), (4, 8, 512)]
    assert all(branches == ("forward", "backward", "spatial") for *_, branches in stages)


def test_inference_arguments_are_the_models_token_major_call():
    """Forced token-major (as on CUDA), the timed call is the one `scan_branches_tokens` makes: the same output, u
    a (batch, k*d_inner, L) view of token-major memory, B and C (batch, k, N, L) views, no gate."""
    _, side, mixer = next(stage_mixers("vivim-tiny", 64))
    mixer.layout = "tokens"
    length = 2 * side * side
    args, layout = model_scan_arguments(mixer, 2, length, torch.device("cpu"), training=False)
    assert layout == "tokens" and args["z"] is None
    channels = 3 * mixer.d_inner
    assert args["u"].shape == (2, channels, length) and args["u"].stride(1) == 1
    assert args["B"].shape == args["C"].shape == (2, 3, mixer.d_state, length)
    with torch.inference_mode():
        x = args["u"].transpose(1, 2)
        expected = mixer.scan_branches_tokens(x)
        assert torch.allclose(selective_scan(**args).transpose(1, 2), expected)
    # read u and delta, write the output (2 x 192 x 512 each); read B and C (2 x 3 x 16 x 512 each); float32
    assert call_bytes(args) == 4 * (3 * 2 * channels * length + 2 * 2 * 3 * mixer.d_state * length)


def test_training_arguments_are_channel_major_leaves_with_the_gate():
    _, side, mixer = next(stage_mixers("vivim-tiny", 64))
    args, layout = model_scan_arguments(mixer, 1, side * side, torch.device("cpu"), training=True)
    assert layout == "channels" and args["z"] is not None and args["delta_softplus"] is True
    tensors = [v for v in args.values() if torch.is_tensor(v)]
    assert len(tensors) == 8 and all(t.is_leaf and t.requires_grad for t in tensors)
    assert args["B"].stride(-1) == 1 and args["u"].stride(-1) == 1
    out = selective_scan(**args)
    grads = torch.autograd.grad(out.sum(), tensors)
    assert all(torch.isfinite(g).all() for g in grads)
    assert call_bytes(args, backward=True) == 3 * call_bytes(args) - args["u"].numel() * 4  # the output once
