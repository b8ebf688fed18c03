"""The selective scan (S6) as a small library: one entry point, `vivim_core.ops.selective_scan`, with the argument
convention of mamba_ssm's `selective_scan_fn`, and its reference twin `reference.selective_scan_reference`.

    common.py      argument checks and tensor helpers shared by every implementation
    reference.py   the sequential recurrence as published: the oracle of the tests
    policy.py      which implementation and which kernel runs for which device, dtype, layout and gradient need
    cuda.py        our CUDA kernels behind autograd and a torch.compile custom op (the "triton" backend)
    triton/        Triton kernels: chunk (training), rows (token-major inference), one_pass (channel-major)
    gluon/         Gluon kernels: one_pass and one_pass_tma (channel-major inference, compute capability >= 8 / 9.x)
    cpu/           numba_scan (the CPU's scan) and chunked (plain PyTorch, the fallback on every device)
"""
